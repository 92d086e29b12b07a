with

source as (

    select * from {{ source('consent', 'events') }}

),

typed as (

    select
        {{ clean_text('consent_event_id') }} as consent_event_id,
        lower({{ clean_text('channel') }}) as channel,
        lower({{ clean_text('status') }}) as status,
        {{ to_utc_timestamp('event_at') }} as event_at,
        {{ normalize_email('email') }} as email,
        {{ clean_text('crm_id') }} as crm_id,
        {{ normalize_phone(clean_text('phone')) }} as phone,
        {{ clean_text('source') }} as consent_source,
        {{ clean_text('policy_version') }} as policy_version,
        _delivery_date,
        _file,
        _line
    from source

),

latest as (

    {{ latest_per_key('typed', ['consent_event_id']) }}

),

final as (

    select
        consent_event_id,
        channel,
        status,
        event_at,
        email,
        crm_id,
        phone,
        consent_source,
        policy_version
    from latest

)

select * from final
