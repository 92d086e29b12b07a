with

source as (

    select * from {{ source('web', 'events') }}

),

typed as (

    select
        {{ clean_text('event_id') }} as event_id,
        {{ to_utc_timestamp('event_at') }} as event_at,
        lower({{ clean_text('event_type') }}) as event_type,
        {{ clean_text('anonymous_id') }} as anonymous_id,
        {{ normalize_email('user_email') }} as user_email,
        {{ clean_text('crm_id') }} as crm_id,
        {{ clean_text('session_id') }} as session_id,
        {{ clean_text('sku') }} as sku,
        {{ clean_text('url') }} as url,
        lower({{ clean_text('device') }}) as device,
        {{ clean_text('utm_source') }} as utm_source,
        {{ clean_text('utm_medium') }} as utm_medium,
        {{ clean_text('utm_campaign') }} as utm_campaign,
        _delivery_date,
        _batch_id,
        _file,
        _line
    from source

),

latest as (

    {{ latest_per_key('typed', ['event_id']) }}

),

final as (

    select
        event_id,
        event_at,
        event_type,
        event_type in (
            'page_view', 'product_view', 'add_to_cart', 'remove_from_cart',
            'checkout_started', 'login', 'email_open', 'email_click'
        ) as is_known_event_type,
        anonymous_id,
        user_email,
        crm_id,
        session_id,
        sku,
        url,
        device,
        utm_source,
        utm_medium,
        utm_campaign,
        _delivery_date as delivered_on,
        _batch_id as landed_batch_id
    from latest

)

select * from final
