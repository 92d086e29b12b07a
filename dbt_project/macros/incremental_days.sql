{#
    Incremental by customer and day: a run replaces the (customer, day) rows it builds. Rows
    of customers no longer known (merged away, turned test accounts) are deleted after the
    insert; with drops_empty_rows, the model itself writes an empty row (null
    landed_batch_id) for each pair to delete instead, and the pairs deleted are logged with
    the time of the build (removed_pairs_log). `after`: more post-hooks. Spark has no
    row-level delete without Delta/Iceberg: it overwrites day partitions.
#}
{% macro customer_day_incremental_config(drops_empty_rows=false, after=[]) -%}
    {%- if drops_empty_rows -%}
        {#- The pairs deleted are logged (removed_pairs_log) for the models reading this one. -#}
        {%- set log = "{{ removed_pairs_log() }}" -%}
        {%- set cleanup = [
            "create table if not exists " ~ log ~ " as select customer_id, day, built_at from {{ this }} where false",
            "insert into " ~ log ~ " select customer_id, day, built_at from {{ this }} where landed_batch_id is null",
            "delete from {{ this }} where landed_batch_id is null",
        ] -%}
    {%- else -%}
        {%- set cleanup = ["delete from {{ this }} where customer_id not in (select customer_id from {{ ref('dim_customers') }} where not is_test_account)"] -%}
    {%- endif -%}
    {%- if target.type == 'spark' -%}
        {{ return({'materialized': 'incremental', 'incremental_strategy': 'insert_overwrite', 'partition_by': ['day'], 'on_schema_change': 'fail', 'post_hook': after}) }}
    {%- else -%}
        {{ return({'materialized': 'incremental', 'incremental_strategy': 'delete+insert', 'unique_key': ['customer_id', 'day'], 'on_schema_change': 'fail', 'post_hook': cleanup + after}) }}
    {%- endif -%}
{%- endmacro %}

{#
    Order-free fingerprint of a set of rows (aggregate): xor of a 64-bit hash of the columns.
    Equal sets give equal fingerprints; any row added, removed or changed changes it.
#}
{% macro fingerprint(columns) -%}
    {{ return(adapter.dispatch('fingerprint', 'customer_journeys')(columns)) }}
{%- endmacro %}

{% macro duckdb__fingerprint(columns) -%}
    bit_xor({{ row_hash(columns) }})
{%- endmacro %}

{% macro default__fingerprint(columns) -%}
    bit_xor({{ row_hash(columns) }})
{%- endmacro %}

{# A 64-bit hash of one row's columns. #}
{% macro row_hash(columns) -%}
    {{ return(adapter.dispatch('row_hash', 'customer_journeys')(columns)) }}
{%- endmacro %}

{% macro duckdb__row_hash(columns) -%}
    hash({{ columns | join(', ') }})
{%- endmacro %}

{% macro default__row_hash(columns) -%}
    xxhash64({{ columns | join(', ') }})
{%- endmacro %}

{# Combine fingerprints (aggregate): xor, so fingerprints of disjoint sets add up. #}
{% macro combine_fingerprints(column) -%}
    bit_xor({{ column }})
{%- endmacro %}

{#
    Incremental by snapshot date: a run replaces the snapshots it builds (delete+insert on
    snapshot_date) and then drops every other, so the table holds this run's snapshots only,
    as a full refresh would (the run date's training snapshots are kept: the run builds them
    when the table holds them, see feature_snapshot_dates). Spark overwrites the snapshot
    partitions instead. `after`: more post-hooks.
#}
{% macro snapshot_incremental_config(after=[]) -%}
    {%- set dates = [] -%}
    {%- for d in [var('snapshot_date')] + var('extra_snapshot_dates') + var('training_snapshot_dates') -%}
        {%- do dates.append("cast('" ~ d ~ "' as date)") -%}
    {%- endfor -%}
    {%- set keep_only = "delete from {{ this }} where snapshot_date not in (" ~ dates | join(', ') ~ ")" -%}
    {%- if target.type == 'spark' -%}
        {{ return({'materialized': 'incremental', 'incremental_strategy': 'insert_overwrite', 'partition_by': ['snapshot_date'], 'on_schema_change': 'fail', 'post_hook': after}) }}
    {%- else -%}
        {{ return({'materialized': 'incremental', 'incremental_strategy': 'delete+insert', 'unique_key': 'snapshot_date', 'on_schema_change': 'fail', 'post_hook': [keep_only] + after}) }}
    {%- endif -%}
{%- endmacro %}

{# One value computed over a relation (an aggregate such as "min(day)"), as text, read when
   the model runs; none when the relation is empty. #}
{% macro value_in(relation, aggregate) -%}
    {%- if execute -%}
        {%- set result = run_query("select cast(" ~ aggregate ~ " as " ~ dbt.type_string() ~ ") from " ~ relation) -%}
        {{ return(result.columns[0].values()[0]) }}
    {%- endif -%}
    {{ return(none) }}
{%- endmacro %}

{# MATERIALIZED for a CTE read more than once: DuckDB otherwise inlines and recomputes it. #}
{% macro materialized() -%}
    {{ return('materialized' if target.type == 'duckdb' else '') }}
{%- endmacro %}

{# NOT MATERIALIZED for an import CTE read more than once: DuckDB would otherwise copy the whole
   table once (27M web events at 1M customers) before any filter of its readers applies. #}
{% macro inlined() -%}
    {{ return('not materialized' if target.type == 'duckdb' else '') }}
{%- endmacro %}

{# When the dbt invocation building a row started: `built_at` tells a reader what changed. #}
{% macro build_timestamp() -%}
    cast('{{ run_started_at.strftime("%Y-%m-%d %H:%M:%S.%f") }}' as {{ dbt.type_timestamp() }})
{%- endmacro %}

{# The (customer, day) pairs fct_customer_daily deleted, with the time of the build that did. #}
{% macro removed_pairs_log() -%}
    {{ return(api.Relation.create(database=this.database, schema='intermediate', identifier='fct_customer_daily_removed')) }}
{%- endmacro %}

{#
    The least landing batch id of a batch started at or after `timestamp` (text): batch ids
    are "land-<UTC start, %Y%m%dT%H%M%S>-<random>" (journeys/landing.py), so they sort by when
    landing started. Landing runs before the transform, never beside it.
#}
{% macro landing_batch_at(timestamp) -%}
    {{ return('land-' ~ modules.datetime.datetime.fromisoformat(timestamp).strftime('%Y%m%dT%H%M%S')) }}
{%- endmacro %}
