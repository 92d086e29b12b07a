{#
    Behaviour per customer and snapshot (marts.customer_features adds the RFM scores, the VIP
    flag and the lifecycle stage on top), as of the end of each snapshot date (events on or
    before it). Web and e-mail engagement are sums over fct_customer_daily, the incremental
    daily fact, so the nightly run does not rescan every web event. Purchases are completed
    orders in the reporting currency; cancelled and refunded orders do not count. A customer
    appears from the day they are first seen. Never bought: recency is null, frequency and
    monetary 0. No web activity: web counts 0.
    Basket features (lines, discounts, categories) read the order lines of those purchases;
    the product category is reference data from the catalog, not customer behaviour.
    Refunded orders are returns: they count in returns_rate, never in spend ("net of refunds").
    Abandoned carts in the last 24 hours: add-to-cart events on the snapshot day (the 24 hours
    before its end) with no order placed by the customer between the cart add and the end of
    the snapshot day (nothing after the snapshot may be read).

    Incremental by snapshot (see snapshot_incremental_config): the table holds the snapshot
    dates of the last run. A snapshot S is built from the latest snapshot P <= S the table
    holds. Most customers' rows are carried over from P: their "days since" columns move on by
    S - P, and their web and e-mail window counts add the days entering the window (P, S]
    and take off the days leaving it (P - w, S - w] (integer sums: exact). A customer is
    computed again, from all their history, when
      - their inputs up to the previous run date changed since this table was built: the
        daily fact rebuilt or removed one of their days up to then (its rows' built_at and its
        log of removed pairs: late data, a status update, a merge, a cookie linked), lines of
        their purchases landed since, a product they bought moved to another category (the
        categories read are kept in intermediate.int_customer_features_aggregated_categories),
        or their first seen day moved. Nothing is hashed: the run reads only what changed;
      - they ordered on a day entering the snapshot (purchases, returns, baskets and
        categories are computed, never summed up: amounts are floating point), had a
        purchase leave the 90 or 365-day window, added to cart on the snapshot day or had
        abandoned carts at P (a one-day count).
    A snapshot with no earlier one in the table is computed for everybody, as on a full refresh.
    carried_from says which rows were carried over (customer_category_mix carries the same).
#}
{%- set web_window_sums = [
    ('web_sessions_30d', 'web_sessions', 30), ('product_views_30d', 'product_views', 30),
    ('cart_adds_30d', 'cart_adds', 30), ('email_opens_90d', 'email_opens', 90),
    ('email_clicks_90d', 'email_clicks', 90), ('browse_sessions_90d', 'browse_sessions', 90),
    ('browse_sessions_365d', 'browse_sessions', 365), ('email_opens_30d', 'email_opens', 30),
    ('email_opens_365d', 'email_opens', 365), ('web_sessions_90d', 'web_sessions', 90),
    ('product_views_90d', 'product_views', 90), ('cart_adds_90d', 'cart_adds', 90),
    ('email_clicks_30d', 'email_clicks', 30),
] -%}
{#- Days since the last day with any of these (column, the daily count that marks the day). -#}
{%- set last_activity = [
    ('days_since_last_web_event', 'web_events'), ('days_since_last_browse', 'browse_events'),
    ('days_since_last_email_open', 'email_opens'),
] -%}
{%- set shifted_only = ['recency_days', 'tenure_days', 'days_since_first_purchase'] -%}
{#- The product categories this build read, kept for the next run (refs render when the hook runs). -#}
{%- set seen_categories = api.Relation.create(database=this.database, schema='intermediate', identifier='int_customer_features_aggregated_categories') -%}
{%- set save_categories = "create or replace table " ~ seen_categories ~ " as select sku, category from {{ ref('stg_catalog__products') }}" -%}
{{ config(**snapshot_incremental_config(after=[save_categories])) }}

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

cookie_days as (

    select * from {{ ref('int_web_cookie_days') }}

),

daily as {{ inlined() }} (

    select * from {{ ref('fct_customer_daily') }}

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

    select
        customer_id,
        cast(first_seen_at as date) as first_seen_on
    from customers
    where not is_test_account

),

order_lines as (

    -- Online lines carry a discount; store receipts have none.
    select
        order_id,
        sku,
        discount_amount > 0 as is_discounted,
        landed_batch_id
    from shop_order_lines
    union all
    select
        receipt_id as order_id,
        sku,
        false as is_discounted,
        landed_batch_id
    from pos_receipt_lines

),

{#- The previous run date: the latest snapshot the table holds (the run date on a full refresh). -#}
{%- if is_incremental() -%}
    {%- set previous_run = "cast('" ~ (value_in(this, 'max(snapshot_date)') or var('snapshot_date')) ~ "' as date)" -%}
{%- else -%}
    {%- set previous_run = "cast('" ~ var('snapshot_date') ~ "' as date)" -%}
{%- endif %}

{% if is_incremental() %}

    built as (

        select * from {{ this }}

    ),

    daily_changes as {{ materialized() }} (

        -- Customers whose daily rows up to the previous run date changed since this table was
        -- built: rows rebuilt (built_at) or deleted (the daily fact's log of removed pairs).
        {%- set last_built_at = value_in(this, 'max(built_at)') or '1970-01-01' %}
        select customer_id
        from daily
        where
            built_at > cast('{{ last_built_at }}' as {{ dbt.type_timestamp() }})
            and day <= {{ previous_run }}
        union
        {%- if load_relation(removed_pairs_log()) is not none %}
            select customer_id
            from {{ removed_pairs_log() }}
            where
                built_at > cast('{{ last_built_at }}' as {{ dbt.type_timestamp() }})
                and day <= {{ previous_run }}
        {%- else %}
            -- No log of removed pairs (a daily fact built elsewhere): everybody.
            select customer_id
            from real_customers
        {%- endif %}

    ),

    changed_skus as (

        -- Products whose category is not the one the last build read (new products too).
        {%- if load_relation(seen_categories) is not none %}
            select coalesce(products.sku, seen.sku) as sku
            from products
            full outer join {{ seen_categories }} as seen
                on products.sku = seen.sku
            where products.category is distinct from seen.category
        {%- else %}
            select sku from products
        {%- endif %}

    ),

    lines_changed as {{ materialized() }} (

        -- Customers whose purchases' lines changed: lines landed since the last build, or lines
        -- of a product whose category changed.
        select orders.customer_id
        from orders
        inner join (
            select order_id
            from order_lines
            where landed_batch_id >= '{{ landing_batch_at(last_built_at) }}'
            union
            select order_id
            from order_lines
            where sku in (select changed_skus.sku from changed_skus)
        ) as changed_lines
            on orders.order_id = changed_lines.order_id
        where orders.customer_id is not null

    ),

    bases as {{ materialized() }} (

        -- Per snapshot to build: the latest snapshot the table holds on or before it.
        select
            snapshots.snapshot_date,
            max(built_dates.snapshot_date) as base_date
        from snapshots
        inner join (select distinct snapshot_date from built) as built_dates
            on built_dates.snapshot_date <= snapshots.snapshot_date
        group by snapshots.snapshot_date

    ),

    moved_days as (

        -- Per snapshot, the days whose activity enters its windows (entering: (P, S]) or
        -- leaves its w-day window (leaves_w: (P - w, S - w]).
        select
            bases.snapshot_date,
            days.day,
            days.day > bases.base_date and days.day <= bases.snapshot_date as entering
            {%- for window in [30, 90, 365] %},
                days.day > {{ dbt.dateadd('day', -window, 'bases.base_date') }}
                and days.day <= {{ dbt.dateadd('day', -window, 'bases.snapshot_date') }} as leaves_{{ window }}
            {%- endfor %}
        from bases
        inner join (select distinct daily.day from daily) as days
            on
                days.day > {{ dbt.dateadd('day', -365, 'bases.base_date') }}
                and days.day <= bases.snapshot_date

    ),

    moves as {{ materialized() }} (

        -- Per customer and snapshot: what the moved days change.
        select
            daily.customer_id,
            moved_days.snapshot_date,
            {%- for column, count, window in web_window_sums %}
                sum(
                    case when moved_days.entering then daily.{{ count }} else 0 end
                    - case when moved_days.leaves_{{ window }} then daily.{{ count }} else 0 end
                ) as {{ column }},
            {%- endfor %}
            {%- for column, count in last_activity %}
                max(case when moved_days.entering and daily.{{ count }} > 0 then daily.day end) as {{ column }}_on,
            {%- endfor %}
            bool_or(
                moved_days.entering
                and (daily.completed_orders + daily.refunded_orders + daily.cancelled_orders > 0
                    or (daily.day = moved_days.snapshot_date and daily.cart_adds > 0))
                or ((moved_days.leaves_90 or moved_days.leaves_365) and daily.completed_orders > 0)
            ) as orders_moved
        from moved_days
        inner join daily
            on moved_days.day = daily.day
        where
            moved_days.entering
            or moved_days.leaves_30
            or moved_days.leaves_90
            or moved_days.leaves_365
        group by daily.customer_id, moved_days.snapshot_date

    ),

    stale as {{ materialized() }} (

        -- (customer, snapshot) pairs computed again rather than carried over.
        select
            snapshot_date,
            customer_id
        from moves
        where orders_moved
        union
        -- Abandoned carts at the base snapshot (a one-day count), or a first seen day that moved
        -- (tenure_days tells the one the row was built with).
        select
            bases.snapshot_date,
            built.customer_id
        from bases
        inner join built
            on bases.base_date = built.snapshot_date
        left join real_customers
            on built.customer_id = real_customers.customer_id
        where
            built.abandoned_carts_24h > 0
            or cast({{ dbt.dateadd('day', '-built.tenure_days', 'built.snapshot_date') }} as date) <> real_customers.first_seen_on
        union
        select
            bases.snapshot_date,
            changed_customers.customer_id
        from (
            select daily_changes.customer_id from daily_changes
            union
            select lines_changed.customer_id from lines_changed
        ) as changed_customers
        cross join bases

    ),

    carried as {{ materialized() }} (

        -- Rows of the base snapshot moved on to the snapshot being built.
        select
            built.* replace (
                bases.snapshot_date as snapshot_date,
                {%- for column in shifted_only %}
                    cast(
                        built.{{ column }} + {{ dbt.datediff('bases.base_date', 'bases.snapshot_date', 'day') }} as {{ dbt.type_int() }}
                    ) as {{ column }},
                {%- endfor %}
                {%- for column, count in last_activity %}
                    cast(
                        coalesce(
                            {{ dbt.datediff('moves.' ~ column ~ '_on', 'bases.snapshot_date', 'day') }},
                            built.{{ column }} + {{ dbt.datediff('bases.base_date', 'bases.snapshot_date', 'day') }}
                        ) as {{ dbt.type_int() }}
                    ) as {{ column }},
                {%- endfor %}
                {%- for column, count, window in web_window_sums %}
                    cast(built.{{ column }} + coalesce(moves.{{ column }}, 0) as {{ dbt.type_int() }}) as {{ column }},
                {%- endfor %}
                bases.base_date as carried_from,
                {{ build_timestamp() }} as built_at
            )
        from built
        inner join bases
            on built.snapshot_date = bases.base_date
        inner join real_customers
            on built.customer_id = real_customers.customer_id
        left join moves
            on
                built.customer_id = moves.customer_id
                and bases.snapshot_date = moves.snapshot_date
        where not exists (
            select 1
            from stale
            where
                stale.snapshot_date = bases.snapshot_date
                and stale.customer_id = built.customer_id
        )

    ),

    carried_pairs as (

        select
            customer_id,
            snapshot_date
        from carried

    ),

{% else %}

    carried_pairs as (

        select
            real_customers.customer_id,
            snapshots.snapshot_date
        from real_customers
        cross join snapshots
        where false

    ),

{% endif %}

customer_snapshots as {{ materialized() }} (

    -- The (customer, snapshot) pairs computed here: all of them on a full refresh.
    select
        real_customers.customer_id,
        snapshots.snapshot_date,
        real_customers.first_seen_on
    from real_customers
    cross join snapshots
    where
        real_customers.first_seen_on <= snapshots.snapshot_date
        and not exists (
            select 1
            from carried_pairs
            where
                carried_pairs.customer_id = real_customers.customer_id
                and carried_pairs.snapshot_date = snapshots.snapshot_date
        )

),

computed_customers as {{ materialized() }} (

    select distinct customer_id from customer_snapshots

),

purchases as (

    select
        customer_id,
        order_id,
        ordered_on,
        channel,
        amount
    from orders
    where
        status = 'completed'
        and customer_id in (select computed_customers.customer_id from computed_customers)

),

placed_orders as (

    -- Orders the customer placed and did not cancel: a refund is a return of a placed order.
    select
        customer_id,
        ordered_at,
        ordered_on,
        status
    from orders
    where
        status in ('completed', 'refunded')
        and customer_id in (select computed_customers.customer_id from computed_customers)

),

return_features as (

    select
        customer_snapshots.customer_id,
        customer_snapshots.snapshot_date,
        count(*) as placed_orders,
        count(case when placed_orders.status = 'refunded' then 1 end) as refunded_orders
    from customer_snapshots
    inner join placed_orders
        on
            customer_snapshots.customer_id = placed_orders.customer_id
            and customer_snapshots.snapshot_date >= placed_orders.ordered_on
    group by customer_snapshots.customer_id, customer_snapshots.snapshot_date

),

purchase_baskets as (

    select
        purchases.order_id,
        count(order_lines.order_id) as basket_lines,
        count(case when order_lines.is_discounted then 1 end) as discounted_lines
    from purchases
    inner join order_lines
        on purchases.order_id = order_lines.order_id
    group by purchases.order_id

),

purchase_categories as (

    -- When each customer first bought from each category: distinct categories as of any date.
    select
        purchases.customer_id,
        products.category,
        min(purchases.ordered_on) as first_bought_on
    from purchases
    inner join order_lines
        on purchases.order_id = order_lines.order_id
    inner join products
        on order_lines.sku = products.sku
    group by purchases.customer_id, products.category

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
        count(case when purchases.ordered_on > {{ dbt.dateadd('day', -365, 'customer_snapshots.snapshot_date') }} then 1 end) as frequency_365d,
        coalesce(sum(case when purchases.ordered_on > {{ dbt.dateadd('day', -365, 'customer_snapshots.snapshot_date') }} then purchases.amount end), 0) as monetary_365d,
        count(case when purchases.channel = 'online' then 1 end) as online_orders,
        count(purchase_baskets.order_id) as orders_with_lines,
        coalesce(sum(purchase_baskets.basket_lines), 0) as basket_lines,
        coalesce(sum(case when purchases.channel = 'online' then purchase_baskets.basket_lines end), 0) as online_lines,
        coalesce(sum(purchase_baskets.discounted_lines), 0) as discounted_lines
    from customer_snapshots
    left join purchases
        on
            customer_snapshots.customer_id = purchases.customer_id
            and customer_snapshots.snapshot_date >= purchases.ordered_on
    left join purchase_baskets
        on purchases.order_id = purchase_baskets.order_id
    group by customer_snapshots.customer_id, customer_snapshots.snapshot_date

),

category_features as (

    select
        customer_snapshots.customer_id,
        customer_snapshots.snapshot_date,
        count(*) as distinct_categories
    from customer_snapshots
    inner join purchase_categories
        on
            customer_snapshots.customer_id = purchase_categories.customer_id
            and customer_snapshots.snapshot_date >= purchase_categories.first_bought_on
    group by customer_snapshots.customer_id, customer_snapshots.snapshot_date

),

cookie_owners as (

    select
        source_key as anonymous_id,
        customer_id
    from identifiers
    where source = 'web_cookie'

),

snapshot_cart_adds as (

    -- Cart adds on a snapshot day, for abandoned carts as of the end of that day.
    select
        cookie_owners.customer_id,
        {{ unnest_list('cookie_days.cart_adds_at') }} as added_at,
        cookie_days.day as event_on
    from cookie_days
    inner join cookie_owners
        on cookie_days.anonymous_id = cookie_owners.anonymous_id
    where
        cookie_days.cart_adds > 0
        -- The snapshot days as literals, so the scan skips the other days.
        and cookie_days.day in (
            {%- for snapshot_date in feature_snapshot_dates() %}
                cast('{{ snapshot_date }}' as date){{ "," if not loop.last }}
            {%- endfor %}
        )

),

web_features as (

    -- Web and e-mail engagement from the daily activity fact (one row per customer and day):
    -- sessions are counted per day, so a session that runs past midnight counts on both days.
    select
        customer_snapshots.customer_id,
        customer_snapshots.snapshot_date,
        {%- for column, count, window in web_window_sums %}
            sum(case when daily.day > {{ dbt.dateadd('day', -window, 'customer_snapshots.snapshot_date') }} then daily.{{ count }} end) as {{ column }},
        {%- endfor %}
        max(case when daily.web_events > 0 then daily.day end) as last_web_event_on,
        -- Browsing (any event but a newsletter open) and newsletter opens.
        max(case when daily.browse_events > 0 then daily.day end) as last_browse_on,
        max(case when daily.email_opens > 0 then daily.day end) as last_email_open_on
    from customer_snapshots
    inner join daily
        on
            customer_snapshots.customer_id = daily.customer_id
            and customer_snapshots.snapshot_date >= daily.day
    where daily.web_events > 0
    group by customer_snapshots.customer_id, customer_snapshots.snapshot_date

),

last_day_cart_adds as (

    select
        customer_snapshots.customer_id,
        customer_snapshots.snapshot_date,
        snapshot_cart_adds.added_at
    from customer_snapshots
    inner join snapshot_cart_adds
        on
            customer_snapshots.customer_id = snapshot_cart_adds.customer_id
            and customer_snapshots.snapshot_date = snapshot_cart_adds.event_on

),

abandoned_cart_features as (

    select
        last_day_cart_adds.customer_id,
        last_day_cart_adds.snapshot_date,
        count(*) as abandoned_carts_24h
    from last_day_cart_adds
    where
        not exists (
            select 1
            from placed_orders
            where
                placed_orders.customer_id = last_day_cart_adds.customer_id
                and placed_orders.ordered_at >= last_day_cart_adds.added_at
                and placed_orders.ordered_on = last_day_cart_adds.snapshot_date
        )
    group by last_day_cart_adds.customer_id, last_day_cart_adds.snapshot_date

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
        cast({{ dbt.datediff('web_features.last_web_event_on', 'customer_snapshots.snapshot_date', 'day') }} as {{ dbt.type_int() }}) as days_since_last_web_event,
        cast({{ dbt.datediff('purchase_features.first_purchase_on', 'customer_snapshots.snapshot_date', 'day') }} as {{ dbt.type_int() }}) as days_since_first_purchase,
        cast(
            case
                when purchase_features.frequency > 1
                    then
                        1.0 * {{ dbt.datediff('purchase_features.first_purchase_on', 'purchase_features.last_purchase_on', 'day') }}
                        / (purchase_features.frequency - 1)
            end as {{ dbt.type_float() }}
        ) as avg_days_between_purchases,
        cast(purchase_features.frequency_365d as {{ dbt.type_int() }}) as frequency_365d,
        cast(purchase_features.monetary_365d as {{ dbt.type_float() }}) as monetary_365d,
        cast(
            case when purchase_features.orders_with_lines > 0 then 1.0 * purchase_features.basket_lines / purchase_features.orders_with_lines end
            as {{ dbt.type_float() }}
        ) as avg_basket_lines,
        cast(
            case when purchase_features.online_lines > 0 then 1.0 * purchase_features.discounted_lines / purchase_features.online_lines end
            as {{ dbt.type_float() }}
        ) as discount_share,
        cast(coalesce(category_features.distinct_categories, 0) as {{ dbt.type_int() }}) as distinct_categories,
        cast(coalesce(web_features.browse_sessions_90d, 0) as {{ dbt.type_int() }}) as browse_sessions_90d,
        cast(coalesce(web_features.browse_sessions_365d, 0) as {{ dbt.type_int() }}) as browse_sessions_365d,
        cast(coalesce(web_features.email_opens_30d, 0) as {{ dbt.type_int() }}) as email_opens_30d,
        cast(coalesce(web_features.email_opens_365d, 0) as {{ dbt.type_int() }}) as email_opens_365d,
        cast({{ dbt.datediff('web_features.last_browse_on', 'customer_snapshots.snapshot_date', 'day') }} as {{ dbt.type_int() }}) as days_since_last_browse,
        cast({{ dbt.datediff('web_features.last_email_open_on', 'customer_snapshots.snapshot_date', 'day') }} as {{ dbt.type_int() }}) as days_since_last_email_open,
        cast(case when purchase_features.frequency > 0 then 1.0 - 1.0 * purchase_features.online_orders / purchase_features.frequency end as {{ dbt.type_float() }}) as store_share,
        cast(coalesce(return_features.refunded_orders, 0) as {{ dbt.type_int() }}) as refunded_orders,
        cast(
            case when return_features.placed_orders > 0 then 1.0 * return_features.refunded_orders / return_features.placed_orders end
            as {{ dbt.type_float() }}
        ) as returns_rate,
        cast(coalesce(web_features.web_sessions_90d, 0) as {{ dbt.type_int() }}) as web_sessions_90d,
        cast(coalesce(web_features.product_views_90d, 0) as {{ dbt.type_int() }}) as product_views_90d,
        cast(coalesce(web_features.cart_adds_90d, 0) as {{ dbt.type_int() }}) as cart_adds_90d,
        cast(coalesce(web_features.email_clicks_30d, 0) as {{ dbt.type_int() }}) as email_clicks_30d,
        cast(coalesce(abandoned_cart_features.abandoned_carts_24h, 0) as {{ dbt.type_int() }}) as abandoned_carts_24h,
        cast(null as date) as carried_from,
        {{ build_timestamp() }} as built_at
    from customer_snapshots
    left join purchase_features
        on
            customer_snapshots.customer_id = purchase_features.customer_id
            and customer_snapshots.snapshot_date = purchase_features.snapshot_date
    left join category_features
        on
            customer_snapshots.customer_id = category_features.customer_id
            and customer_snapshots.snapshot_date = category_features.snapshot_date
    left join web_features
        on
            customer_snapshots.customer_id = web_features.customer_id
            and customer_snapshots.snapshot_date = web_features.snapshot_date
    left join return_features
        on
            customer_snapshots.customer_id = return_features.customer_id
            and customer_snapshots.snapshot_date = return_features.snapshot_date
    left join abandoned_cart_features
        on
            customer_snapshots.customer_id = abandoned_cart_features.customer_id
            and customer_snapshots.snapshot_date = abandoned_cart_features.snapshot_date

)

select * from final
{% if is_incremental() %}
    union all
    select * from carried
{% endif %}
