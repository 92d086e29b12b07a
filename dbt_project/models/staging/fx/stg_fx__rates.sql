with

source as (

    select * from {{ source('fx', 'rates') }}

),

typed as (

    select
        cast({{ clean_text('rate_date') }} as date) as rate_date,
        upper({{ clean_text('currency') }}) as currency,
        cast({{ clean_text('rate') }} as {{ dbt.type_numeric() }}) as rate,
        _delivery_date,
        _file,
        _line
    from source

),

latest as (

    {{ latest_per_key('typed', ['rate_date', 'currency']) }}

),

final as (

    select
        {{ dbt.concat(["currency", "'@'", dbt.safe_cast("rate_date", dbt.type_string())]) }} as fx_rate_id,
        rate_date,
        currency,
        rate
    from latest

)

select * from final
