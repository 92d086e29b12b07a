with

source as (

    select * from {{ source('pos', 'receipts') }}

),

typed as (

    select
        {{ clean_text('receipt_id') }} as receipt_id,
        {{ clean_text('store_id') }} as store_id,
        {{ to_utc_timestamp('purchased_at') }} as purchased_at,
        upper({{ clean_text('currency') }}) as currency,
        cast({{ clean_text('total_amount') }} as {{ dbt.type_numeric() }}) as total_amount,
        {{ clean_text('loyalty_card_id') }} as loyalty_card_id,
        coalesce(lower({{ clean_text('status') }}), 'completed') as status,
        {{ to_utc_timestamp('updated_at') }} as updated_at,
        _delivery_date,
        _batch_id,
        _file,
        _line
    from source

),

latest as (

    {{ latest_per_key('typed', ['receipt_id'], 'updated_at') }}

),

final as (

    select
        receipt_id,
        store_id,
        purchased_at,
        currency,
        total_amount,
        loyalty_card_id,
        status,
        updated_at,
        _delivery_date as delivered_on,
        _batch_id as landed_batch_id
    from latest

)

select * from final
