"""The real nightly DAG, run by Airflow (`dag.test()`) on generated sample exports.

Slow (every stage for real: DuckDB, dbt, Great Expectations, MLflow). Run it with
`.venv/bin/python -m pytest tests/dags -m e2e`.
"""

from __future__ import annotations

from datetime import UTC, datetime, time

import pytest

pytestmark = pytest.mark.e2e

NIGHTLY_STAGES = ("land", "transform", "validate", "train", "score", "publish")


def test_nightly_dag_runs_end_to_end(airflow_db, nightly_dag, nightly_home, monkeypatch) -> None:
    from airflow.utils.state import DagRunState, TaskInstanceState

    from journeys.settings import get_settings
    from journeys.warehouse import connect

    # Production retries (2, with backoff) would make dag.test() sit out the retry delays
    # after a failure; here a failure should end the run at once.
    for task in nightly_dag.tasks:
        monkeypatch.setattr(task, "retries", 0)

    run = nightly_dag.test(
        logical_date=datetime.combine(nightly_home.run_date, time.min, tzinfo=UTC)
    )

    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert states == dict.fromkeys(NIGHTLY_STAGES, TaskInstanceState.SUCCESS), states
    assert run.state == DagRunState.SUCCESS

    warehouse = get_settings().warehouse
    assert warehouse == nightly_home.home.resolve() / "warehouse.duckdb"
    # This process ran dbt, which keeps the file open: read it with the same configuration.
    with connect(get_settings()) as con:
        published = con.execute("select count(*) from marts.customer_segments").fetchone()[0]
    assert published > 0, "marts.customer_segments is empty"
