"""The real nightly DAG, run by Airflow (`dag.test()`) on generated sample exports.

Every stage for real (DuckDB, dbt model by model through cosmos, Great Expectations, MLflow),
in one story that needs its state: a fresh install runs day D and trains its first champion,
gives the same warehouse as `journeys run` for D, a rerun of D changes nothing, and a task that
fails calls the alert (a record and a webhook post).
Slow: `.venv/bin/python -m pytest tests/dags -m e2e`.
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, time, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

FEATURES = "customer_journeys://marts/customer_features"
MODELS = "customer_journeys://ml/champion_models"
TRAINING_DAG_ID = "customer_journeys_training"
SEGMENTS = "customer_journeys://marts/customer_segments"
ACTIVATION = "customer_journeys://activation/exports"


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


def _run(dag, day):
    run = dag.test(logical_date=datetime.combine(day, time.min, tzinfo=UTC))
    instances = run.get_task_instances()
    for ti in sorted(instances, key=lambda ti: ti.start_date or run.start_date):
        print(f"[airflow]   {day} {ti.task_id}: {ti.state} in {ti.duration or 0:.1f}s")
    return run, {ti.task_id: ti.state for ti in instances}


def test_nightly_dag_end_to_end_rerun_and_failure_alert(
    airflow_db,
    dagbag,
    dbt_manifest,
    nightly_dag,
    nightly_home,
    no_retries,
    nightly_run,
    webhook,
    warehouse_snapshot,
    monkeypatch,
) -> None:
    from airflow.utils.state import DagRunState

    from journeys.settings import get_settings

    day = nightly_home.run_date
    settings = get_settings()
    assert settings.warehouse == nightly_home.home.resolve() / "warehouse.duckdb"

    # 1. A fresh install: no champion yet, so this run trains the first models itself.
    run, states = _run(nightly_dag, day)
    dbt_tasks = sorted(t for t in states if t.startswith("dbt"))
    print(f"\n[airflow] {len(states)} tasks, {len(dbt_tasks)} of them dbt (cosmos)")
    assert sum(t.endswith("_model_build") for t in dbt_tasks) >= 10, "dbt not model by model"
    assert set(states.values()) == {"success"}, states
    assert run.state == DagRunState.SUCCESS
    first = warehouse_snapshot(settings)
    assert first["published"], "marts.customer_segments is empty"
    assert {row[1] for row in first["published"]} == {day}
    assert list((settings.activation / day.isoformat()).iterdir())
    events = _asset_events(run)
    assert events[FEATURES] == [{"task": "validate", "run_date": str(day)}]
    assert events[MODELS] == [{"task": "train_first_champion", "run_date": str(day)}]
    assert events[SEGMENTS][0]["run_date"] == str(day) and events[SEGMENTS][0]["rows"] > 0
    assert events[ACTIVATION][0]["task"] == "publish"
    assert not settings.alerts.exists() or not list(settings.alerts.iterdir())

    # 2. Orchestrated by Airflow or run by `journeys run`: the same warehouse for the same day.
    cli_home, _ = nightly_run
    assert warehouse_snapshot(cli_home.settings) == first

    # 3. Rerunning the finished day changes nothing (and the champion now exists).
    run, states = _run(nightly_dag, day)
    assert run.state == DagRunState.SUCCESS, states
    assert states.pop("train_first_champion") == "skipped"
    assert set(states.values()) == {"success"}, states
    assert warehouse_snapshot(settings) == first

    # 4. The training DAG, for real, on the day the nightly run validated (its features asset):
    # with the models trained that day nothing is due, so it ends skipped and emits nothing;
    # forced, it retrains and updates the champion-models asset; training alone publishes
    # nothing.
    training = dagbag.dags[TRAINING_DAG_ID]
    for task in training.tasks:
        monkeypatch.setattr(task, "retries", 0)
    sunday = datetime.combine(day + timedelta(days=1), time(3), UTC)
    run = training.test(logical_date=sunday - timedelta(hours=1))
    assert run.get_task_instance("train").state == "skipped"
    assert _asset_events(run) == {}
    run = training.test(logical_date=sunday, run_conf={"force": True})
    assert run.get_task_instance("train").state == "success"
    assert _asset_events(run)[MODELS] == [{"task": "train", "run_date": str(day)}]
    assert warehouse_snapshot(settings) == first

    # 5. A task that fails for real (here `land`: the warehouse path runs through a file) calls
    # the alert once, from its on-failure callback: a record and a webhook post. (The quality
    # gate failing is the same callback; tests/e2e shows the gate failing on bad data.)
    not_a_folder = nightly_home.home / "not-a-folder"
    not_a_folder.write_text("")
    monkeypatch.setenv("JOURNEYS_WAREHOUSE", str(not_a_folder / "warehouse.duckdb"))
    next_day = day + timedelta(days=1)
    run, states = _run(nightly_dag, next_day)
    assert run.state == DagRunState.FAILED
    assert states["land"] == "failed"
    assert {states[t] for t in ("validate", "score", "publish")} == {"upstream_failed"}

    records = [json.loads(p.read_text()) for p in sorted(Path(settings.alerts).glob("*.json"))]
    assert len(records) == 1, "one alert, from the on-failure callback"
    record = records[0]
    assert (record["kind"], record["dag_id"]) == ("task_failed", "customer_journeys_nightly")
    assert (record["task_id"], record["run_date"]) == ("land", str(next_day))
    # A worker hands the callback the exception (the record's error_type and error); Airflow
    # 3.2's in-process dag.test() runner does not put it in the callback's context.
    assert record["try_number"] == 1 and record["logical_date"].startswith(str(next_day))
    assert record["webhook"]["status"] == 204
    assert [sent["task_id"] for sent in webhook] == ["land"]
    assert webhook[0]["text"].startswith(f"customer_journeys_nightly.land failed for {next_day}")
