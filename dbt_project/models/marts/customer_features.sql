{#
    RFM and engagement per customer as of the end of each snapshot date (events on or before
    it). Purchases are completed orders in the reporting currency; cancelled and refunded orders
    do not count. A customer appears from the day they are first seen. Never bought: recency is
    null, frequency and monetary 0. No web activity: web counts 0.
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

snapshots as (

    {{ snapshot_dates_relation() }}

),

customer_snapshots as (

    select
        customers.customer_id,
        snapshots.snapshot_date,
        cast(customers.first_seen_at as date) as first_seen_on
    from customers
    cross join snapshots
    where
        cast(customers.first_seen_at as date) <= snapshots.snapshot_date
        and not customers.is_test_account

),

purchases as (

    select
        customer_id,
        ordered_on,
        channel,
        amount
    from orders
    where status = 'completed' and customer_id is not null

),

purchase_features as (

    select
        customer_snapshots.customer_id,
        customer_snapshots.snapshot_date,
        count(purchases.ordered_on) as frequency,
        coalesce(sum(purchases.amount), 0) as monetary,
        max(purchases.ordered_on) as last_purchase_on,
        min(purchases.ordered_on) as first_purchase_on,
        count(case when purchases.ordered_on > {{ dbt.dateadd('day', -90, 'customer_snapshots.snapshot_date') }} then 1 end) as frequency_90d,
        coalesce(sum(case when purchases.ordered_on > {{ dbt.dateadd('day', -90, 'customer_snapshots.snapshot_date') }} then purchases.amount end), 0) as monetary_90d,
        count(case when purchases.channel = 'online' then 1 end) as online_orders
    from customer_snapshots
    left join purchases
        on
            customer_snapshots.customer_id = purchases.customer_id
            and customer_snapshots.snapshot_date >= purchases.ordered_on
    group by customer_snapshots.customer_id, customer_snapshots.snapshot_date

),

cookie_owners as (

    select
        source_key as anonymous_id,
        customer_id
    from identifiers
    where source = 'web_cookie'

),

customer_events as (

    select
        cookie_owners.customer_id,
        cast(web_events.event_at as date) as event_on,
        web_events.event_type,
        web_events.session_id
    from web_events
    inner join cookie_owners
        on web_events.anonymous_id = cookie_owners.anonymous_id

),

web_features as (

    select
        customer_snapshots.customer_id,
        customer_snapshots.snapshot_date,
        count(distinct case when customer_events.event_on > {{ dbt.dateadd('day', -30, 'customer_snapshots.snapshot_date') }} then customer_events.session_id end) as web_sessions_30d,
        count(case when customer_events.event_type = 'product_view' and customer_events.event_on > {{ dbt.dateadd('day', -30, 'customer_snapshots.snapshot_date') }} then 1 end) as product_views_30d,
        count(case when customer_events.event_type = 'add_to_cart' and customer_events.event_on > {{ dbt.dateadd('day', -30, 'customer_snapshots.snapshot_date') }} then 1 end) as cart_adds_30d,
        count(case when customer_events.event_type = 'email_open' and customer_events.event_on > {{ dbt.dateadd('day', -90, 'customer_snapshots.snapshot_date') }} then 1 end) as email_opens_90d,
        count(case when customer_events.event_type = 'email_click' and customer_events.event_on > {{ dbt.dateadd('day', -90, 'customer_snapshots.snapshot_date') }} then 1 end) as email_clicks_90d,
        max(customer_events.event_on) as last_web_event_on
    from customer_snapshots
    inner join customer_events
        on
            customer_snapshots.customer_id = customer_events.customer_id
            and customer_snapshots.snapshot_date >= customer_events.event_on
    group by customer_snapshots.customer_id, customer_snapshots.snapshot_date

),

final as (

    select
        customer_snapshots.customer_id,
        customer_snapshots.snapshot_date,
        cast({{ dbt.datediff('purchase_features.last_purchase_on', 'customer_snapshots.snapshot_date', 'day') }} as {{ dbt.type_int() }}) as recency_days,
        cast(purchase_features.frequency as {{ dbt.type_int() }}) as frequency,
        cast(purchase_features.monetary as {{ dbt.type_float() }}) as monetary,
        cast({{ dbt.datediff('customer_snapshots.first_seen_on', 'customer_snapshots.snapshot_date', 'day') }} as {{ dbt.type_int() }}) as tenure_days,
        cast(case when purchase_features.frequency > 0 then purchase_features.monetary / purchase_features.frequency end as {{ dbt.type_float() }}) as avg_order_value,
        cast(purchase_features.frequency_90d as {{ dbt.type_int() }}) as frequency_90d,
        cast(purchase_features.monetary_90d as {{ dbt.type_float() }}) as monetary_90d,
        cast(case when purchase_features.frequency > 0 then 1.0 * purchase_features.online_orders / purchase_features.frequency end as {{ dbt.type_float() }}) as online_share,
        cast(coalesce(web_features.web_sessions_30d, 0) as {{ dbt.type_int() }}) as web_sessions_30d,
        cast(coalesce(web_features.product_views_30d, 0) as {{ dbt.type_int() }}) as product_views_30d,
        cast(coalesce(web_features.cart_adds_30d, 0) as {{ dbt.type_int() }}) as cart_adds_30d,
        cast(coalesce(web_features.email_opens_90d, 0) as {{ dbt.type_int() }}) as email_opens_90d,
        cast(coalesce(web_features.email_clicks_90d, 0) as {{ dbt.type_int() }}) as email_clicks_90d,
        cast({{ dbt.datediff('web_features.last_web_event_on', 'customer_snapshots.snapshot_date', 'day') }} as {{ dbt.type_int() }}) as days_since_last_web_event
    from customer_snapshots
    left join purchase_features
        on
            customer_snapshots.customer_id = purchase_features.customer_id
            and customer_snapshots.snapshot_date = purchase_features.snapshot_date
    left join web_features
        on
            customer_snapshots.customer_id = web_features.customer_id
            and customer_snapshots.snapshot_date = web_features.snapshot_date

)

select * from final
