{#
    One row per customer and day with any activity: purchases, returns, web and email events,
    abandoned carts (cart adds with no order placed within 24 hours). Events are read summed
    per cookie and day (int_web_cookie_days). Incremental by customer and day (delete+insert
    on both): a run builds only the (customer, day) pairs that changed and the day before
    each (its abandoned carts read the next 24 hours' orders):
      - pairs whose orders changed: each row keeps a fingerprint of its orders (id, content and
        landing batch), compared with the orders now. Late orders, status updates, an order
        moved to another customer by a merge, a customer turned test account;
      - pairs with events landed after the table was last built (each row keeps the latest
        landing batch among its sources; newer batches hold the new and late events);
      - pairs of cookies whose owner changed (linked today, merged, owner turned test account):
        the cookie owners the table was built with are kept in
        intermediate.fct_customer_daily_cookie_owners (written after each build), so only the
        days the changed cookies were seen are built again.
    A pair left with no source row is written as an empty row (no landing batch) and deleted
    after the insert, and logged in intermediate.fct_customer_daily_removed. A rebuilt pair
    equal to the row held is not written again: built_at (when the row last changed) and that
    log tell the models reading this one which customers' days changed.
    Only activity on or before the run date (var snapshot_date) is read.
    An event re-delivered under another cookie or on another day stays where it was first
    counted until a full refresh (int_web_cookie_days).
#}
{%- set built_owners = api.Relation.create(database=this.database, schema='intermediate', identifier='fct_customer_daily_cookie_owners') -%}
{#- The cookie owners this build used, kept for the next run (refs render when the hook runs). -#}
{%- set save_owners = "create or replace table " ~ built_owners ~ " as "
    ~ "select identifiers.source_key as anonymous_id, identifiers.customer_id "
    ~ "from {{ ref('customer_identifiers') }} as identifiers "
    ~ "inner join {{ ref('dim_customers') }} as customers on identifiers.customer_id = customers.customer_id "
    ~ "where identifiers.source = 'web_cookie' and not customers.is_test_account" -%}
{{ config(**customer_day_incremental_config(drops_empty_rows=true, after=[save_owners])) }}
{%- set owners_known = is_incremental() and load_relation(built_owners) is not none %}

with

orders as (

    select * from {{ ref('fct_orders') }}

),

{# Inlined when incremental (filters reach the scan); a full refresh reads every row once. #}
cookie_days as {{ inlined() if is_incremental() }} (

    select * from {{ ref('int_web_cookie_days') }}

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

cookie_owners as {{ materialized() }} (

    select
        identifiers.source_key as anonymous_id,
        identifiers.customer_id
    from identifiers
    inner join real_customers
        on identifiers.customer_id = real_customers.customer_id
    where identifiers.source = 'web_cookie'

),

customer_orders as {{ materialized() }} (

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

customer_cookie_days as (

    select
        cookie_owners.customer_id,
        cookie_days.*
    from cookie_days
    inner join cookie_owners
        on cookie_days.anonymous_id = cookie_owners.anonymous_id
    where cookie_days.day <= cast('{{ var("snapshot_date") }}' as date)

),

order_pairs as (

    -- Fingerprint of every (customer, day)'s orders.
    select
        customer_id,
        day,
        {{ fingerprint(['order_id', 'ordered_at', 'status', 'channel', 'amount', 'landed_batch_id']) }} as orders_fingerprint
    from customer_orders
    group by customer_id, day

),

{% if is_incremental() %}

    built_pairs as (

        select
            customer_id,
            day,
            orders_fingerprint
        from {{ this }}
        where orders_fingerprint is not null

    ),

    {% if owners_known %}
        changed_cookies as {{ materialized() }} (

            -- Cookies whose owner changed since the last build, with the old and the new owner.
            select
                coalesce(now_owned.anonymous_id, was_owned.anonymous_id) as anonymous_id,
                now_owned.customer_id as new_owner,
                was_owned.customer_id as old_owner
            from cookie_owners as now_owned
            full outer join {{ built_owners }} as was_owned
                on now_owned.anonymous_id = was_owned.anonymous_id
            where now_owned.customer_id is distinct from was_owned.customer_id

        ),

        changed_cookie_owners as {{ materialized() }} (

            select
                anonymous_id,
                new_owner as customer_id
            from changed_cookies
            where new_owner is not null
            union
            select
                anonymous_id,
                old_owner as customer_id
            from changed_cookies
            where old_owner is not null

        ),
    {% endif %}

    changed_pairs as {{ materialized() }} (

        -- Pairs whose orders changed (or appeared, or went).
        select
            coalesce(order_pairs.customer_id, built_pairs.customer_id) as customer_id,
            coalesce(order_pairs.day, built_pairs.day) as day
        from order_pairs
        full outer join built_pairs
            on
                order_pairs.customer_id = built_pairs.customer_id
                and order_pairs.day = built_pairs.day
        where order_pairs.orders_fingerprint is distinct from built_pairs.orders_fingerprint
        union
        -- Pairs with events landed since the last build (the batch as a literal: the scan is
        -- filtered before the join).
        select
            cookie_owners.customer_id,
            cookie_days.day
        from cookie_days
        inner join cookie_owners
            on cookie_days.anonymous_id = cookie_owners.anonymous_id
        where
            cookie_days.landed_batch_id > '{{ value_in(this, "max(landed_batch_id)") or "" }}'
            and cookie_days.day <= cast('{{ var("snapshot_date") }}' as date)
        {% if not owners_known %}
            -- No record of the cookie owners the table was built with: build every pair.
            union
            select
                customer_id,
                day
            from {{ this }}
            union
            select
                customer_id,
                day
            from customer_cookie_days
        {% endif %}
        {% if owners_known %}
            union
            -- Every day a cookie whose owner changed was seen, for its old and its new owner.
            select
                changed_cookies.customer_id,
                cookie_days.day
            from cookie_days
            inner join changed_cookie_owners as changed_cookies
                on cookie_days.anonymous_id = changed_cookies.anonymous_id
            where cookie_days.day <= cast('{{ var("snapshot_date") }}' as date)
        {% endif %}

    ),

    pairs_to_build as {{ materialized() }} (

        -- The changed pairs and the day before each (abandoned carts look 24 hours ahead).
        {%- if target.type == 'spark' %}
            -- Spark overwrites whole day partitions: every pair of a day with a change.
            select
                customer_id,
                day
            from (
                select customer_id, day from customer_orders
                union
                select customer_id, day from customer_cookie_days
            ) as active_pairs
            where
                day in (select changed_pairs.day from changed_pairs)
                or day in (select {{ dbt.dateadd('day', -1, 'changed_pairs.day') }} from changed_pairs)
            union
        {%- endif %}
        select
            customer_id,
            day
        from changed_pairs
        union
        select
            customer_id,
            cast({{ dbt.dateadd('day', -1, 'day') }} as date) as day
        from changed_pairs

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
        customer_orders.landed_batch_id,
        {{ empty_string_list() }} as session_ids,
        {{ empty_string_list() }} as browse_session_ids,
        0 as web_events,
        0 as browse_events,
        0 as product_views,
        0 as cart_adds,
        0 as email_opens,
        0 as email_clicks
    from customer_orders
    {% if is_incremental() %}
        inner join pairs_to_build
            on
                customer_orders.customer_id = pairs_to_build.customer_id
                and customer_orders.day = pairs_to_build.day
    {% endif %}

),

{% if is_incremental() %}

    cookies_to_read as {{ materialized() }} (

        select
            anonymous_id,
            customer_id
        from cookie_owners
        where customer_id in (select pairs_to_build.customer_id from pairs_to_build)

    ),

{% endif %}

cookie_days_to_build as {{ materialized() }} (

    {% if is_incremental() %}
        -- Only the pairs to build: their customers' cookies, on those days.
        select
            cookies_to_read.customer_id,
            cookie_days.*
        from cookie_days
        inner join cookies_to_read
            on cookie_days.anonymous_id = cookies_to_read.anonymous_id
        inner join pairs_to_build
            on
                cookies_to_read.customer_id = pairs_to_build.customer_id
                and cookie_days.day = pairs_to_build.day
        -- Redundant with the join, but it lets the scan skip other cookies' days early.
        where cookie_days.anonymous_id in (select cookies_to_read.anonymous_id from cookies_to_read)
    {% else %}
        select * from customer_cookie_days
    {% endif %}

),

cart_adds as (

    select
        customer_id,
        day,
        {{ unnest_list('cart_adds_at') }} as added_at
    from cookie_days_to_build

),

abandoned_carts as (

    -- Cart adds with no order placed by the same customer within 24 hours.
    select
        customer_id,
        day,
        count(*) as abandoned_carts
    from cart_adds
    where
        not exists (
            select 1
            from placed_orders
            where
                placed_orders.customer_id = cart_adds.customer_id
                and cart_adds.added_at <= placed_orders.ordered_at
                and {{ dbt.dateadd('hour', 24, 'cart_adds.added_at') }} > placed_orders.ordered_at
        )
    group by customer_id, day

),

event_activity as (

    select
        customer_id,
        day,
        0 as completed_orders,
        0 as completed_amount,
        0 as refunded_orders,
        0 as refunded_amount,
        0 as cancelled_orders,
        0 as online_orders,
        0 as store_orders,
        landed_batch_id,
        session_ids,
        browse_session_ids,
        web_events,
        browse_events,
        product_views,
        cart_adds,
        email_opens,
        email_clicks
    from cookie_days_to_build

),

activity as (

    select * from order_activity
    union all
    select * from event_activity

),

final as {{ materialized() }} (

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
        cast({{ distinct_count_in_lists('activity.session_ids') }} as {{ dbt.type_int() }}) as web_sessions,
        cast(sum(activity.browse_events) as {{ dbt.type_int() }}) as browse_events,
        cast({{ distinct_count_in_lists('activity.browse_session_ids') }} as {{ dbt.type_int() }}) as browse_sessions,
        cast(sum(activity.product_views) as {{ dbt.type_int() }}) as product_views,
        cast(sum(activity.cart_adds) as {{ dbt.type_int() }}) as cart_adds,
        cast(sum(activity.email_opens) as {{ dbt.type_int() }}) as email_opens,
        cast(sum(activity.email_clicks) as {{ dbt.type_int() }}) as email_clicks,
        -- One abandoned_carts row per pair at most: the join repeats it, max takes it once.
        cast(coalesce(max(abandoned_carts.abandoned_carts), 0) as {{ dbt.type_int() }}) as abandoned_carts,
        max(order_pairs.orders_fingerprint) as orders_fingerprint,
        max(activity.landed_batch_id) as landed_batch_id,
        {{ build_timestamp() }} as built_at
    from activity
    left join order_pairs
        on
            activity.customer_id = order_pairs.customer_id
            and activity.day = order_pairs.day
    left join abandoned_carts
        on
            activity.customer_id = abandoned_carts.customer_id
            and activity.day = abandoned_carts.day
    group by activity.customer_id, activity.day

)

{%- set content_columns = ['completed_orders', 'completed_amount', 'refunded_orders', 'refunded_amount', 'cancelled_orders', 'online_orders', 'store_orders', 'web_events', 'web_sessions', 'browse_events', 'browse_sessions', 'product_views', 'cart_adds', 'email_opens', 'email_clicks', 'abandoned_carts'] %}

select * from final
{% if is_incremental() and target.type != 'spark' %}
    -- A rebuilt pair equal to the row the table holds is left alone (built_at keeps telling
    -- when it last changed).
    where not exists (
        select 1
        from {{ this }} as built
        where
            built.customer_id = final.customer_id
            and built.day = final.day
            {%- for column in content_columns + ['orders_fingerprint', 'landed_batch_id'] %}
                and built.{{ column }} is not distinct from final.{{ column }}
            {%- endfor %}
    )
    union all
    -- Built pairs with no source row left: an empty row (no landing batch) replaces the old
    -- one, and the post-hook deletes it.
    select
        pairs_to_build.customer_id,
        pairs_to_build.day,
        {%- for column in content_columns %}
            0 as {{ column }},
        {%- endfor %}
        null as orders_fingerprint,
        null as landed_batch_id,
        {{ build_timestamp() }} as built_at
    from pairs_to_build
    inner join {{ this }} as built
        on
            pairs_to_build.customer_id = built.customer_id
            and pairs_to_build.day = built.day
    where not exists (
        select 1
        from final
        where
            final.customer_id = pairs_to_build.customer_id
            and final.day = pairs_to_build.day
    )
{% endif %}
