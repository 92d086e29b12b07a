-- Generated from dbt_project/segments.yml by `journeys segments compile`: edit the YAML.
with

features as (

    select * from {{ ref('customer_features') }}

),

final as (

    select
        customer_id,
        snapshot_date,
        'abandoned_cart_24h' as segment,
        'push' as channel,
        1 as priority,
        'Added something to the cart in the last 24 hours and has not ordered since: a reminder while the intent is fresh.' as description
    from features
    where
        snapshot_date = cast('{{ var("snapshot_date") }}' as date)
        and (
            abandoned_carts_24h > 0
        )

)

select * from final
