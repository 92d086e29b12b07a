-- Generated from dbt_project/segments.yml by `journeys segments compile`: edit the YAML.
with

features as (

    select * from {{ ref('customer_features') }}

),

final as (

    select
        customer_id,
        snapshot_date,
        'new_customer_welcome' as segment,
        'email' as channel,
        3 as priority,
        'First purchase in the last 30 days (lifecycle stage new): the welcome series that turns a first order into a second.' as description
    from features
    where
        snapshot_date = cast('{{ var("snapshot_date") }}' as date)
        and (
            lifecycle_stage = 'new'
        )

)

select * from final
