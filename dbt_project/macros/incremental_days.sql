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
