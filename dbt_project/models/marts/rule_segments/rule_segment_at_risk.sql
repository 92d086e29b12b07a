-- Generated from dbt_project/segments.yml by `journeys segments compile`: edit the YAML.
with

features as (

    select * from {{ ref('customer_features') }}

),

final as (

    select
        customer_id,
        snapshot_date,
        'at_risk' as segment,
        'sms' as channel,
        4 as priority,
        'Bought before but not for 90 to 180 days (lifecycle stage at_risk) and still worth it (at least two purchases): a reminder with a reason to come back.' as description
    from features
    where
        snapshot_date = cast('{{ var("snapshot_date") }}' as date)
        and (
            lifecycle_stage = 'at_risk' and frequency >= 2
        )

)

select * from final
