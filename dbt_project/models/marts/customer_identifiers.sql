with

identifiers as (

    select * from {{ ref('int_identifiers_linked') }}

),

final as (

    select
        customer_id,
        source,
        source_key,
        linked_by,
        first_seen_at
    from identifiers
    -- orders and receipts are in fct_orders (with attributed_by); these are the identifiers
    where source not in ('shop_order', 'pos_receipt')

)

select * from final
