with

source as (

    select * from {{ source('shop', 'orders') }}

),

typed as (

    select
        {{ clean_text('order_id') }} as order_id,
        {{ to_utc_timestamp('ordered_at') }} as ordered_at,
        lower({{ clean_text('status') }}) as status,
        upper({{ clean_text('currency') }}) as currency,
        cast({{ clean_text('total_amount') }} as {{ dbt.type_numeric() }}) as total_amount,
        coalesce(cast({{ clean_text('discount_amount') }} as {{ dbt.type_numeric() }}), 0) as discount_amount,
        {{ clean_text('customer_email') }} as customer_email_raw,
        {{ normalize_email('customer_email') }} as customer_email,
        {{ clean_text('crm_id') }} as crm_id,
        {{ to_utc_timestamp('updated_at') }} as updated_at,
        {{ clean_text('shipping_postcode') }} as shipping_postcode,
        _delivery_date,
        _batch_id,
        _file,
        _line
    from source

),

latest as (

    {{ latest_per_key('typed', ['order_id'], 'updated_at') }}

),

final as (

    select
        order_id,
        ordered_at,
        status,
        currency,
        total_amount,
        discount_amount,
        customer_email_raw,
        customer_email,
        crm_id,
        updated_at,
        shipping_postcode,
        _delivery_date as delivered_on,
        _batch_id as landed_batch_id
    from latest

)

select * from final
