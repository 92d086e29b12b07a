{#
    What each customer shows interest in, per product category and snapshot date: the lines of
    their completed purchases and the products they viewed on the web (cookies linked to them),
    on or before the end of the snapshot date. One row per customer, snapshot and category with
    any interest; categories come from the catalog, so the table is long, not one column per
    category. Views count too, so a customer who never bought still shows their tastes.
    Counts are summed per day first, then per snapshot (a few snapshot dates per run).
    Incremental by snapshot, like int_customer_features_aggregated: a customer whose features
    row was carried over from an earlier snapshot (carried_from) carries their categories over
    from the same snapshot, plus the products they viewed since (anything they bought since
    made them computed again); the others are computed again.
#}
{{ config(**snapshot_incremental_config()) }}

with

orders as (

    select * from {{ ref('fct_orders') }}

),

identifiers as (

    select * from {{ ref('customer_identifiers') }}

),

cookie_days as {{ inlined() }} (

    select * from {{ ref('int_web_cookie_days') }}

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

features as (

    select
        customer_id,
        snapshot_date,
        carried_from
    from {{ ref('int_customer_features_aggregated') }}

),

snapshots as (

    {{ snapshot_dates_relation() }}

),

{% if is_incremental() %}

    built as (

        select * from {{ this }}

    ),

    carried_features as {{ materialized() }} (

        -- Customers carried over, from a snapshot this table holds too.
        select
            features.customer_id,
            features.snapshot_date,
            features.carried_from
        from features
        where features.carried_from in (select distinct built.snapshot_date from built)

    ),

{% endif %}

customer_snapshots as {{ materialized() }} (

    -- The (customer, snapshot) pairs computed here: all of them on a full refresh.
    select
        features.customer_id,
        features.snapshot_date
    from features
    inner join snapshots
        on features.snapshot_date = snapshots.snapshot_date
    {% if is_incremental() %}
        where not exists (
            select 1
            from carried_features
            where
                carried_features.customer_id = features.customer_id
                and carried_features.snapshot_date = features.snapshot_date
        )
    {% endif %}

),

computed_customers as {{ materialized() }} (

    select distinct customer_id from customer_snapshots

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
    where
        orders.status = 'completed'
        and orders.customer_id in (select computed_customers.customer_id from computed_customers)
    group by orders.customer_id, products.category, orders.ordered_on

),

views as (

    -- One row per product view (of a known product or not) of the computed customers.
    select
        cookie_owners.customer_id,
        cookie_days.day,
        {{ unnest_list('cookie_days.viewed_skus') }} as sku
    from cookie_days
    inner join cookie_owners
        on cookie_days.anonymous_id = cookie_owners.anonymous_id
    where
        cookie_days.product_views > 0
        and cookie_owners.customer_id in (select computed_customers.customer_id from computed_customers)

),

viewed_per_day as (

    select
        views.customer_id,
        products.category,
        views.day,
        0 as purchased_lines,
        count(*) as product_views
    from views
    inner join products
        on views.sku = products.sku
    group by views.customer_id, products.category, views.day

),

interest_per_day as (

    select * from bought_per_day
    union all
    select * from viewed_per_day

),

final as (

    select
        interest_per_day.customer_id,
        customer_snapshots.snapshot_date,
        interest_per_day.category,
        cast(sum(interest_per_day.purchased_lines) as {{ dbt.type_int() }}) as purchased_lines,
        cast(sum(interest_per_day.product_views) as {{ dbt.type_int() }}) as product_views
    from interest_per_day
    inner join customer_snapshots
        on
            interest_per_day.customer_id = customer_snapshots.customer_id
            and interest_per_day.day <= customer_snapshots.snapshot_date
    where interest_per_day.category is not null
    group by interest_per_day.customer_id, customer_snapshots.snapshot_date, interest_per_day.category

)

{% if is_incremental() %}

    , entering_view_days as (

        -- Product views of carried-over customers on the days their snapshot moved over.
        select
            cookie_owners.customer_id,
            carried_features.snapshot_date,
            {{ unnest_list('cookie_days.viewed_skus') }} as sku
        from cookie_days
        inner join cookie_owners
            on cookie_days.anonymous_id = cookie_owners.anonymous_id
        inner join carried_features
            on
                cookie_owners.customer_id = carried_features.customer_id
                and cookie_days.day > carried_features.carried_from
                and cookie_days.day <= carried_features.snapshot_date
        where
            cookie_days.product_views > 0
            -- A literal, so the scan skips older days (every carried_from is a snapshot this
            -- table holds).
            and cookie_days.day > cast('{{ value_in(this, 'min(snapshot_date)') or var('snapshot_date') }}' as date)

    ),

    entering_views as (

        select
            entering_view_days.customer_id,
            entering_view_days.snapshot_date,
            products.category,
            count(*) as product_views
        from entering_view_days
        inner join products
            on entering_view_days.sku = products.sku
        where products.category is not null
        group by entering_view_days.customer_id, entering_view_days.snapshot_date, products.category

    ),

    carried_base as (

        select
            built.customer_id,
            carried_features.snapshot_date,
            built.category,
            built.purchased_lines,
            built.product_views
        from carried_features
        inner join built
            on
                carried_features.customer_id = built.customer_id
                and carried_features.carried_from = built.snapshot_date

    ),

    carried as (

        -- Carried-over customers: their categories at the earlier snapshot plus new views
        -- (a new purchase made them computed again).
        select
            coalesce(carried_base.customer_id, entering_views.customer_id) as customer_id,
            coalesce(carried_base.snapshot_date, entering_views.snapshot_date) as snapshot_date,
            coalesce(carried_base.category, entering_views.category) as category,
            cast(coalesce(carried_base.purchased_lines, 0) as {{ dbt.type_int() }}) as purchased_lines,
            cast(
                coalesce(carried_base.product_views, 0) + coalesce(entering_views.product_views, 0) as {{ dbt.type_int() }}
            ) as product_views
        from carried_base
        full outer join entering_views
            on
                carried_base.customer_id = entering_views.customer_id
                and carried_base.snapshot_date = entering_views.snapshot_date
                and carried_base.category = entering_views.category

    )

{% endif %}

select * from final
{% if is_incremental() %}
    union all
    select * from carried
{% endif %}
