with

orders as (

    select * from {{ ref('int_orders_unified') }}

),

final as (

    select
        order_id,
        customer_id,
        attributed_by,
        channel,
        ordered_at,
        cast(ordered_at as date) as ordered_on,
        status,
        currency,
        amount_in_currency,
        cast(amount as {{ dbt.type_float() }}) as amount,
        landed_batch_id
    from orders
    -- An amount we cannot convert is not guessed: see int_orders_unified.is_missing_fx_rate.
    where not is_missing_fx_rate

)

select * from final
