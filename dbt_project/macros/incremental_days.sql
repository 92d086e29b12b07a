{#
    Incremental by day: a daily model rebuilds whole days (delete+insert on `day`; Spark has
    no MERGE without Delta/Iceberg, so it overwrites the day partitions instead).
#}
{% macro daily_incremental_config() -%}
    {%- if target.type == 'spark' -%}
        {{ return({'materialized': 'incremental', 'incremental_strategy': 'insert_overwrite', 'partition_by': ['day'], 'on_schema_change': 'fail'}) }}
    {%- else -%}
        {{ return({'materialized': 'incremental', 'incremental_strategy': 'delete+insert', 'unique_key': 'day', 'on_schema_change': 'fail'}) }}
    {%- endif -%}
{%- endmacro %}

{# The first day a daily model holds (its earliest row), as 'YYYY-MM-DD', or none. #}
{% macro first_day_in(relation) -%}
    {%- if execute -%}
        {%- set result = run_query("select cast(min(day) as " ~ dbt.type_string() ~ ") from " ~ relation) -%}
        {%- set value = result.columns[0].values()[0] -%}
        {{ return(value) }}
    {%- endif -%}
    {{ return(none) }}
{%- endmacro %}

{#
    Order-free fingerprint of a set of rows (aggregate): xor of a 64-bit hash of the columns.
    Equal sets give equal fingerprints; any row added, removed or changed changes it.
#}
{% macro fingerprint(columns) -%}
    {{ return(adapter.dispatch('fingerprint', 'customer_journeys')(columns)) }}
{%- endmacro %}

{% macro duckdb__fingerprint(columns) -%}
    bit_xor(hash({{ columns | join(', ') }}))
{%- endmacro %}

{% macro default__fingerprint(columns) -%}
    bit_xor(xxhash64({{ columns | join(', ') }}))
{%- endmacro %}

{# Combine fingerprints (aggregate): xor, so fingerprints of disjoint sets add up. #}
{% macro combine_fingerprints(column) -%}
    bit_xor({{ column }})
{%- endmacro %}
