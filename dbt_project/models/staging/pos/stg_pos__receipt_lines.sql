with

source as (

    select * from {{ source('pos', 'receipt_lines') }}

),

typed as (

    select
        {{ clean_text('receipt_id') }} as receipt_id,
        cast({{ clean_text('line_number') }} as {{ dbt.type_int() }}) as line_number,
        {{ clean_text('sku') }} as sku,
        cast({{ clean_text('quantity') }} as {{ dbt.type_int() }}) as quantity,
        cast({{ clean_text('unit_price') }} as {{ dbt.type_numeric() }}) as unit_price,
        _delivery_date,
        _batch_id,
        _file,
        _line
    from source

),

latest as (

    {{ latest_per_key('typed', ['receipt_id', 'line_number']) }}

),

final as (

    select
        {{ dbt.concat(["receipt_id", "'-'", dbt.safe_cast("line_number", dbt.type_string())]) }} as receipt_line_id,
        receipt_id,
        line_number,
        sku,
        quantity,
        unit_price,
        quantity * unit_price as line_amount,
        _batch_id as landed_batch_id
    from latest

)

select * from final
