{#
    One row per customer and day with any activity: purchases, returns, web and email events,
    abandoned carts (cart adds with no order placed within 24 hours). Incremental by day: a run
    rebuilds (delete+insert) only the days that changed, which are
      - days whose inputs changed: each day keeps a fingerprint of its source rows (customer,
        order or event id, and the landing batch the row's latest version came in, from the
        load manifest). Late-arriving orders or events for an earlier day, order status
        updates, a cookie linked to a customer, customers merged or turned test accounts all
        change the fingerprint of the days they touch;
      - the day before each of those (its abandoned carts read the next 24 hours' orders);
      - the last incremental_lookback_days days up to the run date, so re-running a day
        replaces it.
    Only activity on or before the run date (var snapshot_date) is read.
#}
{{ config(**daily_incremental_config()) }}

with

orders as (

    select * from {{ ref('fct_orders') }}

),

web_events as (

    select * from {{ ref('stg_web__events') }}

),

identifiers as (

    select * from {{ ref('customer_identifiers') }}

),

customers as (

    select * from {{ ref('dim_customers') }}

),

real_customers as (

    select customer_id
    from customers
    where not is_test_account

),

cookie_owners as (

    select
        source_key as anonymous_id,
        customer_id
    from identifiers
    where source = 'web_cookie'

),

customer_orders as (

    select
        orders.customer_id,
        orders.order_id,
        orders.ordered_on as day,
        orders.ordered_at,
        orders.status,
        orders.channel,
        orders.amount,
        orders.landed_batch_id
    from orders
    inner join real_customers
        on orders.customer_id = real_customers.customer_id
    where orders.ordered_on <= cast('{{ var("snapshot_date") }}' as date)

),

customer_events as (

    select
        cookie_owners.customer_id,
        web_events.event_id,
        cast(web_events.event_at as date) as day,
        web_events.event_at,
        web_events.event_type,
        web_events.session_id,
        web_events.landed_batch_id
    from web_events
    inner join cookie_owners
        on web_events.anonymous_id = cookie_owners.anonymous_id
    inner join real_customers
        on cookie_owners.customer_id = real_customers.customer_id
    where cast(web_events.event_at as date) <= cast('{{ var("snapshot_date") }}' as date)

),

source_days as (

    -- Fingerprint of every day's source rows: who, which row, from which landing batch.
    select
        day,
        {{ fingerprint(['customer_id', 'row_id', 'landed_batch_id']) }} as source_fingerprint
    from (
        select
            day,
            customer_id,
            order_id as row_id,
            landed_batch_id
        from customer_orders
        union all
        select
            day,
            customer_id,
            event_id as row_id,
            landed_batch_id
        from customer_events
    ) as activity
    group by day

),

built_days as (

    -- What this table holds per day (nothing on a full refresh).
    {% if is_incremental() %}
        select
            day,
            max(source_fingerprint) as source_fingerprint
        from {{ this }}
        group by day
    {% else %}
        select
            day,
            source_fingerprint
        from source_days
        where false
    {% endif %}

),

changed_days as (

    select source_days.day
    from source_days
    left join built_days
        on source_days.day = built_days.day
    where
        built_days.day is null
        or source_days.source_fingerprint <> built_days.source_fingerprint
    union all
    -- Days that had rows and now have none (their only customer merged away, say).
    select built_days.day
    from built_days
    left join source_days
        on built_days.day = source_days.day
    where source_days.day is null
    union all
    select day
    from source_days
    where day > {{ dbt.dateadd('day', -1 - var('incremental_lookback_days'), "cast('" ~ var('snapshot_date') ~ "' as date)") }}

),

days_to_build as (

    select day from changed_days
    union
    select {{ dbt.dateadd('day', -1, 'day') }} as day from changed_days

),

placed_orders as (

    -- Orders placed and not cancelled: what turns a cart into a purchase.
    select
        customer_id,
        ordered_at
    from customer_orders
    where status in ('completed', 'refunded')

),

order_activity as (

    select
        customer_orders.customer_id,
        customer_orders.day,
        case when customer_orders.status = 'completed' then 1 else 0 end as completed_orders,
        case when customer_orders.status = 'completed' then customer_orders.amount else 0 end as completed_amount,
        case when customer_orders.status = 'refunded' then 1 else 0 end as refunded_orders,
        case when customer_orders.status = 'refunded' then customer_orders.amount else 0 end as refunded_amount,
        case when customer_orders.status = 'cancelled' then 1 else 0 end as cancelled_orders,
        case when customer_orders.status = 'completed' and customer_orders.channel = 'online' then 1 else 0 end as online_orders,
        case when customer_orders.status = 'completed' and customer_orders.channel = 'store' then 1 else 0 end as store_orders,
        cast(null as {{ dbt.type_string() }}) as session_id,
        cast(null as {{ dbt.type_string() }}) as browse_session_id,
        0 as web_events,
        0 as browse_events,
        0 as product_views,
        0 as cart_adds,
        0 as email_opens,
        0 as email_clicks,
        0 as abandoned_carts
    from customer_orders
    inner join days_to_build
        on customer_orders.day = days_to_build.day

),

event_activity as (

    select
        customer_events.customer_id,
        customer_events.day,
        0 as completed_orders,
        0 as completed_amount,
        0 as refunded_orders,
        0 as refunded_amount,
        0 as cancelled_orders,
        0 as online_orders,
        0 as store_orders,
        customer_events.session_id,
        case when customer_events.event_type <> 'email_open' then customer_events.session_id end as browse_session_id,
        1 as web_events,
        case when customer_events.event_type <> 'email_open' then 1 else 0 end as browse_events,
        case when customer_events.event_type = 'product_view' then 1 else 0 end as product_views,
        case when customer_events.event_type = 'add_to_cart' then 1 else 0 end as cart_adds,
        case when customer_events.event_type = 'email_open' then 1 else 0 end as email_opens,
        case when customer_events.event_type = 'email_click' then 1 else 0 end as email_clicks,
        case
            when
                customer_events.event_type = 'add_to_cart'
                and not exists (
                    select 1
                    from placed_orders
                    where
                        placed_orders.customer_id = customer_events.customer_id
                        and placed_orders.ordered_at >= customer_events.event_at
                        and placed_orders.ordered_at < {{ dbt.dateadd('hour', 24, 'customer_events.event_at') }}
                )
                then 1
            else 0
        end as abandoned_carts
    from customer_events
    inner join days_to_build
        on customer_events.day = days_to_build.day

),

activity as (

    select * from order_activity
    union all
    select * from event_activity

),

final as (

    select
        activity.customer_id,
        activity.day,
        cast(sum(activity.completed_orders) as {{ dbt.type_int() }}) as completed_orders,
        cast(sum(activity.completed_amount) as {{ dbt.type_float() }}) as completed_amount,
        cast(sum(activity.refunded_orders) as {{ dbt.type_int() }}) as refunded_orders,
        cast(sum(activity.refunded_amount) as {{ dbt.type_float() }}) as refunded_amount,
        cast(sum(activity.cancelled_orders) as {{ dbt.type_int() }}) as cancelled_orders,
        cast(sum(activity.online_orders) as {{ dbt.type_int() }}) as online_orders,
        cast(sum(activity.store_orders) as {{ dbt.type_int() }}) as store_orders,
        cast(sum(activity.web_events) as {{ dbt.type_int() }}) as web_events,
        cast(count(distinct activity.session_id) as {{ dbt.type_int() }}) as web_sessions,
        cast(sum(activity.browse_events) as {{ dbt.type_int() }}) as browse_events,
        cast(count(distinct activity.browse_session_id) as {{ dbt.type_int() }}) as browse_sessions,
        cast(sum(activity.product_views) as {{ dbt.type_int() }}) as product_views,
        cast(sum(activity.cart_adds) as {{ dbt.type_int() }}) as cart_adds,
        cast(sum(activity.email_opens) as {{ dbt.type_int() }}) as email_opens,
        cast(sum(activity.email_clicks) as {{ dbt.type_int() }}) as email_clicks,
        cast(sum(activity.abandoned_carts) as {{ dbt.type_int() }}) as abandoned_carts,
        max(source_days.source_fingerprint) as source_fingerprint
    from activity
    inner join source_days
        on activity.day = source_days.day
    group by activity.customer_id, activity.day

)

select * from final
