{#
    What each customer shows interest in, per product category and snapshot date: the lines of
    their completed purchases and the products they viewed on the web (cookies linked to them),
    on or before the end of the snapshot date. One row per customer, snapshot and category with
    any interest; categories come from the catalog, so the table is long, not one column per
    category. Views count too, so a customer who never bought still shows their tastes.
    Counts are summed per day first, then per snapshot (a few snapshot dates per run).
#}
with

customers as (

    select * from {{ ref('dim_customers') }}

),

orders as (

    select * from {{ ref('fct_orders') }}

),

identifiers as (

    select * from {{ ref('customer_identifiers') }}

),

web_events as (

    select * from {{ ref('stg_web__events') }}

),

shop_order_lines as (

    select * from {{ ref('stg_shop__order_lines') }}

),

pos_receipt_lines as (

    select * from {{ ref('stg_pos__receipt_lines') }}

),

products as (

    select * from {{ ref('stg_catalog__products') }}

),

snapshots as (

    {{ snapshot_dates_relation() }}

),

real_customers as (

    select customer_id
    from customers
    where not is_test_account

),

order_lines as (

    select
        order_id,
        sku
    from shop_order_lines
    union all
    select
        receipt_id as order_id,
        sku
    from pos_receipt_lines

),

cookie_owners as (

    select
        source_key as anonymous_id,
        customer_id
    from identifiers
    where source = 'web_cookie'

),

bought_per_day as (

    select
        orders.customer_id,
        products.category,
        orders.ordered_on as day,
        count(*) as purchased_lines,
        0 as product_views
    from orders
    inner join order_lines
        on orders.order_id = order_lines.order_id
    inner join products
        on order_lines.sku = products.sku
    where orders.status = 'completed' and orders.customer_id is not null
    group by orders.customer_id, products.category, orders.ordered_on

),

viewed_per_day as (

    select
        cookie_owners.customer_id,
        products.category,
        cast(web_events.event_at as date) as day,
        0 as purchased_lines,
        count(*) as product_views
    from web_events
    inner join cookie_owners
        on web_events.anonymous_id = cookie_owners.anonymous_id
    inner join products
        on web_events.sku = products.sku
    where web_events.event_type = 'product_view'
    group by cookie_owners.customer_id, products.category, cast(web_events.event_at as date)

),

interest_per_day as (

    select * from bought_per_day
    union all
    select * from viewed_per_day

),

final as (

    select
        interest_per_day.customer_id,
        snapshots.snapshot_date,
        interest_per_day.category,
        cast(sum(interest_per_day.purchased_lines) as {{ dbt.type_int() }}) as purchased_lines,
        cast(sum(interest_per_day.product_views) as {{ dbt.type_int() }}) as product_views
    from interest_per_day
    inner join real_customers
        on interest_per_day.customer_id = real_customers.customer_id
    inner join snapshots
        on interest_per_day.day <= snapshots.snapshot_date
    where interest_per_day.category is not null
    group by interest_per_day.customer_id, snapshots.snapshot_date, interest_per_day.category

)

select * from final
