{#
    Golden record, one row per customer. Survivorship, attribute by attribute, over the
    customer's CRM records (a customer known only from orders, cards or logins has none):
    - names, gender: the most recently updated record that has them (a surname change wins);
    - e-mail, phone: the most recently updated record that has one;
    - birth date: the value most records agree on (ties: the most recently updated);
    - address (street, postcode, city, country): the most recently updated record with a street;
    - loyalty card: the most recently updated record with a card;
    - is_test_account: true when any record says so.
    A guest customer's e-mail comes from the orders that identify them.
#}
with

identifiers as (

    select * from {{ ref('int_identifiers_linked') }}

),

crm_customers as (

    select * from {{ ref('stg_crm__customers') }}

),

customer_records as (

    select
        identifiers.customer_id,
        crm_customers.*
    from identifiers
    inner join crm_customers
        on identifiers.source = 'crm' and identifiers.source_key = crm_customers.crm_id

),

ranked as (

    select
        customer_records.*,
        row_number() over (
            partition by customer_records.customer_id
            order by case when customer_records.last_name is null then 1 else 0 end asc, customer_records.updated_at desc, customer_records.crm_id asc
        ) as name_rank,
        row_number() over (
            partition by customer_records.customer_id
            order by case when customer_records.email is null then 1 else 0 end asc, customer_records.updated_at desc, customer_records.crm_id asc
        ) as email_rank,
        row_number() over (
            partition by customer_records.customer_id
            order by case when customer_records.phone is null then 1 else 0 end asc, customer_records.updated_at desc, customer_records.crm_id asc
        ) as phone_rank,
        row_number() over (
            partition by customer_records.customer_id
            order by case when customer_records.street is null then 1 else 0 end asc, customer_records.updated_at desc, customer_records.crm_id asc
        ) as address_rank,
        row_number() over (
            partition by customer_records.customer_id
            order by case when customer_records.loyalty_card_id is null then 1 else 0 end asc, customer_records.updated_at desc, customer_records.crm_id asc
        ) as card_rank
    from customer_records

),

birth_date_votes as (

    select
        customer_id,
        birth_date,
        row_number() over (
            partition by customer_id order by count(*) desc, max(updated_at) desc
        ) as vote_rank
    from customer_records
    where birth_date is not null
    group by customer_id, birth_date

),

customers as (

    select
        customer_id,
        min(first_seen_at) as first_seen_at,
        count(*) as source_records
    from identifiers
    group by customer_id

),

crm_summary as (

    select
        customer_id,
        count(*) as crm_records,
        max(case when is_test_account then 1 else 0 end) = 1 as is_test_account
    from customer_records
    group by customer_id

),

guest_emails as (

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
        name_pick.first_name,
        name_pick.last_name,
        name_pick.gender,
        coalesce(email_pick.email, guest_emails.email) as email,
        phone_pick.phone,
        birth_date_votes.birth_date,
        address_pick.street,
        address_pick.postcode,
        address_pick.city,
        address_pick.country,
        card_pick.loyalty_card_id,
        customers.first_seen_at,
        customers.source_records,
        coalesce(crm_summary.crm_records, 0) as crm_records,
        coalesce(crm_summary.crm_records, 0) > 0 as has_crm_record,
        coalesce(crm_summary.is_test_account, false) as is_test_account
    from customers
    left join ranked as name_pick
        on customers.customer_id = name_pick.customer_id and name_pick.name_rank = 1
    left join ranked as email_pick
        on customers.customer_id = email_pick.customer_id and email_pick.email_rank = 1
    left join ranked as phone_pick
        on customers.customer_id = phone_pick.customer_id and phone_pick.phone_rank = 1
    left join ranked as address_pick
        on customers.customer_id = address_pick.customer_id and address_pick.address_rank = 1
    left join ranked as card_pick
        on customers.customer_id = card_pick.customer_id and card_pick.card_rank = 1
    left join birth_date_votes
        on customers.customer_id = birth_date_votes.customer_id and birth_date_votes.vote_rank = 1
    left join crm_summary
        on customers.customer_id = crm_summary.customer_id
    left join guest_emails
        on customers.customer_id = guest_emails.customer_id

)

select * from final
