-- Generated from dbt_project/segments.yml by `journeys segments compile`: edit the YAML.
with

features as (

    select * from {{ ref('customer_features') }}

),

final as (

    select
        customer_id,
        snapshot_date,
        'engaged_prospect' as segment,
        'email' as channel,
        6 as priority,
        'Known but never bought, and browsing: three or more product views in the last 30 days.' as description
    from features
    where
        snapshot_date = cast('{{ var("snapshot_date") }}' as date)
        and (
            lifecycle_stage = 'prospect' and product_views_30d >= 3
        )

)

select * from final
