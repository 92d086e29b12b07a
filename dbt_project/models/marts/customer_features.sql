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
        aggregated.customer_id,
        aggregated.snapshot_date,
        aggregated.recency_days,
        aggregated.frequency,
        aggregated.monetary,
        aggregated.tenure_days,
        aggregated.avg_order_value,
        aggregated.frequency_90d,
        aggregated.monetary_90d,
        aggregated.online_share,
        aggregated.web_sessions_30d,
        aggregated.product_views_30d,
        aggregated.cart_adds_30d,
        aggregated.email_opens_90d,
        aggregated.email_clicks_90d,
        aggregated.days_since_last_web_event,
        aggregated.days_since_first_purchase,
        aggregated.avg_days_between_purchases,
        aggregated.frequency_365d,
        aggregated.monetary_365d,
        aggregated.avg_basket_lines,
        aggregated.discount_share,
        aggregated.distinct_categories,
        aggregated.browse_sessions_90d,
        aggregated.browse_sessions_365d,
        aggregated.email_opens_30d,
        aggregated.email_opens_365d,
        aggregated.days_since_last_browse,
        aggregated.days_since_last_email_open,
        aggregated.store_share,
        aggregated.refunded_orders,
        aggregated.returns_rate,
        aggregated.web_sessions_90d,
        aggregated.product_views_90d,
        aggregated.cart_adds_90d,
        aggregated.email_clicks_30d,
        aggregated.abandoned_carts_24h,
        aggregated.frequency > 0 as is_buyer,
        {{ quintile_score('aggregated.recency_days', 'desc', 'aggregated.snapshot_date', 'aggregated.frequency > 0') }} as r_score,
        {{ quintile_score('aggregated.frequency', 'asc', 'aggregated.snapshot_date', 'aggregated.frequency > 0') }} as f_score,
        {{ quintile_score('aggregated.monetary', 'asc', 'aggregated.snapshot_date', 'aggregated.frequency > 0') }} as m_score
    from aggregated

),

final as (

    select
        customer_id,
        snapshot_date,
        recency_days,
        frequency,
        monetary,
        tenure_days,
        avg_order_value,
        frequency_90d,
        monetary_90d,
        online_share,
        web_sessions_30d,
        product_views_30d,
        cart_adds_30d,
        email_opens_90d,
        email_clicks_90d,
        days_since_last_web_event,
        days_since_first_purchase,
        avg_days_between_purchases,
        frequency_365d,
        monetary_365d,
        avg_basket_lines,
        discount_share,
        distinct_categories,
        browse_sessions_90d,
        browse_sessions_365d,
        email_opens_30d,
        email_opens_365d,
        days_since_last_browse,
        days_since_last_email_open,
        store_share,
        refunded_orders,
        returns_rate,
        web_sessions_90d,
        product_views_90d,
        cart_adds_90d,
        email_clicks_30d,
        abandoned_carts_24h,
        is_buyer,
        r_score,
        f_score,
        m_score,
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
