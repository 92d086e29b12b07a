{# Online orders and store receipts in one shape, amounts in the reporting currency. #}
with

shop_orders as (

    select * from {{ ref('stg_shop__orders') }}

),

pos_receipts as (

    select * from {{ ref('stg_pos__receipts') }}

),

fx_rates as (

    select * from {{ ref('stg_fx__rates') }}

),

identifiers as (

    select * from {{ ref('int_identifiers_linked') }}

),

rate_periods as (

    -- Each rate holds from its date until the next one: a day without a rate takes the latest earlier rate.
    select
        currency,
        rate,
        rate_date as valid_from,
        lead(rate_date) over (partition by currency order by rate_date) as valid_until
    from fx_rates

),

online as (

    select
        shop_orders.order_id,
        'online' as channel,
        shop_orders.ordered_at,
        shop_orders.status,
        shop_orders.currency,
        shop_orders.total_amount - shop_orders.discount_amount as amount_in_currency,
        order_links.customer_id,
        order_links.linked_by as attributed_by,
        shop_orders.landed_batch_id
    from shop_orders
    left join identifiers as order_links
        on order_links.source = 'shop_order' and shop_orders.order_id = order_links.source_key

),

store as (

    select
        pos_receipts.receipt_id as order_id,
        'store' as channel,
        pos_receipts.purchased_at as ordered_at,
        pos_receipts.status,
        pos_receipts.currency,
        pos_receipts.total_amount as amount_in_currency,
        receipt_links.customer_id,
        receipt_links.linked_by as attributed_by,
        pos_receipts.landed_batch_id
    from pos_receipts
    left join identifiers as receipt_links
        on receipt_links.source = 'pos_receipt' and pos_receipts.receipt_id = receipt_links.source_key

),

unioned as (

    select * from online
    union all
    select * from store

),

converted as (

    select
        unioned.order_id,
        unioned.channel,
        unioned.ordered_at,
        unioned.status,
        unioned.currency,
        unioned.amount_in_currency,
        unioned.customer_id,
        unioned.attributed_by,
        unioned.landed_batch_id,
        case
            when unioned.currency = '{{ var("reporting_currency") }}' then unioned.amount_in_currency
            else unioned.amount_in_currency * rate_periods.rate
        end as amount
    from unioned
    left join rate_periods
        on
            unioned.currency = rate_periods.currency
            and cast(unioned.ordered_at as date) >= rate_periods.valid_from
            and (rate_periods.valid_until is null or cast(unioned.ordered_at as date) < rate_periods.valid_until)

),

final as (

    select
        order_id,
        channel,
        ordered_at,
        status,
        currency,
        amount_in_currency,
        amount,
        customer_id,
        attributed_by,
        landed_batch_id,
        amount is null as is_missing_fx_rate
    from converted

)

select * from final
