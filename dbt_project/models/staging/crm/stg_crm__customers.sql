with

source as (

    select * from {{ source('crm', 'customers') }}

),

typed as (

    select
        {{ clean_text('crm_id') }} as crm_id,
        {{ to_utc_timestamp('updated_at') }} as updated_at,
        {{ clean_text('first_name') }} as first_name,
        {{ clean_text('last_name') }} as last_name,
        {{ clean_text('email') }} as email_raw,
        {{ normalize_email('email') }} as email,
        {{ normalize_phone(clean_text('phone')) }} as phone,
        cast({{ clean_text('birth_date') }} as date) as birth_date,
        lower({{ clean_text('gender') }}) as gender,
        {{ clean_text('street') }} as street,
        {{ clean_text('city') }} as city,
        {{ clean_text('postcode') }} as postcode,
        upper({{ clean_text('country') }}) as country,
        {{ clean_text('loyalty_card_id') }} as loyalty_card_id,
        {{ to_utc_timestamp('created_at') }} as created_at,
        coalesce(cast({{ clean_text('is_test_account') }} as boolean), false) as is_test_account,
        _delivery_date,
        _file,
        _line
    from source

),

latest as (

    {{ latest_per_key('typed', ['crm_id'], 'updated_at') }}

),

final as (

    select
        crm_id,
        updated_at,
        first_name,
        last_name,
        email_raw,
        email,
        phone,
        birth_date,
        gender,
        street,
        city,
        postcode,
        country,
        loyalty_card_id,
        created_at,
        is_test_account,
        _delivery_date as delivered_on
    from latest

)

select * from final
