{#
    Lifecycle stage of every known customer on every day: one row per customer and day from
    var('history_start') to the run date (var snapshot_date). The stage as of the end of the day
    follows the lifecycle_stage macro (thresholds in journeys/settings.py).
    Incremental by day (delete+insert on `day`). A run rebuilds
      - days not built yet, and always the run date (re-running a day replaces it);
      - days whose inputs changed: each day keeps a fingerprint of everything its stages read
        (inputs_fingerprint: the customers known by then, and every customer's purchase days
        and counts up to it). A late order or a status update for day X changes the
        fingerprint of every day from X on; a customer first seen late, merged away or
        flagged as a test account changes it too.
    A full refresh rebuilds from var('history_start'); an incremental run keeps older days.
#}
{{ config(**daily_incremental_config()) }}

{%- set run_day = "cast('" ~ var('snapshot_date') ~ "' as date)" -%}
{%- set range_start = var('history_start') -%}
{%- if is_incremental() -%}
    {%- set built_from = first_day_in(this) -%}
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

purchase_fingerprints as (

    select
        day,
        {{ fingerprint(['customer_id', 'day', 'completed_orders']) }} as day_fingerprint
    from daily
    where completed_orders > 0
    group by day

),

customer_fingerprints as (

    select
        first_seen_on as day,
        {{ fingerprint(['customer_id']) }} as day_fingerprint
    from known_customers
    group by first_seen_on

),

input_fingerprints as (

    select
        day,
        day_fingerprint
    from purchase_fingerprints
    union all
    select
        day,
        day_fingerprint
    from customer_fingerprints

),

day_inputs as (

    -- Per calendar day: the fingerprint of every input on or before it.
    select
        calendar.day,
        (
            select {{ combine_fingerprints('input_fingerprints.day_fingerprint') }}
            from input_fingerprints
            where input_fingerprints.day <= calendar.day
        ) as inputs_fingerprint
    from calendar

),

built_days as (

    -- What this table holds per day (nothing on a full refresh).
    {% if is_incremental() %}
        select
            day,
            max(inputs_fingerprint) as inputs_fingerprint
        from {{ this }}
        group by day
    {% else %}
        select
            day,
            inputs_fingerprint
        from day_inputs
        where false
    {% endif %}

),

days_to_build as (

    select day_inputs.day
    from day_inputs
    left join built_days
        on day_inputs.day = built_days.day
    where
        built_days.day is null
        or day_inputs.day = {{ run_day }}
        or day_inputs.inputs_fingerprint <> built_days.inputs_fingerprint

),

customer_days as (

    select
        known_customers.customer_id,
        days_to_build.day
    from known_customers
    inner join days_to_build
        on known_customers.first_seen_on <= days_to_build.day

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
        day_inputs.inputs_fingerprint
    from as_of
    inner join day_inputs
        on as_of.day = day_inputs.day

)

select * from final
