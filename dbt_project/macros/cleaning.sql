{# Cleaning helpers shared by the staging models. Engine-specific SQL lives only here. #}

{# Text as delivered -> trimmed, empty as null. #}
{% macro clean_text(column) -%}
    nullif(trim({{ column }}), '')
{%- endmacro %}

{# ISO 8601 text -> UTC timestamp; text without a zone is UTC (the session time zone). #}
{% macro to_utc_timestamp(column) -%}
    {{ return(adapter.dispatch('to_utc_timestamp', 'customer_journeys')(column)) }}
{%- endmacro %}

{% macro default__to_utc_timestamp(column) -%}
    cast(to_utc_timestamp(cast(nullif(trim({{ column }}), '') as timestamp), 'UTC') as {{ dbt.type_timestamp() }})
{%- endmacro %}

{% macro duckdb__to_utc_timestamp(column) -%}
    cast(cast(nullif(trim({{ column }}), '') as timestamptz) as timestamp)
{%- endmacro %}

{# Email as an identity key: lower case, no surrounding blanks. Provider aliases are identity rules. #}
{% macro normalize_email(column) -%}
    nullif(lower(trim({{ column }})), '')
{%- endmacro %}

{# Phone to E.164: keep digits; 00 prefix -> international; a national leading 0 -> default country. #}
{% macro normalize_phone(column) -%}
    {%- set digits = "regexp_replace(" ~ column ~ ", '[^0-9]', '', 'g')" -%}
    case
        when {{ column }} is null or {{ digits }} = '' then null
        when trim({{ column }}) like '+%' then '+' || {{ digits }}
        when {{ digits }} like '00%' then '+' || substr({{ digits }}, 3)
        when {{ digits }} like '0%' then '+{{ var("default_phone_country_code") }}' || substr({{ digits }}, 2)
        else '+' || {{ digits }}
    end
{%- endmacro %}

{# Keep the latest version of each key: by the version column, then the latest delivery. #}
{% macro latest_per_key(relation, key_columns, version_column=none) -%}
    select * from (
        select
            *,
            row_number() over (
                partition by {{ key_columns | join(', ') }}
                order by
                    {% if version_column %}{{ version_column }} desc nulls last,{% endif %}
                    _delivery_date desc, _file desc, _line desc
            ) as _version_rank
        from {{ relation }}
    ) as ranked
    where _version_rank = 1
{%- endmacro %}

{#
    The snapshot dates this run builds: var('snapshot_date'), var('extra_snapshot_dates'), and
    those of var('training_snapshot_dates') this incremental table holds already (the train
    step adds them on the nights it trains; a re-run of that night builds them again, so
    re-running a day leaves the same tables).
#}
{% macro feature_snapshot_dates() -%}
    {%- set dates = [var('snapshot_date')] + var('extra_snapshot_dates') -%}
    {%- if execute and is_incremental() and var('training_snapshot_dates') -%}
        {%- set held = run_query("select distinct cast(snapshot_date as " ~ dbt.type_string() ~ ") from " ~ this).columns[0].values() -%}
        {%- for d in var('training_snapshot_dates') if d in held -%}
            {%- do dates.append(d) -%}
        {%- endfor -%}
    {%- endif -%}
    {{ return(dates | unique | list) }}
{%- endmacro %}

{# feature_snapshot_dates() as a relation with one column snapshot_date. #}
{% macro snapshot_dates_relation() -%}
    {%- for d in feature_snapshot_dates() %}
    select cast('{{ d }}' as date) as snapshot_date
    {%- if not loop.last %} union all{% endif %}
    {%- endfor %}
{%- endmacro %}
