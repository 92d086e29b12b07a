"""The nightly DAG's wiring, run by Airflow with the stages stubbed out.

`dag.test()` runs the tasks in this process, so replacing the `journeys.pipeline` functions
checks everything Airflow-side in seconds: the logical date reaches each stage as a `date`,
stages run once each and in order, summaries go through XCom, and `publish` records an event
on the segments asset. The real stages run in test_nightly_dag_e2e.py.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

NIGHTLY_STAGES = ("land", "transform", "validate", "train", "score", "publish")
SEGMENTS_ASSET_URI = "customer_journeys://marts/customer_segments"


@pytest.fixture
def stage_calls(nightly_dag, monkeypatch) -> list[tuple[str, object, object]]:
    """Replace every stage with a stub; returns the (stage, run_date, settings) calls, in order."""
    calls: list[tuple[str, object, object]] = []

    def stub(name: str):
        def stage(run_date: date, settings: object = None) -> dict:
            calls.append((name, run_date, settings))
            return {"stage": name, "run_date": run_date.isoformat()}

        return stage

    for name in NIGHTLY_STAGES:
        monkeypatch.setattr(f"journeys.pipeline.{name}", stub(name))
    for task in nightly_dag.tasks:
        monkeypatch.setattr(task, "retries", 0)  # a failure ends the run instead of waiting
    return calls


def test_nightly_dag_calls_each_stage_with_the_logical_date(
    airflow_db, nightly_dag, stage_calls
) -> None:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState, TaskInstanceState
    from sqlalchemy import select

    calls = stage_calls
    run = nightly_dag.test(logical_date=datetime(2025, 3, 15, tzinfo=UTC))

    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert states == dict.fromkeys(NIGHTLY_STAGES, TaskInstanceState.SUCCESS), states
    assert run.state == DagRunState.SUCCESS
    assert calls == [(name, date(2025, 3, 15), None) for name in NIGHTLY_STAGES]
    assert all(type(run_date) is date for _, run_date, _ in calls)  # not a datetime

    with create_session() as session:
        summary = session.scalar(
            select(XComModel.value).where(
                XComModel.dag_id == run.dag_id,
                XComModel.run_id == run.run_id,
                XComModel.task_id == "publish",
                XComModel.key == "return_value",
            )
        )
        events = session.scalars(
            select(AssetEvent.source_task_id)
            .join(AssetModel, AssetModel.id == AssetEvent.asset_id)
            .where(AssetModel.uri == SEGMENTS_ASSET_URI, AssetEvent.source_run_id == run.run_id)
        ).all()
    assert summary is not None and "publish" in str(summary)
    assert events == ["publish"]


def test_a_run_without_logical_date_processes_the_day_it_ran(
    airflow_db, nightly_dag, stage_calls
) -> None:
    """Airflow 3 manual runs may have no logical date: the stages then get the run-after day."""
    from airflow.utils.state import DagRunState

    run = nightly_dag.test(logical_date=None)

    assert run.state == DagRunState.SUCCESS
    assert run.logical_date is None
    ran_on = run.run_after.date()
    assert [call[:2] for call in stage_calls] == [(name, ran_on) for name in NIGHTLY_STAGES]
