{#
    Lifecycle stage of every known customer on every day: one row per customer and day from
    var('history_start') to the run date (var snapshot_date). The stage as of the end of the day
    follows the lifecycle_stage macro (thresholds in journeys/settings.py).
    Incremental by customer and day (delete+insert on both). A run builds
      - every customer's row for the days not built yet, and always for the run date
        (re-running a day replaces it);
      - every day of the customers whose inputs changed: each row keeps its customer's
        inputs_fingerprint (first seen day, purchase days and counts up to the run date). A
        late order, a status update, a merge or a customer first seen late changes it, and
        only that customer's days are built again, not everybody's.
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

with

customers as (

    select * from {{ ref('dim_customers') }}

),

daily as (

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
    where completed_orders > 0

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

days_to_build as {{ materialized() }} (

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

customer_days as (

    select
        known_customers.customer_id,
        days_to_build.day
    from known_customers
    inner join days_to_build
        on known_customers.first_seen_on <= days_to_build.day
    union
    {% if target.type == 'spark' %}
        -- Spark overwrites whole day partitions: every customer, when anybody changed.
        select
            known_customers.customer_id,
            calendar.day
        from known_customers
        inner join calendar
            on known_customers.first_seen_on <= calendar.day
        where exists (select 1 from changed_customers)
    {% else %}
        select
            changed_customers.customer_id,
            calendar.day
        from changed_customers
        inner join calendar
            on changed_customers.first_seen_on <= calendar.day
    {% endif %}

),

as_of as (

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
        as_of.last_purchase_on,
        customer_inputs.inputs_fingerprint
    from as_of
    inner join customer_inputs
        on as_of.customer_id = customer_inputs.customer_id

)

select * from final
