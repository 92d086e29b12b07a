{#
    Every consent event with each customer it names. An event names a customer through any of
    the identifiers the customer's records carry: a CRM id, an e-mail address (CRM records and
    the customer's orders) or a phone number (CRM records). Once identities are merged, events
    given under any of a person's identifiers are the person's. An identifier shared by several
    customers (a household's e-mail or landline) gives the event to each of them, with
    customers_named saying how many: customer_consent lets such an opt-out count for all of
    them but such an opt-in for none (whose agreement it was is unknown).
    Events for channels outside the contract are left out (the contract test reports them).
#}
with

consent_events as (

    select * from {{ ref('stg_consent__events') }}

),

identifiers as (

    select * from {{ ref('int_identifiers_linked') }}

),

crm_customers as (

    select * from {{ ref('stg_crm__customers') }}

),

shop_orders as (

    select * from {{ ref('stg_shop__orders') }}

),

valid_events as (

    select *
    from consent_events
    where
        channel in ('email', 'sms', 'push', 'ads')
        and status in ('opt_in', 'opt_out')
        and event_at is not null

),

crm_records as (

    select
        identifiers.customer_id,
        crm_customers.crm_id,
        crm_customers.email,
        crm_customers.phone
    from identifiers
    inner join crm_customers
        on identifiers.source = 'crm' and identifiers.source_key = crm_customers.crm_id

),

customer_keys as (

    select
        customer_id,
        'crm_id' as key_type,
        crm_id as key_value
    from crm_records
    union
    select
        customer_id,
        'email' as key_type,
        email as key_value
    from crm_records
    where email is not null
    union
    select
        customer_id,
        'phone' as key_type,
        phone as key_value
    from crm_records
    where phone is not null
    union
    select
        identifiers.customer_id,
        'email' as key_type,
        shop_orders.customer_email as key_value
    from identifiers
    inner join shop_orders
        on identifiers.source = 'shop_order' and identifiers.source_key = shop_orders.order_id
    where shop_orders.customer_email is not null
    union
    select
        customer_id,
        'email' as key_type,
        source_key as key_value
    from identifiers
    where source = 'shop_email'

),

event_keys as (

    select
        consent_event_id,
        'crm_id' as key_type,
        crm_id as key_value
    from valid_events
    where crm_id is not null
    union all
    select
        consent_event_id,
        'email' as key_type,
        email as key_value
    from valid_events
    where email is not null
    union all
    select
        consent_event_id,
        'phone' as key_type,
        phone as key_value
    from valid_events
    where phone is not null

),

matches as (

    select
        customer_keys.customer_id,
        event_keys.consent_event_id,
        string_agg(distinct event_keys.key_type, ', ' order by event_keys.key_type) as matched_on
    from event_keys
    inner join customer_keys
        on
            event_keys.key_type = customer_keys.key_type
            and event_keys.key_value = customer_keys.key_value
    group by customer_keys.customer_id, event_keys.consent_event_id

),

final as (

    select
        matches.customer_id,
        valid_events.channel,
        valid_events.status,
        valid_events.event_at,
        valid_events.consent_source,
        valid_events.policy_version,
        valid_events.consent_event_id,
        matches.matched_on,
        count(*) over (partition by matches.consent_event_id) as customers_named
    from matches
    inner join valid_events on matches.consent_event_id = valid_events.consent_event_id

)

select * from final
