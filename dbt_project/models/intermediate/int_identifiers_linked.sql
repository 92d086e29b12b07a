{#
    Walking-skeleton identity: every source record key is linked to an identity key.
    CRM records are keyed by their normalised email (falling back to the CRM id); orders, cards
    and cookies reach an identity through the CRM record or email they carry. The identity
    resolution issue replaces this with identifier rules and probabilistic matching.
#}
with

crm_customers as (

    select * from {{ ref('stg_crm__customers') }}

),

shop_orders as (

    select * from {{ ref('stg_shop__orders') }}

),

pos_receipts as (

    select * from {{ ref('stg_pos__receipts') }}

),

web_events as (

    select * from {{ ref('stg_web__events') }}

),

crm_identities as (

    select
        crm_id,
        loyalty_card_id,
        coalesce('email:' || email, 'crm:' || crm_id) as identity_key,
        case when email is not null then 'email' else 'crm_id' end as linked_by,
        coalesce(created_at, updated_at) as first_seen_at
    from crm_customers

),

crm_links as (

    select
        'crm' as source,
        crm_id as source_key,
        identity_key,
        linked_by,
        first_seen_at
    from crm_identities

),

shop_email_links as (

    select
        'shop_email' as source,
        shop_orders.customer_email as source_key,
        'email:' || shop_orders.customer_email as identity_key,
        'email' as linked_by,
        min(shop_orders.ordered_at) as first_seen_at
    from shop_orders
    where shop_orders.customer_email is not null
    group by shop_orders.customer_email

),

card_links as (

    select
        'pos_card' as source,
        pos_receipts.loyalty_card_id as source_key,
        coalesce(min(crm_identities.identity_key), 'card:' || pos_receipts.loyalty_card_id) as identity_key,
        case when min(crm_identities.identity_key) is null then 'loyalty_card' else 'crm_loyalty_card' end as linked_by,
        min(pos_receipts.purchased_at) as first_seen_at
    from pos_receipts
    left join crm_identities
        on pos_receipts.loyalty_card_id = crm_identities.loyalty_card_id
    where pos_receipts.loyalty_card_id is not null
    group by pos_receipts.loyalty_card_id

),

logins as (

    select
        web_events.anonymous_id,
        web_events.event_at,
        coalesce('email:' || web_events.user_email, crm_identities.identity_key) as identity_key
    from web_events
    left join crm_identities
        on web_events.crm_id = crm_identities.crm_id
    where web_events.user_email is not null or crm_identities.identity_key is not null

),

first_login_per_cookie as (

    select
        anonymous_id,
        identity_key,
        event_at,
        row_number() over (partition by anonymous_id order by event_at, identity_key) as login_rank
    from logins

),

cookie_links as (

    select
        'web_cookie' as source,
        anonymous_id as source_key,
        identity_key,
        'login' as linked_by,
        event_at as first_seen_at
    from first_login_per_cookie
    where login_rank = 1

),

final as (

    select * from crm_links
    union all
    select * from shop_email_links
    union all
    select * from card_links
    union all
    select * from cookie_links

)

select * from final
