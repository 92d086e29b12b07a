{#
    Orders and receipts held back from fct_orders because their amount cannot be converted:
    no exchange rate for their currency on or before the order date. Landing cannot judge
    this (rates may arrive in a later delivery); once a rate lands, the order leaves this table
    and enters fct_orders on the next run.
#}
with

orders as (

    select * from {{ ref('int_orders_unified') }}

),

final as (

    select
        order_id,
        channel,
        customer_id,
        ordered_at,
        currency,
        amount_in_currency,
        'no exchange rate for ' || currency || ' on or before ' || {{ dbt.safe_cast("cast(ordered_at as date)", dbt.type_string()) }} as reason
    from orders
    where is_missing_fx_rate

)

select * from final
