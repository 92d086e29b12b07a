"""Failures speak: the one alert function behind every Airflow failure and late-run report.

`alert` is every task's `on_failure_callback` (called once the last retry has failed, so a
failed dbt model, a failed data test or a failed Great Expectations gate all land here), and
what the watchdog DAG calls when the nightly run has not succeeded by its deadline
(`kind="late_run"`). Each call writes one JSON record under
`$JOURNEYS_HOME/alerts/` and, when `JOURNEYS_ALERT_WEBHOOK_URL` is set, POSTs the same record
to it. An alert never raises: a broken webhook must not hide the failure it reports.

Only the standard library is imported: DAG files import this module when they are parsed.
"""

from __future__ import annotations

import json
import logging
import os
import re
import urllib.request
from collections.abc import Mapping
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from journeys.settings import Settings, get_settings

log = logging.getLogger(__name__)

WEBHOOK_TIMEOUT_S = 10
MAX_MESSAGE_CHARS = 4000


def alert(
    context: Mapping[str, Any] | None = None,
    kind: str = "task_failed",
    settings: Settings | None = None,
) -> Path | None:
    """Record (and post) one alert; returns the record's path (None if it could not be written).

    `context` is what Airflow hands an on-failure callback (the failed task's context); for
    `kind="late_run"` it is `{"dag_id", "run_date", "state", "deadline", "checked_by"}`.
    """
    try:
        settings = settings or get_settings()
        context = context or {}
        if kind == "late_run":
            record = _late_run_record(context)
        else:
            record = _failure_record(context, kind, settings)
        path = _write(settings.alerts, record)
        if settings.alert_webhook_url:
            record["webhook"] = _post(settings.alert_webhook_url, record)
            _write(settings.alerts, record, path)
        log.error("customer_journeys alert %s: %s", record["kind"], record.get("summary"))
        return path
    except Exception:  # noqa: BLE001 - the alert must never mask the failure it reports
        log.exception("could not record the alert")
        return None


def _failure_record(context: Mapping[str, Any], kind: str, settings: Settings) -> dict[str, Any]:
    ti = context.get("ti") or context.get("task_instance")
    dag_run = context.get("dag_run")
    error = context.get("exception")
    dag_id = getattr(ti, "dag_id", None) or getattr(dag_run, "dag_id", None)
    task_id = getattr(ti, "task_id", None)
    record: dict[str, Any] = {
        "kind": kind,
        "dag_id": dag_id,
        "task_id": task_id,
        "run_id": getattr(ti, "run_id", None) or getattr(dag_run, "run_id", None),
        "run_type": _text(getattr(dag_run, "run_type", None)),
        "logical_date": _text(context.get("logical_date")),
        "run_date": _text(_run_date(context)),
        "try_number": getattr(ti, "try_number", None),
        "max_tries": getattr(ti, "max_tries", None),
        "error_type": type(error).__name__ if error is not None else None,
        "error": str(error)[:MAX_MESSAGE_CHARS] if error is not None else None,
        "log_url": getattr(ti, "log_url", None),
    }
    report = getattr(error, "report", None)  # Great Expectations gate: where to read the detail
    if isinstance(report, Mapping):
        record["data_docs"] = report.get("data_docs")
        if report.get("run_date"):
            record["quality_report"] = str(
                settings.home / "gx" / "reports" / f"{report['run_date']}.json"
            )
    first_line = (record["error"] or "failed").splitlines()[0]
    record["summary"] = f"{dag_id}.{task_id} failed for {record['run_date']}: {first_line}"
    return _stamp(record)


def _late_run_record(context: Mapping[str, Any]) -> dict[str, Any]:
    """The nightly run for a day has not succeeded by its deadline (see the watchdog DAG)."""
    record = {
        "kind": "late_run",
        "dag_id": context.get("dag_id"),
        "task_id": None,
        "run_date": _text(context.get("run_date")),
        "state": context.get("state"),
        "deadline": _text(context.get("deadline")),
        "checked_by": context.get("checked_by"),
    }
    record["summary"] = (
        f"{record['dag_id']} for {record['run_date']} has not succeeded by {record['deadline']} "
        f"(state: {record['state']})"
    )
    return _stamp(record)


def _stamp(record: dict[str, Any]) -> dict[str, Any]:
    return {"alerted_at": datetime.now(UTC).isoformat(timespec="seconds"), **record}


def _write(folder: Path, record: dict[str, Any], path: Path | None = None) -> Path:
    """One JSON file per alert, written under a temporary name and renamed (never half-read)."""
    folder.mkdir(parents=True, exist_ok=True)
    if path is None:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        who = "-".join(str(p) for p in (record["dag_id"], record.get("task_id")) if p)
        path = folder / f"{stamp}-{record['kind']}-{re.sub(r'[^A-Za-z0-9_.-]', '_', who)}.json"
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(record, indent=2, default=str) + "\n")
    os.replace(temporary, path)
    return path


def _post(url: str, record: dict[str, Any]) -> dict[str, Any]:
    """POST the record as JSON; the outcome (status or error) is kept in the record."""
    body = json.dumps({**record, "text": record.get("summary")}, default=str).encode()
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=WEBHOOK_TIMEOUT_S) as response:
            return {"url": url, "status": response.status}
    except Exception as error:  # noqa: BLE001 - reported in the record, never raised
        log.warning("alert webhook %s failed: %s", url, error)
        return {"url": url, "error": f"{type(error).__name__}: {error}"}


def _run_date(context: Mapping[str, Any]) -> date | None:
    """The day the failed run was processing (journeys.orchestration.run_date), if known."""
    try:
        from journeys.orchestration import run_date

        return run_date(context)
    except Exception:  # noqa: BLE001 - a context without dates still gets its alert
        return None


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(getattr(value, "value", value))
