"""Publication: the activation table swapped in whole, its history, movements and the exports.

`marts.customer_segments` is built aside as `customer_segments__next` and swapped in inside one
transaction: readers see the previous version or the new one, never half of it, and a failure
leaves the previous version in place. Re-publishing a date replaces that date's history rows.
`marts.customer_segment_movements` (a view over the history) says who moved from which segment
to which and when. The activation exports (journeys.activation) follow, from the same data.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

from journeys.activation import export_audiences
from journeys.errors import PipelineError
from journeys.settings import Settings
from journeys.warehouse import connect, table_exists

SEGMENTS = "marts.customer_segments"
SEGMENTS_FILE = "customer_segments.csv"
# One row per customer and published run where the segment differs from the previous run's:
# from_segment null = first published, to_segment null = no longer published (e.g. erased).
MOVEMENTS_VIEW = f"""
create or replace view marts.customer_segment_movements as
with runs as (
    select snapshot_date, lag(snapshot_date) over (order by snapshot_date) as previous_snapshot_date
    from (select distinct snapshot_date from {SEGMENTS}_history)
),
stays as (
    select
        runs.snapshot_date as moved_on, runs.previous_snapshot_date, this_run.customer_id,
        last_run.segment_id as from_segment_id, last_run.segment_name as from_segment,
        this_run.segment_id as to_segment_id, this_run.segment_name as to_segment,
        this_run.published_at
    from runs
    join {SEGMENTS}_history as this_run using (snapshot_date)
    left join {SEGMENTS}_history as last_run
        on last_run.snapshot_date = runs.previous_snapshot_date
        and last_run.customer_id = this_run.customer_id
),
leaves as (
    select
        runs.snapshot_date, runs.previous_snapshot_date, last_run.customer_id,
        last_run.segment_id, last_run.segment_name, null, null, null
    from runs
    join {SEGMENTS}_history as last_run on last_run.snapshot_date = runs.previous_snapshot_date
    anti join {SEGMENTS}_history as this_run
        on this_run.snapshot_date = runs.snapshot_date
        and this_run.customer_id = last_run.customer_id
)
select * from (select * from stays union all select * from leaves)
where (from_segment_id, from_segment) is distinct from (to_segment_id, to_segment)
"""


class NothingToPublish(PipelineError):
    """No scores exist for the run date: score before publishing."""


def publish_segments(settings: Settings, run_date: date) -> dict:
    with connect(settings) as con:
        if not table_exists(con, "ml", "customer_scores"):
            raise NothingToPublish("ml.customer_scores does not exist: run `journeys score` first")
        con.execute(
            f"""create or replace table {SEGMENTS}__next as
            select
                scores.customer_id,
                scores.snapshot_date,
                scores.segment_id,
                scores.segment_name,
                scores.churn_probability,
                scores.churn_reason_1,
                scores.churn_reason_2,
                scores.churn_reason_3,
                scores.high_value_probability,
                'segmentation v' || scores.segmentation_model_version
                    || ', churn v' || scores.churn_model_version
                    || coalesce(', high-value v' || scores.high_value_model_version, '')
                    as model_version,
                now() as published_at
            from ml.customer_scores as scores
            inner join marts.dim_customers as customers using (customer_id)
            where scores.snapshot_date = ? and not customers.is_test_account
            order by scores.customer_id""",
            [run_date],
        )
        rows = con.execute(f"select count(*) from {SEGMENTS}__next").fetchall()[0][0]
        if rows == 0:
            con.execute(f"drop table {SEGMENTS}__next")
            raise NothingToPublish(f"no scored customers for {run_date}: nothing was published")
        con.execute("begin transaction")
        try:
            con.execute(f"drop table if exists {SEGMENTS}")
            con.execute(f"alter table {SEGMENTS}__next rename to customer_segments")
            con.execute(
                f"create table if not exists {SEGMENTS}_history as "
                f"select * from {SEGMENTS} where false"
            )
            _add_missing_columns(con, f"{SEGMENTS}_history", SEGMENTS)
            con.execute(f"delete from {SEGMENTS}_history where snapshot_date = ?", [run_date])
            con.execute(f"insert into {SEGMENTS}_history by name select * from {SEGMENTS}")
            con.execute(MOVEMENTS_VIEW)
            con.execute("commit")
        except BaseException:
            con.execute("rollback")
            con.execute(f"drop table if exists {SEGMENTS}__next")
            raise
        sizes = dict(
            con.execute(
                f"select segment_name, count(*) from {SEGMENTS} group by 1 order by 2 desc"
            ).fetchall()
        )
        activation = export_audiences(
            con, settings, run_date, extra_files=lambda folder: write_activation_file(con, folder)
        )
    export = settings.activation / run_date.isoformat() / SEGMENTS_FILE
    return {
        "rows": rows,
        "segment_sizes": sizes,
        "activation_file": str(export),
        "activation": activation,
    }


def _add_missing_columns(con, table: str, like: str) -> None:
    """Columns of `like` that `table` lacks (added in a later release), added empty."""

    def columns(name: str) -> dict[str, str]:
        schema, table_name = name.split(".")
        return dict(
            con.execute(
                "select column_name, data_type from information_schema.columns "
                "where table_schema = ? and table_name = ? order by ordinal_position",
                [schema, table_name],
            ).fetchall()
        )

    have = columns(table)
    for column, kind in columns(like).items():
        if column not in have:
            con.execute(f"alter table {table} add column {column} {kind}")


def write_activation_file(con, folder: Path) -> Path:
    """CSV of the published segments, ids and scores only (no PII), into the staged date folder."""
    target = folder / SEGMENTS_FILE
    con.execute(
        f"copy (select customer_id, snapshot_date, segment_id, segment_name, "
        f"round(churn_probability, 4) as churn_probability, model_version from {SEGMENTS} "
        f"order by customer_id) to '{target}' (header, delimiter ',')"
    )
    return target
