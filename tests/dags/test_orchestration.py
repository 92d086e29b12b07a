"""The decisions the DAGs delegate to journeys.orchestration and journeys.alerts.

Run dates, run ordering, manifest freshness, late-run reporting and the alert record itself,
checked without running the pipeline. `journeys.orchestration` imports airflow.sdk, so every
test here depends on the `airflow_home` fixture (see conftest.py).
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, date, datetime, time
from pathlib import Path
from types import SimpleNamespace

import pytest


@pytest.fixture
def orch(airflow_home):
    from journeys import orchestration

    return orchestration


@pytest.fixture
def settings(tmp_path, monkeypatch):
    from journeys.settings import get_settings

    monkeypatch.setenv("JOURNEYS_HOME", str(tmp_path / "home"))
    return get_settings()


def test_a_run_processes_the_day_of_its_logical_date(orch) -> None:
    scheduled = {"logical_date": datetime(2025, 3, 15, 0, 0, tzinfo=UTC)}
    assert orch.run_date(scheduled) == date(2025, 3, 15)
    late_in_the_day = {"logical_date": datetime(2025, 3, 15, 23, 59, tzinfo=UTC)}
    assert orch.run_date(late_in_the_day) == date(2025, 3, 15)
    # No logical date (a manual run in Airflow 3): the last complete day before it was due.
    manual = {"logical_date": None, "dag_run": SimpleNamespace(run_after=datetime(2025, 3, 16, 9))}
    assert orch.run_date(manual) == date(2025, 3, 15)


@pytest.mark.parametrize(
    ("previous", "may_start"),
    [(None, True), ("success", True), ("failed", True), ("running", False), ("queued", False)],
)
def test_a_run_waits_for_the_previous_day(orch, previous, may_start) -> None:
    run = None if previous is None else SimpleNamespace(state=previous, run_id="r")
    ti = SimpleNamespace(get_previous_dagrun=lambda: run)
    assert orch.previous_run_finished(ti) is may_start


def test_the_manifest_is_used_only_when_built_from_the_models_on_disk(
    orch, dbt_manifest, monkeypatch, tmp_path
) -> None:
    from journeys.settings import get_settings

    assert orch.manifest_problem(get_settings()) is None  # what build_manifest() wrote

    project = tmp_path / "dbt_project"  # a copy: the checkout's models are never touched
    shutil.copytree(orch.DBT_PROJECT_DIR, project, ignore=shutil.ignore_patterns("target", "logs"))
    monkeypatch.setattr(orch, "DBT_PROJECT_DIR", project)
    manifest = tmp_path / "manifest.json"
    monkeypatch.setenv("JOURNEYS_DBT_MANIFEST", str(manifest))
    settings = get_settings()
    assert orch.manifest_problem(settings).startswith("no dbt manifest")
    manifest.write_text("{}")
    assert "other model files" in orch.manifest_problem(settings)  # built from what?
    orch._replace(orch._fingerprint_path(manifest), orch.project_fingerprint().encode())
    assert orch.manifest_problem(settings) is None

    model = sorted(project.glob("models/**/*.sql"))[0]
    model.touch()  # a checkout or an editor: same content, still current
    assert orch.manifest_problem(settings) is None
    model.write_text(model.read_text() + "\n-- edited\n")
    assert "other model files" in orch.manifest_problem(settings)


def test_the_watchdog_reports_a_nightly_run_that_has_not_succeeded(orch, settings) -> None:
    seen: list[tuple] = []

    def watchdog(nightly_state: str | None, previous: object = "a run") -> dict:
        def count(dag_id, logical_dates, states):
            seen.append((dag_id, logical_dates[0]))
            return int(nightly_state in states)

        ti = SimpleNamespace(get_previous_dagrun=lambda: previous, get_dr_count=count)
        context = {"ti": ti, "logical_date": datetime(2025, 3, 16, 6, tzinfo=UTC), "dag_run": None}
        return orch.check_nightly_on_time(context, settings)

    assert watchdog("success") == {"run_date": "2025-03-15", "state": "success", "late": False}
    assert seen[0] == ("customer_journeys_nightly", datetime(2025, 3, 15, tzinfo=UTC))
    assert not settings.alerts.exists()

    for state, reported in (("running", "running"), ("failed", "failed"), (None, "not started")):
        summary = watchdog(state)
        assert summary["late"] is True and summary["state"] == reported
        record = json.loads(Path(summary["alert"]).read_text())
        assert record["kind"] == "late_run"
        assert (record["run_date"], record["state"]) == ("2025-03-15", reported)
        assert record["deadline"] == "2025-03-16T06:00:00+00:00"

    # Its very first run, right after installation, looks at a day before Airflow existed.
    assert watchdog(None, previous=None)["late"] is None


def test_an_alert_never_raises_and_keeps_the_webhook_outcome(monkeypatch, settings) -> None:
    from journeys.alerts import alert

    monkeypatch.setenv("JOURNEYS_ALERT_WEBHOOK_URL", "http://127.0.0.1:9/unreachable")
    ti = SimpleNamespace(dag_id="d", task_id="t", run_id="r", try_number=3, max_tries=2)
    context = {
        "ti": ti,
        "logical_date": datetime(2025, 3, 15, tzinfo=UTC),
        "exception": ValueError("boom\nsecond line"),
    }
    path = alert(context)  # settings from the environment, as in Airflow
    record = json.loads(path.read_text())
    assert record["summary"] == "d.t failed for 2025-03-15: boom"
    assert record["error_type"] == "ValueError" and record["try_number"] == 3
    assert "error" in record["webhook"] and "status" not in record["webhook"]
    assert alert({"ti": object()}, kind="task_failed") is not None  # odd context: still recorded
    broken = SimpleNamespace(alerts=Path("/proc/no-such-dir"), alert_webhook_url=None)
    assert alert(context, settings=broken) is None  # cannot write: logged, not raised


def test_the_watchdog_dag_alerts_through_airflow(airflow_db, dagbag, settings) -> None:
    """The real task, through Airflow's API for reading other DAGs' runs (`dag.test()`)."""
    watchdog = dagbag.dags["customer_journeys_watchdog"]
    first = watchdog.test(logical_date=datetime.combine(date(2025, 1, 2), time(6), UTC))
    second = watchdog.test(logical_date=datetime.combine(date(2025, 1, 3), time(6), UTC))

    assert {first.state, second.state} == {"success"}
    records = [json.loads(p.read_text()) for p in sorted(settings.alerts.glob("*.json"))]
    assert [(r["kind"], r["run_date"], r["state"]) for r in records] == [
        ("late_run", "2025-01-02", "not started")
    ]
