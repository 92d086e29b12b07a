{#
    Lifecycle stage of every known customer as of the run date (var snapshot_date), with the
    stage the day before and since when the customer has been in the current stage (as far
    back as customer_lifecycle_history reaches).
#}
with

history as (

    select * from {{ ref('customer_lifecycle_history') }}

),

today as (

    select *
    from history
    where day = cast('{{ var("snapshot_date") }}' as date)

),

yesterday as (

    select *
    from history
    where day = {{ dbt.dateadd('day', -1, "cast('" ~ var('snapshot_date') ~ "' as date)") }}

),

stage_runs as (

    -- The last day before today in another stage, and the first day the history holds.
    select
        today.customer_id,
        max(case when history.lifecycle_stage <> today.lifecycle_stage then history.day end) as last_other_stage_on,
        min(history.day) as first_history_day
    from today
    inner join history
        on
            today.customer_id = history.customer_id
            and today.day >= history.day
    group by today.customer_id

),

final as (

    select
        today.customer_id,
        today.day as snapshot_date,
        today.lifecycle_stage,
        yesterday.lifecycle_stage as previous_stage,
        cast(
            coalesce({{ dbt.dateadd('day', 1, 'stage_runs.last_other_stage_on') }}, stage_runs.first_history_day) as date
        ) as stage_since,
        today.orders_to_date,
        today.last_purchase_on
    from today
    left join yesterday
        on today.customer_id = yesterday.customer_id
    left join stage_runs
        on today.customer_id = stage_runs.customer_id

)

select * from final
