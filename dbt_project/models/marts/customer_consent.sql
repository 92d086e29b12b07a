{#
    Marketing consent per customer and channel (email, sms, push, ads), one row each.
    - The latest consent event of the customer for the channel wins, whichever of the customer's
      identifiers it came through: after a merge, an opt-out anywhere beats an older opt-in
      elsewhere, and a newer opt-in beats an older opt-out.
    - Events at the same instant: the opt-out wins (doubt means no consent), then the highest
      event id, so the pick is deterministic.
    - An opt-in given through an identifier several customers share (a household's e-mail or
      landline) and not through the customer's own CRM id is nobody's in particular: it is left
      out. An opt-out counts for everyone it names.
    - No event means no consent: consent_status 'none', is_consented false.
    Activation selects audiences by joining this table; nothing is filtered by convention later.
#}
with

customers as (

    select customer_id from {{ ref('dim_customers') }}

),

linked_events as (

    select * from {{ ref('int_consent_events_linked') }}

),

attributable_events as (

    select * from linked_events
    where
        status = 'opt_out'
        or customers_named = 1
        or contains(matched_on, 'crm_id')

),

channels as (

    select contract_channels.channel
    from (values ('email'), ('sms'), ('push'), ('ads')) as contract_channels (channel)

),

ranked_events as (

    select
        attributable_events.*,
        row_number() over (
            partition by attributable_events.customer_id, attributable_events.channel
            order by
                attributable_events.event_at desc,
                case when attributable_events.status = 'opt_out' then 0 else 1 end asc,
                attributable_events.consent_event_id desc
        ) as recency_rank
    from attributable_events

),

latest_events as (

    select * from ranked_events
    where recency_rank = 1

),

final as (

    select
        customers.customer_id,
        channels.channel,
        coalesce(latest_events.status, 'none') as consent_status,
        coalesce(latest_events.status = 'opt_in', false) as is_consented,
        latest_events.event_at,
        latest_events.consent_source as source,
        latest_events.policy_version,
        latest_events.consent_event_id,
        latest_events.matched_on
    from customers
    cross join channels
    left join latest_events
        on
            customers.customer_id = latest_events.customer_id
            and channels.channel = latest_events.channel

)

select * from final
