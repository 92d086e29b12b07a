-- Generated from dbt_project/segments.yml by `journeys segments compile`: edit the YAML.
with

features as (

    select * from {{ ref('customer_features') }}

),

final as (

    select
        customer_id,
        snapshot_date,
        'win_back' as segment,
        'ads' as channel,
        5 as priority,
        'Lapsed customers (no purchase for 180 days or more) who spent well when they bought: a win-back offer on paid social, where e-mails no longer reach them.' as description
    from features
    where
        snapshot_date = cast('{{ var("snapshot_date") }}' as date)
        and (
            lifecycle_stage = 'lapsed' and monetary >= 100
        )

)

select * from final
