{# Customer rules shared by several models, so a threshold means the same thing everywhere. #}

{#
    Lifecycle stage from three facts as of a day. Thresholds come from var('lifecycle')
    (journeys/settings.py). First match wins: prospect (known, never bought), new (first
    purchase fewer than new_days ago), loyal (last purchase fewer than active_days ago and at
    least loyal_min_orders purchases), active (last purchase fewer than active_days ago),
    at_risk (fewer than lapsed_days ago), lapsed (longer ago).
#}
{% macro lifecycle_stage(days_since_first_purchase, recency_days, orders_to_date) -%}
    {%- set rules = var('lifecycle') -%}
    case
        when coalesce({{ orders_to_date }}, 0) = 0 or {{ recency_days }} is null then 'prospect'
        when {{ days_since_first_purchase }} < {{ rules['new_days'] }} then 'new'
        when {{ recency_days }} < {{ rules['active_days'] }} and {{ orders_to_date }} >= {{ rules['loyal_min_orders'] }} then 'loyal'
        when {{ recency_days }} < {{ rules['active_days'] }} then 'active'
        when {{ recency_days }} < {{ rules['lapsed_days'] }} then 'at_risk'
        else 'lapsed'
    end
{%- endmacro %}

{#
    Quintile score 1-5 of a column among buyers of the same snapshot: 1 + floor(5 x percent
    rank), so equal values share a score, the lowest value scores 1 and the highest 5. Buyers
    only: a customer who never bought has no score (null).
#}
{% macro quintile_score(column, direction, partition_by, is_buyer) -%}
    case
        when {{ is_buyer }}
            then cast(
                least(5, 1 + floor(5 * percent_rank() over (partition by {{ partition_by }}, {{ is_buyer }} order by {{ column }} {{ direction }})))
                as {{ dbt.type_int() }}
            )
    end
{%- endmacro %}

{# Weighted RFM score (1-5) from the three quintile scores; weights from var('rfm_weights'). #}
{% macro weighted_rfm_score(r_score, f_score, m_score) -%}
    {%- set w = var('rfm_weights') -%}
    {%- set total = w['recency'] + w['frequency'] + w['monetary'] -%}
    cast(
        round(({{ w['recency'] }} * {{ r_score }} + {{ w['frequency'] }} * {{ f_score }} + {{ w['monetary'] }} * {{ m_score }}) / {{ total }}, 2)
        as {{ dbt.type_float() }}
    )
{%- endmacro %}
