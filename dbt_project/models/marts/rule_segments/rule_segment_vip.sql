-- Generated from dbt_project/segments.yml by `journeys segments compile`: edit the YAML.
with

features as (

    select * from {{ ref('customer_features') }}

),

final as (

    select
        customer_id,
        snapshot_date,
        'vip' as segment,
        'email' as channel,
        2 as priority,
        'The best customers by the VIP rule (weighted RFM score and repeat purchases): early access and service, never discounts.' as description
    from features
    where
        snapshot_date = cast('{{ var("snapshot_date") }}' as date)
        and (
            is_vip
        )

)

select * from final
