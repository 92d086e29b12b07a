"""Publication: the activation table swapped in whole, its history, and the activation file.

`marts.customer_segments` is built aside as `customer_segments__next` and swapped in inside one
transaction: readers see the previous version or the new one, never half of it, and a failure
leaves the previous version in place. Re-publishing a date replaces that date's history rows.
"""

from __future__ import annotations

import os
from datetime import date

from journeys.errors import PipelineError
from journeys.settings import Settings
from journeys.warehouse import connect, table_exists

SEGMENTS = "marts.customer_segments"


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
            con.execute("commit")
        except BaseException:
            con.execute("rollback")
            raise
        sizes = dict(
            con.execute(
                f"select segment_name, count(*) from {SEGMENTS} group by 1 order by 2 desc"
            ).fetchall()
        )
        export = write_activation_file(con, settings, run_date)
    return {"rows": rows, "segment_sizes": sizes, "activation_file": str(export)}


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


def write_activation_file(con, settings: Settings, run_date: date):
    """CSV of the published segments, with ids and scores only (no PII), written atomically."""
    folder = settings.activation / run_date.isoformat()
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / "customer_segments.csv"
    temporary = folder / f".customer_segments.csv.{os.getpid()}.tmp"
    con.execute(
        f"copy (select customer_id, snapshot_date, segment_id, segment_name, "
        f"round(churn_probability, 4) as churn_probability, model_version from {SEGMENTS} "
        f"order by customer_id) to '{temporary}' (header, delimiter ',')"
    )
    os.replace(temporary, target)
    return target
