{#
    One row per customer and day with any activity: purchases, returns, web and email events,
    abandoned carts (cart adds with no order placed within 24 hours). Incremental by customer
    and day (delete+insert on both): each row keeps a fingerprint of its source rows (order or
    event id and content, and the landing batch the row's latest version came in). A run
    builds only the (customer, day) pairs whose fingerprint changed or is new, and the day
    before each (its abandoned carts read the next 24 hours' orders). Late-arriving orders or
    events, status updates, a cookie linked to a customer, customers merged or turned test
    accounts all change the pairs they touch, and only those. A pair left with no source rows
    (its cookie now belongs to someone else, its customer was merged away) is written as an
    empty row (no fingerprint) and deleted after the insert: no stale row is left behind.
    Only activity on or before the run date (var snapshot_date) is read.
#}
{{ config(**customer_day_incremental_config(drops_empty_rows=true)) }}

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

source_pairs as (

    -- Fingerprint of every (customer, day)'s source rows.
    select
        customer_id,
        day,
        {{ combine_fingerprints('row_fingerprint') }} as source_fingerprint
    from (
        select
            customer_id,
            day,
            {{ row_hash(['order_id', 'ordered_at', 'status', 'channel', 'amount', 'landed_batch_id']) }} as row_fingerprint
        from customer_orders
        union all
        select
            customer_id,
            day,
            {{ row_hash(['event_id', 'event_at', 'event_type', 'session_id', 'landed_batch_id']) }} as row_fingerprint
        from customer_events
    ) as source_rows
    group by customer_id, day

),

{% if is_incremental() %}

    built_pairs as (

        select
            customer_id,
            day,
            source_fingerprint
        from {{ this }}

    ),

    changed_pairs as (

        -- New or changed pairs, and pairs that lost every source row.
        select
            coalesce(source_pairs.customer_id, built_pairs.customer_id) as customer_id,
            coalesce(source_pairs.day, built_pairs.day) as day
        from source_pairs
        full outer join built_pairs
            on
                source_pairs.customer_id = built_pairs.customer_id
                and source_pairs.day = built_pairs.day
        where source_pairs.source_fingerprint is distinct from built_pairs.source_fingerprint

    ),

    pairs_to_build as (

        -- The changed pairs and the day before each (abandoned carts look 24 hours ahead).
        {%- if target.type == 'spark' %}
            -- Spark overwrites whole day partitions: every pair of a day with a change.
            select
                source_pairs.customer_id,
                source_pairs.day
            from source_pairs
            where
                source_pairs.day in (select changed_pairs.day from changed_pairs)
                or source_pairs.day in (select {{ dbt.dateadd('day', -1, 'changed_pairs.day') }} from changed_pairs)
            union
        {%- endif %}
        select
            customer_id,
            day
        from changed_pairs
        union
        select
            source_pairs.customer_id,
            source_pairs.day
        from source_pairs
        inner join changed_pairs
            on
                source_pairs.customer_id = changed_pairs.customer_id
                and source_pairs.day = {{ dbt.dateadd('day', -1, 'changed_pairs.day') }}

    ),

{% endif %}

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
    {% if is_incremental() %}
        inner join pairs_to_build
            on
                customer_orders.customer_id = pairs_to_build.customer_id
                and customer_orders.day = pairs_to_build.day
    {% endif %}

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
    {% if is_incremental() %}
        inner join pairs_to_build
            on
                customer_events.customer_id = pairs_to_build.customer_id
                and customer_events.day = pairs_to_build.day
    {% endif %}

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
        max(source_pairs.source_fingerprint) as source_fingerprint
    from activity
    inner join source_pairs
        on
            activity.customer_id = source_pairs.customer_id
            and activity.day = source_pairs.day
    group by activity.customer_id, activity.day

)

select * from final
{% if is_incremental() and target.type != 'spark' %}
    union all
    -- Pairs with no source row left: an empty row replaces the old one, then goes (post-hook).
    select
        changed_pairs.customer_id,
        changed_pairs.day,
        {%- for column in ['completed_orders', 'completed_amount', 'refunded_orders', 'refunded_amount', 'cancelled_orders', 'online_orders', 'store_orders', 'web_events', 'web_sessions', 'browse_events', 'browse_sessions', 'product_views', 'cart_adds', 'email_opens', 'email_clicks', 'abandoned_carts'] %}
            0 as {{ column }},
        {%- endfor %}
        null as source_fingerprint
    from changed_pairs
    where not exists (
        select 1
        from source_pairs
        where
            source_pairs.customer_id = changed_pairs.customer_id
            and source_pairs.day = changed_pairs.day
    )
{% endif %}
