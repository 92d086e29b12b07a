{#
    Golden record, one row per customer. Skeleton survivorship: the most recently updated CRM
    record gives each attribute; customers known only from orders, cards or logins get what
    those carry. is_test_account is true when any of the person's records says so.
#}
with

identifiers as (

    select * from {{ ref('customer_identifiers') }}

),

crm_customers as (

    select * from {{ ref('stg_crm__customers') }}

),

crm_ranked as (

    select
        identifiers.customer_id,
        crm_customers.*,
        row_number() over (
            partition by identifiers.customer_id
            order by crm_customers.updated_at desc, crm_customers.crm_id asc
        ) as recency_rank
    from identifiers
    inner join crm_customers
        on identifiers.source = 'crm' and identifiers.source_key = crm_customers.crm_id

),

customers as (

    select
        customer_id,
        min(first_seen_at) as first_seen_at,
        count(*) as source_records
    from identifiers
    group by customer_id

),

test_accounts as (

    select
        customer_id,
        max(case when is_test_account then 1 else 0 end) = 1 as is_test_account
    from crm_ranked
    group by customer_id

),

shop_emails as (

    select
        customer_id,
        min(source_key) as email
    from identifiers
    where source = 'shop_email'
    group by customer_id

),

final as (

    select
        customers.customer_id,
        crm_ranked.crm_id as primary_crm_id,
        crm_ranked.first_name,
        crm_ranked.last_name,
        coalesce(crm_ranked.email, shop_emails.email) as email,
        crm_ranked.phone,
        crm_ranked.birth_date,
        crm_ranked.gender,
        crm_ranked.street,
        crm_ranked.city,
        crm_ranked.postcode,
        crm_ranked.country,
        crm_ranked.loyalty_card_id,
        customers.first_seen_at,
        customers.source_records,
        crm_ranked.crm_id is not null as has_crm_record,
        coalesce(test_accounts.is_test_account, false) as is_test_account
    from customers
    left join crm_ranked
        on customers.customer_id = crm_ranked.customer_id and crm_ranked.recency_rank = 1
    left join test_accounts
        on customers.customer_id = test_accounts.customer_id
    left join shop_emails
        on customers.customer_id = shop_emails.customer_id

)

select * from final
