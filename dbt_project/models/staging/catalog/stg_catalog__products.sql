with

source as (

    select * from {{ source('catalog', 'products') }}

),

typed as (

    select
        {{ clean_text('sku') }} as sku,
        lower({{ clean_text('category') }}) as category,
        {{ clean_text('name') }} as product_name,
        {{ clean_text('brand') }} as brand,
        cast({{ clean_text('list_price') }} as {{ dbt.type_numeric() }}) as list_price,
        upper({{ clean_text('currency') }}) as currency,
        coalesce(cast({{ clean_text('is_active') }} as boolean), true) as is_active,
        _delivery_date,
        _file,
        _line
    from source

),

latest as (

    {{ latest_per_key('typed', ['sku']) }}

),

final as (

    select
        sku,
        category,
        product_name,
        brand,
        list_price,
        currency,
        is_active
    from latest

)

select * from final
