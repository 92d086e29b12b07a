{# List (array) helpers for the per-cookie-day lists of int_web_cookie_days. #}

{# An empty list of strings, typed. #}
{% macro empty_string_list() -%}
    {{ return(adapter.dispatch('empty_string_list', 'customer_journeys')()) }}
{%- endmacro %}

{% macro default__empty_string_list() -%}
    cast([] as {{ dbt.type_string() }}[])
{%- endmacro %}

{% macro spark__empty_string_list() -%}
    cast(array() as array<string>)
{%- endmacro %}

{# One row per element of a list column (select-list position). #}
{% macro unnest_list(column) -%}
    {{ return(adapter.dispatch('unnest_list', 'customer_journeys')(column)) }}
{%- endmacro %}

{% macro default__unnest_list(column) -%}
    unnest({{ column }})
{%- endmacro %}

{% macro spark__unnest_list(column) -%}
    explode({{ column }})
{%- endmacro %}

{# Aggregate: how many distinct values the lists of the group hold together. #}
{% macro distinct_count_in_lists(column) -%}
    {{ return(adapter.dispatch('distinct_count_in_lists', 'customer_journeys')(column)) }}
{%- endmacro %}

{% macro default__distinct_count_in_lists(column) -%}
    len(list_distinct(flatten(list({{ column }}))))
{%- endmacro %}

{% macro spark__distinct_count_in_lists(column) -%}
    size(array_distinct(flatten(collect_list({{ column }}))))
{%- endmacro %}
