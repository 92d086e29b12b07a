{#
    Lifecycle stage of every known customer on every day: one row per customer and day from
    var('history_start') to the run date (var snapshot_date). The stage as of the end of the day
    follows the lifecycle_stage macro (thresholds in journeys/settings.py).
    Incremental by customer and day (delete+insert on both). A run builds
      - every customer's row for the days not built yet, and always for the run date
        (re-running a day replaces it). Customers whose inputs did not change are moved on
        from their row of the day before the first of those days (the base day): purchases
        since then are added, nothing else is read;
      - every day of the customers whose inputs changed, from all their purchase days: each
        row keeps its customer's inputs_fingerprint (first seen day, purchase days and counts
        up to the run date). A late order, a status update, a merge or a customer first seen
        late changes it, and only that customer's days are built again, not everybody's.
    Customers no longer known (merged away, turned test accounts) lose their rows.
    A full refresh rebuilds from var('history_start'); an incremental run keeps older days.
#}
{{ config(**customer_day_incremental_config()) }}

{%- set run_day = "cast('" ~ var('snapshot_date') ~ "' as date)" -%}
{%- set range_start = var('history_start') -%}
{#- The days already built, as literals: filters on them skip the rest of this 30M-row table. -#}
{%- set built_from, built_to = none, none -%}
{%- if is_incremental() -%}
    {%- set built_from = value_in(this, 'min(day)') -%}
    {%- set built_to = value_in(this, 'max(day)') -%}
    {%- if built_from and built_from < range_start -%}{%- set range_start = built_from -%}{%- endif -%}
{%- endif %}
{#- The base day: the day before the first new day (the run date on a re-run). Unchanged
    customers move on from their row of that day when the table holds it and nothing before
    built_from is to be built. -#}
{%- set base_day = none -%}
{%- if built_to -%}
    {%- set day_after_built = modules.datetime.date.fromisoformat(built_to) + modules.datetime.timedelta(days=1) -%}
    {%- set first_new_day = [day_after_built, modules.datetime.date.fromisoformat(var('snapshot_date'))] | min -%}
    {%- set candidate = (first_new_day - modules.datetime.timedelta(days=1)).isoformat() -%}
    {%- if candidate >= built_from and range_start >= built_from -%}{%- set base_day = candidate -%}{%- endif -%}
{%- endif %}

with

customers as (

    select * from {{ ref('dim_customers') }}

),

daily as {{ inlined() }} (

    select * from {{ ref('fct_customer_daily') }}

),

calendar as (

    select cast(date_day as date) as day
    from ({{ dbt.date_spine('day', "cast('" ~ range_start ~ "' as date)", dbt.dateadd('day', 1, run_day)) }}) as spine

),

known_customers as (

    select
        customer_id,
        cast(first_seen_at as date) as first_seen_on
    from customers
    where not is_test_account

),

customer_inputs as {{ materialized() }} (

    -- Per customer: a fingerprint of everything their stages read.
    select
        customer_id,
        {{ combine_fingerprints('row_fingerprint') }} as inputs_fingerprint
    from (
        select
            customer_id,
            {{ row_hash(['day', 'completed_orders']) }} as row_fingerprint
        from daily
        where completed_orders > 0
        union all
        select
            customer_id,
            {{ row_hash(['first_seen_on']) }} as row_fingerprint
        from known_customers
    ) as input_rows
    group by customer_id

),

new_days as {{ materialized() }} (

    -- Days every customer gets a row for: days not built yet, and the run date.
    select calendar.day
    from calendar
    {% if built_to %}
        where
            calendar.day = {{ run_day }}
            or calendar.day < cast('{{ built_from }}' as date)
            or calendar.day > cast('{{ built_to }}' as date)
    {% endif %}

),

changed_customers as {{ materialized() }} (

    -- Customers whose inputs changed since their rows were built: all their days again.
    {% if built_to %}
        -- A customer's rows all carry the same fingerprint (a change rebuilds all of them), and
        -- everyone known on the last day built has a row for it.
        select
            known_customers.customer_id,
            known_customers.first_seen_on
        from customer_inputs
        inner join known_customers
            on customer_inputs.customer_id = known_customers.customer_id
        left join (
            select
                customer_id,
                inputs_fingerprint
            from {{ this }}
            where day = cast('{{ built_to }}' as date)
        ) as built
            on customer_inputs.customer_id = built.customer_id
        where customer_inputs.inputs_fingerprint is distinct from built.inputs_fingerprint
    {% else %}
        select
            customer_id,
            first_seen_on
        from known_customers
        where false
    {% endif %}

),

{%- if base_day %}

    base_rows as {{ materialized() }} (

        select
            customer_id,
            first_purchase_on,
            last_purchase_on,
            orders_to_date
        from {{ this }}
        where day = cast('{{ base_day }}' as date)

    ),

    moved_on as (

        -- Unchanged customers on the new days: their base day row plus the purchases since
        -- (none on a first run of the day: a purchase changes the fingerprint).
        select
            base_rows.customer_id,
            new_days.day,
            coalesce(base_rows.first_purchase_on, min(purchases.day)) as first_purchase_on,
            coalesce(max(purchases.day), base_rows.last_purchase_on) as last_purchase_on,
            base_rows.orders_to_date + coalesce(sum(purchases.completed_orders), 0) as orders_to_date
        from base_rows
        cross join new_days
        left join daily as purchases
            on
                base_rows.customer_id = purchases.customer_id
                and purchases.completed_orders > 0
                and purchases.day > cast('{{ base_day }}' as date)
                and purchases.day <= new_days.day
        where base_rows.customer_id not in (select changed_customers.customer_id from changed_customers)
        group by
            base_rows.customer_id,
            new_days.day,
            base_rows.first_purchase_on,
            base_rows.last_purchase_on,
            base_rows.orders_to_date

    ),

{%- endif %}

recomputed_customers as {{ materialized() }} (

    {% if base_day -%}
        -- The changed customers, and those with no base day row (first seen since, or on a
        -- re-run of the day they were first seen).
        select
            customer_id,
            first_seen_on
        from changed_customers
        union
        select
            known_customers.customer_id,
            known_customers.first_seen_on
        from known_customers
        where not exists (
            select 1
            from base_rows
            where base_rows.customer_id = known_customers.customer_id
        )
    {%- else -%}
        -- No base day: everybody's days are computed from their purchase days.
        select
            customer_id,
            first_seen_on
        from known_customers
    {%- endif %}

),

customer_days as (

    -- The (customer, day) pairs computed from all the customer's purchase days.
    {%- if base_day %}
        select
            recomputed_customers.customer_id,
            calendar.day
        from recomputed_customers
        inner join calendar
            on recomputed_customers.first_seen_on <= calendar.day
    {%- else %}
        select
            known_customers.customer_id,
            new_days.day
        from known_customers
        inner join new_days
            on known_customers.first_seen_on <= new_days.day
        union
        {%- if target.type == 'spark' %}
            -- Spark overwrites whole day partitions: every customer, when anybody changed.
            select
                known_customers.customer_id,
                calendar.day
            from known_customers
            inner join calendar
                on known_customers.first_seen_on <= calendar.day
            where exists (select 1 from changed_customers)
        {%- else %}
            select
                changed_customers.customer_id,
                calendar.day
            from changed_customers
            inner join calendar
                on changed_customers.first_seen_on <= calendar.day
        {%- endif %}
    {%- endif %}

),

purchase_days as (

    -- Each purchase day with the purchases to date; valid until the next purchase day.
    select
        customer_id,
        day as purchase_on,
        sum(completed_orders) over (
            partition by customer_id order by day asc rows between unbounded preceding and current row
        ) as orders_to_date,
        min(day) over (partition by customer_id) as first_purchase_on,
        lead(day) over (partition by customer_id order by day asc) as next_purchase_on
    from daily
    where
        completed_orders > 0
        and customer_id in (select recomputed_customers.customer_id from recomputed_customers)

),

computed as (

    select
        customer_days.customer_id,
        customer_days.day,
        purchase_days.first_purchase_on,
        purchase_days.purchase_on as last_purchase_on,
        coalesce(purchase_days.orders_to_date, 0) as orders_to_date
    from customer_days
    left join purchase_days
        on
            customer_days.customer_id = purchase_days.customer_id
            and customer_days.day >= purchase_days.purchase_on
            and (purchase_days.next_purchase_on is null or customer_days.day < purchase_days.next_purchase_on)

),

as_of as (

    select * from computed
    {%- if base_day %}
        union all
        select * from moved_on
    {%- endif %}

),

final as (

    select
        as_of.customer_id,
        as_of.day,
        {{ lifecycle_stage(
            dbt.datediff('as_of.first_purchase_on', 'as_of.day', 'day'),
            dbt.datediff('as_of.last_purchase_on', 'as_of.day', 'day'),
            'as_of.orders_to_date'
        ) }} as lifecycle_stage,
        cast(as_of.orders_to_date as {{ dbt.type_int() }}) as orders_to_date,
        as_of.first_purchase_on,
        as_of.last_purchase_on,
        customer_inputs.inputs_fingerprint,
        {{ build_timestamp() }} as built_at
    from as_of
    inner join customer_inputs
        on as_of.customer_id = customer_inputs.customer_id

)

select * from final
