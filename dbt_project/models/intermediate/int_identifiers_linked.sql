{# Every source record key with its customer, as resolved by the identity step. #}
with

record_links as (

    select * from {{ source('identity', 'record_links') }}

),

final as (

    select
        customer_id,
        source,
        source_key,
        linked_by,
        first_seen_at
    from record_links

)

select * from final
