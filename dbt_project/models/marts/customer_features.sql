{#
    The feature table: behaviour per customer and snapshot (int_customer_features_aggregated)
    plus RFM quintile scores, the weighted RFM score, the VIP flag and the lifecycle stage.
    Scores rank buyers of the same snapshot; prospects (never bought) have null scores and are
    never VIP. VIP: weighted RFM score >= var('vip_min_rfm_score') and at least
    var('vip_min_orders') completed purchases.
#}
with

aggregated as (

    select * from {{ ref('int_customer_features_aggregated') }}

),

scored as (

    select
        *,
        frequency > 0 as is_buyer,
        {{ quintile_score('recency_days', 'desc', 'snapshot_date', 'frequency > 0') }} as r_score,
        {{ quintile_score('frequency', 'asc', 'snapshot_date', 'frequency > 0') }} as f_score,
        {{ quintile_score('monetary', 'asc', 'snapshot_date', 'frequency > 0') }} as m_score
    from aggregated

),

final as (

    select
        *,
        {{ weighted_rfm_score('r_score', 'f_score', 'm_score') }} as rfm_score,
        coalesce(
            {{ weighted_rfm_score('r_score', 'f_score', 'm_score') }} >= {{ var('vip_min_rfm_score') }}
            and frequency >= {{ var('vip_min_orders') }},
            false
        ) as is_vip,
        {{ lifecycle_stage('days_since_first_purchase', 'recency_days', 'frequency') }} as lifecycle_stage
    from scored

)

select * from final
