-- Generated from dbt_project/segments.yml by `journeys segments compile`: edit the YAML.
-- Every rule segment a customer matches at the run date, one row per customer and segment;
-- is_top_priority marks the customer's highest-priority segment (lowest priority number).
with

matches as (

    select * from {{ ref('rule_segment_abandoned_cart_24h') }}
    union all
    select * from {{ ref('rule_segment_vip') }}
    union all
    select * from {{ ref('rule_segment_new_customer_welcome') }}
    union all
    select * from {{ ref('rule_segment_at_risk') }}
    union all
    select * from {{ ref('rule_segment_win_back') }}
    union all
    select * from {{ ref('rule_segment_engaged_prospect') }}

),

final as (

    select
        customer_id,
        snapshot_date,
        segment,
        channel,
        priority,
        description,
        row_number() over (
            partition by customer_id order by priority asc, segment asc
        ) = 1 as is_top_priority
    from matches

)

select * from final
