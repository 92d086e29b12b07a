"""The real nightly DAG, run by Airflow (`dag.test()`) on generated sample exports.

Slow (every stage for real: DuckDB, dbt model by model through cosmos, Great Expectations,
MLflow). Run it alone with `.venv/bin/python -m pytest tests/dags -m e2e`.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, time

import pytest

pytestmark = pytest.mark.e2e


def test_nightly_dag_runs_end_to_end(
    airflow_db, dbt_manifest, nightly_dag, nightly_home, no_retries
) -> None:
    from airflow.utils.state import DagRunState, TaskInstanceState

    from journeys.settings import get_settings
    from journeys.warehouse import connect

    run = nightly_dag.test(
        logical_date=datetime.combine(nightly_home.run_date, time.min, tzinfo=UTC)
    )

    instances = run.get_task_instances()
    states = {ti.task_id: ti.state for ti in instances}
    for ti in sorted(instances, key=lambda ti: ti.start_date or run.start_date):
        print(f"[airflow]   {ti.task_id}: {ti.state} in {ti.duration or 0:.1f}s")
    dbt_tasks = sorted(t for t in states if t.startswith("dbt"))
    print(f"\n[airflow] {len(states)} tasks, {len(dbt_tasks)} of them dbt (cosmos)")
    assert sum(t.endswith("_model_build") for t in dbt_tasks) >= 10, "dbt not model by model"
    # A fresh install: no champion yet, so this run trains the first models itself.
    assert states == dict.fromkeys(states, TaskInstanceState.SUCCESS), {
        task: state for task, state in states.items() if state != TaskInstanceState.SUCCESS
    }
    assert run.state == DagRunState.SUCCESS

    settings = get_settings()
    assert settings.warehouse == nightly_home.home.resolve() / "warehouse.duckdb"
    # This process ran dbt, which keeps the file open: read it with the same configuration.
    with connect(settings) as con:
        published, day = con.execute(
            "select count(*), max(snapshot_date) from marts.customer_segments"
        ).fetchone()
    assert published > 0, "marts.customer_segments is empty"
    assert day == nightly_home.run_date
    assert list((settings.activation / nightly_home.run_date.isoformat()).iterdir())
    assert not settings.alerts.exists() or not list(settings.alerts.iterdir()), json.dumps(
        [p.read_text() for p in settings.alerts.iterdir()]
    )
