{#
    Rows are unique over a combination of columns (no dbt packages: nothing is downloaded).
    written_at: the column an incremental model stamps with the start of the build that wrote
    the row (build_timestamp()). Then only the keys of the rows the latest build wrote are
    checked, against every row: the rows left alone were checked when they were written, and
    deleting rows cannot make a duplicate, so this finds every duplicate a nightly run can
    make without grouping the whole table. A full refresh writes, and checks, every row.
#}
{% test unique_combination(model, columns, written_at=none) %}

select
    {{ columns | join(', ') }},
    count(*) as occurrences
from {{ model }} as tested
{%- if written_at %}
    where exists (
        select 1
        from {{ model }} as written
        where
            written.{{ written_at }} = (select max({{ written_at }}) from {{ model }})
            {%- for column in columns %}
                and written.{{ column }} = tested.{{ column }}
            {%- endfor %}
    )
{%- endif %}
group by {{ columns | join(', ') }}
having count(*) > 1

{% endtest %}
