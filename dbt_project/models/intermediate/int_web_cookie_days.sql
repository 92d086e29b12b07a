{#
    Web and email events summed per cookie and day: what the customer models read instead of
    the events themselves (a quarter of the rows, and a cookie's day is one row). Counts per
    event type, the distinct sessions (a session can span two cookies of one customer, so
    the customer's day unions the lists), the times of the cart adds (abandoned carts look
    for an order within 24 hours) and the products viewed (categories come from the catalog
    when read).
    Incremental by cookie and day (delete+insert): a run reads the events landed since the
    last build (landed_batch_id). A cookie's day the table does not hold yet is summed from
    those alone (no older event of it exists); one it holds (a late event, a re-delivery) is
    summed again from all of its events, which takes a scan of every event's cookie, so it is
    done only when there is such a day.
    An event re-delivered under another cookie or on another day still counts on the old one
    until a full refresh (events are not versioned).
#}
{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key=['anonymous_id', 'day'],
    on_schema_change='fail',
) }}

{%- set landed_after = (value_in(this, 'max(landed_batch_id)') or '') if is_incremental() else none %}
{#- Whether a cookie's day with landed events is held already: only then are all events read. -#}
{%- set any_held_day = is_incremental() and execute and run_query(
    "select count(*) from (select distinct anonymous_id, cast(event_at as date) as day from "
    ~ ref('stg_web__events') ~ " where landed_batch_id > '" ~ landed_after ~ "') as landed"
    ~ " inner join " ~ this ~ " as held on held.anonymous_id = landed.anonymous_id and held.day = landed.day"
).columns[0].values()[0] > 0 %}

with

web_events as {{ inlined() }} (

    -- What the sums read (inlined: the filters of each reader reach the scan).
    select
        anonymous_id,
        cast(event_at as date) as day,
        event_at,
        event_type,
        session_id,
        sku,
        landed_batch_id
    from {{ ref('stg_web__events') }}

),

{% if is_incremental() %}

    landed_events as {{ materialized() if any_held_day }} (

        -- Events landed since the last build (the batch as a literal: the scan filters them).
        select *
        from web_events
        where landed_batch_id > '{{ landed_after }}'

    ),

{% endif %}
{% if any_held_day %}

    held_days as {{ materialized() }} (

        -- Days with landed events the table holds already: summed again from every event.
        select distinct
            landed_events.anonymous_id,
            landed_events.day
        from landed_events
        inner join {{ this }} as held
            on
                landed_events.anonymous_id = held.anonymous_id
                and landed_events.day = held.day

    ),

{% endif %}

events_to_sum as (

    {% if is_incremental() %}
        select *
        from landed_events
        {% if any_held_day %}
            where not exists (
                select 1
                from held_days
                where
                    held_days.anonymous_id = landed_events.anonymous_id
                    and held_days.day = landed_events.day
            )
            union all
            select web_events.*
            from web_events
            inner join held_days
                on
                    web_events.anonymous_id = held_days.anonymous_id
                    and web_events.day = held_days.day
        {% endif %}
    {% else %}
        select * from web_events
    {% endif %}

),

final as (

    select
        anonymous_id,
        day,
        cast(count(*) as {{ dbt.type_int() }}) as web_events,
        cast(count(*) filter (where event_type <> 'email_open') as {{ dbt.type_int() }}) as browse_events,
        cast(count(*) filter (where event_type = 'product_view') as {{ dbt.type_int() }}) as product_views,
        cast(count(*) filter (where event_type = 'add_to_cart') as {{ dbt.type_int() }}) as cart_adds,
        cast(count(*) filter (where event_type = 'email_open') as {{ dbt.type_int() }}) as email_opens,
        cast(count(*) filter (where event_type = 'email_click') as {{ dbt.type_int() }}) as email_clicks,
        coalesce(
            array_agg(distinct session_id order by session_id) filter (where session_id is not null), []
        ) as session_ids,
        coalesce(
            array_agg(distinct session_id order by session_id) filter (where session_id is not null and event_type <> 'email_open'), []
        ) as browse_session_ids,
        coalesce(array_agg(event_at order by event_at) filter (where event_type = 'add_to_cart'), []) as cart_adds_at,
        coalesce(array_agg(sku order by sku) filter (where event_type = 'product_view' and sku is not null), []) as viewed_skus,
        max(landed_batch_id) as landed_batch_id,
        {{ build_timestamp() }} as built_at
    from events_to_sum
    group by anonymous_id, day

)

select * from final
