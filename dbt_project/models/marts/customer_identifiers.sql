with

identifiers as (

    select * from {{ ref('int_identifiers_linked') }}

),

final as (

    select
        {{ customer_id_from('identity_key') }} as customer_id,
        source,
        source_key,
        linked_by,
        first_seen_at
    from identifiers

)

select * from final
