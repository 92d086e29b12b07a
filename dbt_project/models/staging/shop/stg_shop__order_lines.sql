with

source as (

    select * from {{ source('shop', 'order_lines') }}

),

typed as (

    select
        {{ clean_text('order_id') }} as order_id,
        cast({{ clean_text('line_number') }} as {{ dbt.type_int() }}) as line_number,
        {{ clean_text('sku') }} as sku,
        cast({{ clean_text('quantity') }} as {{ dbt.type_int() }}) as quantity,
        cast({{ clean_text('unit_price') }} as {{ dbt.type_numeric() }}) as unit_price,
        coalesce(cast({{ clean_text('discount_amount') }} as {{ dbt.type_numeric() }}), 0) as discount_amount,
        _delivery_date,
        _batch_id,
        _file,
        _line
    from source

),

latest as (

    {{ latest_per_key('typed', ['order_id', 'line_number']) }}

),

final as (

    select
        {{ dbt.concat(["order_id", "'-'", dbt.safe_cast("line_number", dbt.type_string())]) }} as order_line_id,
        order_id,
        line_number,
        sku,
        quantity,
        unit_price,
        discount_amount,
        quantity * unit_price - discount_amount as line_amount,
        _batch_id as landed_batch_id
    from latest

)

select * from final
