{#
    Lifecycle stage of every known customer as of the run date (var snapshot_date), with the
    stage the day before and since when the customer has been in the current stage (as far
    back as customer_lifecycle_history reaches).
    Incremental by snapshot date (the table keeps the run date's rows only). stage_since comes
    without reading the whole history for almost everybody: it is the run date when the stage
    changed since the day before (or the customer is new), and the stage_since this table held
    for the day before (or for the run date, on a re-run) when neither the stage nor the
    customer's history (inputs_fingerprint) changed. Only the others are looked up in the history.
#}
{{ config(**snapshot_incremental_config()) }}

{%- set run_day = "cast('" ~ var('snapshot_date') ~ "' as date)" %}

with

history as {{ inlined() }} (

    select * from {{ ref('customer_lifecycle_history') }}

),

today as {{ materialized() }} (

    select *
    from history
    where day = {{ run_day }}

),

yesterday as (

    select *
    from history
    where day = {{ dbt.dateadd('day', -1, run_day) }}

),

staged as {{ materialized() }} (

    -- The stage today and the day before, and what this table held for the customer (built),
    -- if it still holds: same stage, same history, and built for the day before or today.
    select
        today.customer_id,
        today.lifecycle_stage,
        yesterday.lifecycle_stage as previous_stage,
        today.orders_to_date,
        today.last_purchase_on,
        today.inputs_fingerprint,
        case
            when yesterday.lifecycle_stage is null or yesterday.lifecycle_stage <> today.lifecycle_stage
                then today.day
            {%- if is_incremental() %}
                else built.stage_since
            {%- endif %}
        end as known_stage_since
    from today
    left join yesterday
        on today.customer_id = yesterday.customer_id
    {% if is_incremental() %}
        left join {{ this }} as built
            on
                today.customer_id = built.customer_id
                and built.snapshot_date >= {{ dbt.dateadd('day', -1, run_day) }}
                and built.snapshot_date <= {{ run_day }}
                and built.lifecycle_stage = today.lifecycle_stage
                and built.inputs_fingerprint = today.inputs_fingerprint
    {% endif %}

),

stage_runs as (

    -- The others: the last day before today in another stage, and the first day the history
    -- holds.
    select
        staged.customer_id,
        max(case when history.lifecycle_stage <> staged.lifecycle_stage then history.day end) as last_other_stage_on,
        min(history.day) as first_history_day
    from staged
    inner join history
        on
            staged.customer_id = history.customer_id
            and history.day <= {{ run_day }}
    where staged.known_stage_since is null
    group by staged.customer_id

),

final as (

    select
        staged.customer_id,
        {{ run_day }} as snapshot_date,
        staged.lifecycle_stage,
        staged.previous_stage,
        cast(
            coalesce(
                staged.known_stage_since,
                {{ dbt.dateadd('day', 1, 'stage_runs.last_other_stage_on') }},
                stage_runs.first_history_day
            ) as date
        ) as stage_since,
        staged.orders_to_date,
        staged.last_purchase_on,
        staged.inputs_fingerprint
    from staged
    left join stage_runs
        on staged.customer_id = stage_runs.customer_id

)

select * from final
