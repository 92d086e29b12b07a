"""The nightly DAG's wiring, run by Airflow (`dag.test()`) with the work stubbed out.

`dag.test()` runs the tasks in this process, so replacing the `journeys.pipeline` stages, the
identity step, the champion check and cosmos' dbt invocation checks everything Airflow-side in
seconds: the logical date reaches each stage as a `date` and dbt as its vars, stages run once
each and in order, summaries go through XCom, assets get their events, and a failing task (here
the Great Expectations gate) calls the alert function, which records and posts the failure.
The real stages run in test_nightly_dag_e2e.py.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from types import SimpleNamespace

import pytest

STAGES = ("land", "transform", "validate", "train", "score", "publish")
FEATURES = "customer_journeys://marts/customer_features"
MODELS = "customer_journeys://ml/champion_models"
SEGMENTS = "customer_journeys://marts/customer_segments"
ACTIVATION = "customer_journeys://activation/exports"


@dataclass
class Calls:
    """What the stubs saw, in order: (step, run_date) and the dbt command lines."""

    steps: list[tuple[str, object]] = field(default_factory=list)
    dbt: list[tuple[str, list[str], dict]] = field(default_factory=list)
    champion_missing: list[str] = field(default_factory=list)
    fail: dict[str, Exception] = field(default_factory=dict)


@pytest.fixture
def calls(nightly_dag, no_retries, monkeypatch, tmp_path) -> Calls:
    from cosmos.operators.local import DbtLocalBaseOperator

    seen = Calls()
    monkeypatch.setenv("JOURNEYS_HOME", str(tmp_path / "home"))

    def stub(name: str):
        def stage(run_date: date, settings: object = None) -> dict:
            seen.steps.append((name, run_date))
            if name in seen.fail:
                raise seen.fail[name]
            return {"stage": name, "run_date": run_date.isoformat(), "rows": 7}

        return stage

    for name in STAGES:
        monkeypatch.setattr(f"journeys.pipeline.{name}", stub(name))
    monkeypatch.setattr("journeys.orchestration.resolve_identities", stub("identity"))
    monkeypatch.setattr(
        "journeys.orchestration.missing_champions", lambda *a: list(seen.champion_missing)
    )

    def dbt(self, context, cmd_flags=None, **kwargs):
        """cosmos up to the dbt call: interceptors, then the command line; dbt itself not run."""
        self.invoke_interceptors(context)
        command, env = self.build_cmd(context=context, cmd_flags=cmd_flags)
        seen.steps.append((self.task_id, None))
        seen.dbt.append((self.task_id, command, env))
        return SimpleNamespace(success=True, result=SimpleNamespace(results=[]))  # no warnings

    monkeypatch.setattr(DbtLocalBaseOperator, "build_and_run_cmd", dbt)
    return seen


def _states(run) -> dict[str, str]:
    return {ti.task_id: ti.state for ti in run.get_task_instances()}


def _asset_events(run) -> dict[str, list[dict]]:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(
            select(AssetModel.uri, AssetEvent.source_task_id, AssetEvent.extra)
            .join(AssetModel, AssetModel.id == AssetEvent.asset_id)
            .where(AssetEvent.source_run_id == run.run_id)
        ).all()
    events: dict[str, list[dict]] = {}
    for uri, task_id, extra in rows:
        events.setdefault(uri, []).append({"task": task_id, **(extra or {})})
    return events


def test_nightly_dag_passes_the_logical_date_to_every_step(airflow_db, nightly_dag, calls) -> None:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState
    from sqlalchemy import select

    run = nightly_dag.test(logical_date=datetime(2025, 3, 15, tzinfo=UTC))

    states = _states(run)
    assert run.state == DagRunState.SUCCESS, states
    # A champion exists: the first-training step is skipped, scoring still runs.
    assert states.pop("train_first_champion") == "skipped"
    assert set(states.values()) == {"success"}, states

    day = date(2025, 3, 15)
    steps = [name for name, _ in calls.steps]
    python_steps = [(name, d) for name, d in calls.steps if not name.startswith("dbt")]
    assert python_steps == [(n, day) for n in ("land", "identity", "validate", "score", "publish")]
    assert all(type(d) is date for _, d in python_steps)  # a date, not a datetime
    # dbt: every model once, staging before the identity step, the rest after it.
    dbt_tasks = [name for name in steps if name.startswith("dbt")]
    assert len(dbt_tasks) == len(set(dbt_tasks)) == len(calls.dbt) >= 10
    identity = steps.index("identity")
    assert all(name.startswith("dbt_staging.") for name in steps[1:identity])
    assert all(name.startswith("dbt_marts.") for name in steps[identity + 1 : -3])
    for task_id, command, env in calls.dbt:
        assert "snapshot_date: '2025-03-15'" in command[command.index("--vars") + 1], task_id
        assert env["JOURNEYS_WAREHOUSE"].endswith("home/warehouse.duckdb"), task_id
        assert "--select" in command

    events = _asset_events(run)
    assert events[FEATURES] == [{"task": "validate", "run_date": "2025-03-15"}]
    assert events[SEGMENTS] == [{"task": "publish", "run_date": "2025-03-15", "rows": 7}]
    assert events[ACTIVATION][0]["task"] == "publish"
    assert MODELS not in events

    with create_session() as session:
        summary = session.scalar(
            select(XComModel.value).where(
                XComModel.dag_id == run.dag_id,
                XComModel.run_id == run.run_id,
                XComModel.task_id == "publish",
                XComModel.key == "return_value",
            )
        )
    assert summary is not None and "publish" in str(summary)


def test_a_fresh_install_trains_the_first_champion(airflow_db, nightly_dag, calls) -> None:
    calls.champion_missing = ["customer_journeys_churn"]

    run = nightly_dag.test(logical_date=datetime(2025, 3, 16, tzinfo=UTC))

    assert _states(run)["train_first_champion"] == "success"
    python_steps = [name for name, _ in calls.steps if not name.startswith("dbt")]
    assert python_steps[-4:] == ["validate", "train", "score", "publish"]
    assert _asset_events(run)[MODELS] == [
        {"task": "train_first_champion", "run_date": "2025-03-16"}
    ]


def test_a_run_without_logical_date_processes_the_last_complete_day(
    airflow_db, nightly_dag, calls
) -> None:
    """Airflow 3 manual runs may have no logical date: they process the day before."""
    from airflow.utils.state import DagRunState

    run = nightly_dag.test(logical_date=None)

    assert run.state == DagRunState.SUCCESS
    assert run.logical_date is None
    yesterday = run.run_after.date() - timedelta(days=1)
    assert {d for name, d in calls.steps if d is not None} == {yesterday}


class _Webhook(BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        length = int(self.headers["Content-Length"])
        type(self).received.append(json.loads(self.rfile.read(length)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def webhook(monkeypatch) -> list[dict]:
    """A local webhook receiver (127.0.0.1, a free port); returns what it was sent."""
    _Webhook.received = []
    server = HTTPServer(("127.0.0.1", 0), _Webhook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("JOURNEYS_ALERT_WEBHOOK_URL", f"http://127.0.0.1:{server.server_port}/")
    yield _Webhook.received
    server.shutdown()
    server.server_close()


def test_a_failed_quality_gate_calls_the_alert(airflow_db, nightly_dag, calls, webhook) -> None:
    from airflow.utils.state import DagRunState

    from expectations.gate import QualityGateError
    from journeys.settings import get_settings

    failed = {"expectation": "expect_column_values_to_not_be_null", "observed": "3 nulls"}
    report = {
        "run_date": "2025-03-17",
        "data_docs": "/somewhere/index.html",
        "tables": {"marts.fct_orders": {"failed": [{**failed, "column": "order_id",
                                                     "severity": "critical"}]}},
    }  # fmt: skip
    calls.fail["validate"] = QualityGateError(report)

    run = nightly_dag.test(logical_date=datetime(2025, 3, 17, tzinfo=UTC))

    states = _states(run)
    assert run.state == DagRunState.FAILED
    assert states["validate"] == "failed"
    assert {states[t] for t in ("score", "publish")} == {"upstream_failed"}
    assert "publish" not in [name for name, _ in calls.steps]

    records = sorted(Path(get_settings().alerts).glob("*.json"))
    assert len(records) == 1, "one alert: once, after the last try"
    record = json.loads(records[0].read_text())
    assert record["kind"] == "task_failed"
    assert record["dag_id"] == "customer_journeys_nightly"
    assert (record["task_id"], record["run_date"]) == ("validate", "2025-03-17")
    assert record["error_type"] == "QualityGateError"
    assert "marts.fct_orders.order_id: expect_column_values_to_not_be_null" in record["error"]
    assert record["data_docs"] == "/somewhere/index.html"
    assert record["webhook"]["status"] == 204
    assert [sent["task_id"] for sent in webhook] == ["validate"]
    assert webhook[0]["text"].startswith("customer_journeys_nightly.validate failed for 2025-03-17")
