"""Airflow glue for the DAGs in dags/: run dates, assets, the dbt manifest, cosmos, alerts.

The DAG files only wire tasks; what they need to decide (which day a run processes, whether the
dbt manifest can be trusted, how cosmos runs dbt, when a run is late) lives here so it is
written once and tested like any other code. Importing this module is cheap (airflow.sdk and
the stdlib): the scheduler imports it every time it parses a DAG file. cosmos, dbt and mlflow
are imported inside the functions that need them.

`python -m journeys.orchestration manifest` writes the dbt manifest the nightly DAG renders
from (`make airflow` and `make backfill` run it first).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import secrets
import sys
from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from airflow.sdk import Asset

from journeys.settings import DBT_PROJECT_DIR, Settings, get_settings

log = logging.getLogger(__name__)

NIGHTLY_DAG_ID = "customer_journeys_nightly"
TRAINING_DAG_ID = "customer_journeys_training"
WATCHDOG_DAG_ID = "customer_journeys_watchdog"
TAGS = ["customer-journeys"]

# DuckDB lets one process write the warehouse at a time: every task that opens it takes the one
# slot of this pool, across DAGs and runs (`make airflow` creates it; so must any deployment).
WAREHOUSE_POOL = "customer_journeys_warehouse"

# Downstream DAGs schedule on these exact URIs, e.g. `schedule=[Asset("customer_journeys://...")]`.
# (`_` is not allowed in a URI scheme, so Airflow keeps them as opaque ids and normalises nothing.)
# Each event's `extra` carries the run date it is about.
FEATURES = Asset("customer_journeys://marts/customer_features")  # built, tested and validated
MODELS = Asset("customer_journeys://ml/champion_models")  # a training run finished
SEGMENTS = Asset("customer_journeys://marts/customer_segments")  # published
ACTIVATION = Asset("customer_journeys://activation/exports")  # activation files written

# Production retry policy for every task: 2 retries with exponential back-off, waiting 2-4 then
# 4-8 minutes (Airflow spreads each wait over [d, 2d)), never more than 30; the failure alert
# fires once, after the last try.
RETRIES = 2
RETRY_DELAY = timedelta(minutes=2)
RETRY_BACKOFF = 2.0  # Airflow >= 3.2: the multiplier between successive waits
MAX_RETRY_DELAY = timedelta(minutes=30)


def default_args() -> dict[str, Any]:
    """Task defaults shared by every DAG (cosmos' dbt tasks included)."""
    from journeys.alerts import alert

    return {
        "owner": "customer-journeys",
        "retries": RETRIES,
        "retry_delay": RETRY_DELAY,
        "retry_exponential_backoff": RETRY_BACKOFF,
        "max_retry_delay": MAX_RETRY_DELAY,
        "on_failure_callback": alert,
    }


# ---------------------------------------------------------------------------------- run dates


def run_date(context: Mapping[str, Any]) -> date:
    """The delivery day a nightly run processes: the calendar day (UTC) of its logical date.

    The nightly schedule's data interval is one day, so the run for day D has logical date
    D 00:00 UTC and starts once D is over (D+1 00:00). Backfills and manual runs with a logical
    date behave the same. A manual run without one processes the last complete day before it
    was triggered.
    """
    logical = context.get("logical_date")
    if logical is not None:
        return date(logical.year, logical.month, logical.day)
    after = context["dag_run"].run_after
    return date(after.year, after.month, after.day) - timedelta(days=1)


def previous_run_finished(ti: Any) -> bool:
    """True when the run before this one (by logical date) has finished, or there is none.

    Chained from run to run, this makes runs process days in date order, one at a time, even
    when a backfill was created with more than one active run or overlaps the schedule.
    """
    previous = ti.get_previous_dagrun()
    if previous is None:
        return True
    state = str(getattr(previous.state, "value", previous.state))
    if state in ("success", "failed"):
        return True
    log.info("waiting for %s (%s) to finish first", previous.run_id, state)
    return False


def latest_event_run_date(events: Any) -> date | None:
    """The `run_date` in the newest event of an inlet accessor (None when there is none)."""
    latest = list(events.ascending(False).limit(1))
    if not latest:
        return None
    value = (latest[0].extra or {}).get("run_date")
    return date.fromisoformat(value) if value else None


# ------------------------------------------------------------------------------- dbt manifest


def _project_files() -> list[Path]:
    """Files whose change can change the dbt graph (SQL, YAML, seeds, the project file)."""
    files = [DBT_PROJECT_DIR / "dbt_project.yml"]
    for folder in ("models", "macros", "tests", "snapshots", "seeds"):
        root = DBT_PROJECT_DIR / folder
        if root.is_dir():
            files += [p for p in root.rglob("*") if p.suffix in (".sql", ".yml", ".yaml", ".csv")]
    return sorted(files)


def project_fingerprint() -> str:
    """SHA-256 of the dbt project's files (names and contents): what the manifest was built from.

    Contents, not modification times: a checkout or a touched file does not make the manifest
    stale, an edited model does. Cheap enough for every DAG parse (a few dozen small files).
    """
    digest = hashlib.sha256()
    for path in _project_files():
        digest.update(str(path.relative_to(DBT_PROJECT_DIR)).encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def _fingerprint_path(manifest: Path) -> Path:
    return manifest.with_name(f"{manifest.name}.sha256")


def manifest_problem(settings: Settings) -> str | None:
    """Why the nightly DAG cannot render dbt from the manifest (None when it can).

    A manifest built from other model files than the ones on disk may miss models or
    dependencies, so the DAG then runs dbt as one task (always correct) until the manifest is
    rebuilt (`python -m journeys.orchestration manifest`).
    """
    manifest = settings.dbt_manifest
    if not manifest.is_file():
        return f"no dbt manifest at {manifest}"
    fingerprint = _fingerprint_path(manifest)
    built_from = fingerprint.read_text().strip() if fingerprint.is_file() else None
    if built_from != project_fingerprint():
        return f"dbt manifest {manifest} was built from other model files than dbt_project/ has"
    return None


def build_manifest(settings: Settings | None = None) -> Path:
    """`dbt parse` the project and put its manifest where the DAGs read it, atomically.

    The fingerprint is taken before parsing and written after the manifest: a model edited
    meanwhile, or a reader between the two renames, sees a stale manifest, never a wrong one.
    """
    from journeys.transform import invoke

    settings = settings or get_settings()
    fingerprint = project_fingerprint()
    invoke(settings, ["parse"])
    target = settings.dbt_manifest
    target.parent.mkdir(parents=True, exist_ok=True)
    _replace(target, (settings.dbt_target_dir / "manifest.json").read_bytes())
    _replace(_fingerprint_path(target), fingerprint.encode() + b"\n")
    return target


def _replace(path: Path, content: bytes) -> None:
    """Write under a temporary name and rename: a parsing scheduler sees old or new, not half."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_bytes(content)
    os.replace(temporary, path)


# --------------------------------------------------------------------------------------- dbt


def dbt_run_context(context: Mapping[str, Any], operator: Any) -> None:
    """cosmos interceptor: the run's dbt vars and this environment's warehouse, at run time.

    Exactly what `journeys transform` passes to dbt (journeys.transform.dbt_vars and
    Settings.dbt_env), computed when the task runs, from the worker's environment.
    """
    from journeys.transform import QUIET_ENV, dbt_vars

    settings = get_settings()
    settings.warehouse.parent.mkdir(parents=True, exist_ok=True)
    operator.vars = dbt_vars(settings, run_date(context))
    operator.env = {**(operator.env or {}), **QUIET_ENV, **settings.dbt_env()}


def cosmos_args(settings: Settings, select: list[str]) -> dict[str, Any]:
    """Arguments of a cosmos `DbtTaskGroup` rendering the models `select` picks.

    One task per model, running `dbt build` for it (the model, then its data tests); a test that
    reads several models gets its own task after all of them. Rendered from the manifest
    (LoadMode.DBT_MANIFEST: no dbt at parse time). Each task invokes dbt through dbtRunner in
    the worker, in the warehouse pool, with the run's vars (`dbt_run_context`). One `dbt build`
    per model rather than a run and a test task each: half the dbt start-ups.
    """
    from cosmos import ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig
    from cosmos.constants import (
        ExecutionMode,
        InvocationMode,
        LoadMode,
        TestBehavior,
        TestIndirectSelection,
    )

    project = ProjectConfig(dbt_project_path=DBT_PROJECT_DIR, install_dbt_deps=False)
    # A plain local path (a type cosmos accepts): ProjectConfig(manifest_path=...) would wrap it
    # in an ObjectStoragePath, whose first read loads every Airflow plugin (~0.3 s per parse).
    project.manifest_path = settings.dbt_manifest
    return {
        "project_config": project,
        "profile_config": ProfileConfig(
            profile_name="customer_journeys",
            target_name="duckdb",
            profiles_yml_filepath=DBT_PROJECT_DIR / "profiles.yml",
        ),
        "execution_config": ExecutionConfig(
            execution_mode=ExecutionMode.LOCAL,
            invocation_mode=InvocationMode.DBT_RUNNER,
            # A model's task runs only the tests of that model; a test that reads several
            # models (relationships, ...) gets its own task after all of them.
            test_indirect_selection=TestIndirectSelection.CAUTIOUS,
        ),
        "render_config": RenderConfig(
            load_method=LoadMode.DBT_MANIFEST,
            select=select,
            test_behavior=TestBehavior.BUILD,
            should_detach_multiple_parents_tests=True,
            emit_datasets=False,  # the DAG emits its own assets for the published tables
        ),
        "operator_args": {
            "pool": WAREHOUSE_POOL,
            "interceptors": [dbt_run_context],
            "quiet": True,
        },
    }


def has_identity_step() -> bool:
    """Whether the pipeline resolves identities in Python between dbt's staging and intermediate.

    (journeys.transform.build does when journeys.identity exists; the DAG mirrors it.)
    """
    try:
        return importlib.util.find_spec("journeys.identity.resolve") is not None
    except ModuleNotFoundError:
        return False


def resolve_identities(run_date: date, settings: Settings | None = None) -> dict:
    """The identity step of `journeys transform`, on its own (between the two dbt groups)."""
    from journeys.identity.resolve import resolve_identities as resolve

    return resolve(settings or get_settings(), run_date)


# ------------------------------------------------------------------------------------- models


def missing_champions(settings: Settings | None = None) -> list[str]:
    """Models scoring needs that have no usable `champion`: none yet (a fresh install), or one
    trained on other features than the current ones (after a feature change).

    What `ml.registry.training_due` calls due, minus its cadence clause: retraining on a
    schedule is the training DAG's job; the nightly run only makes sure it can score.
    """
    import mlflow

    from ml import registry, tracking
    from ml.train import FEATURES_TAG

    tracking.configure(settings or get_settings())
    client = mlflow.MlflowClient()
    missing = []
    for name in (tracking.SEGMENTATION_MODEL, tracking.CHURN_MODEL, tracking.HIGH_VALUE_MODEL):
        version = registry.champion_version(client, name)
        if version is None or version.tags.get("features") != FEATURES_TAG:
            missing.append(name)
    return missing


def train(run_date: date, force: bool = False, settings: Settings | None = None) -> dict:
    """`journeys train` for the DAGs: the models' own cadence decides, unless `force`.

    Raises AirflowSkipException when nothing was due, so the task ends skipped and updates
    no asset: a "new models" event always means new models.
    """
    from airflow.sdk.exceptions import AirflowSkipException

    from journeys import pipeline

    if force:
        from ml.train import train_models

        summary = train_models(settings or get_settings(), run_date, force=True)
    else:
        summary = pipeline.train(run_date, settings)
    if summary.get("status") == "skipped":
        raise AirflowSkipException(f"no training due for {run_date}: {summary.get('reason')}")
    return summary


# -------------------------------------------------------------------------------- late runs


def watchdog_cron(settings: Settings) -> str:
    """When the watchdog looks: the nightly deadline, every day (UTC)."""
    return f"{settings.nightly_deadline.minute} {settings.nightly_deadline.hour} * * *"


def check_nightly_on_time(context: Mapping[str, Any], settings: Settings | None = None) -> dict:
    """Alert (kind "late_run") unless the nightly run for yesterday has succeeded by now.

    Airflow 3 has no SLAs. Its replacement, deadline alerts, only watch runs that exist (a run
    the scheduler never created, or a paused DAG, is never "late"). So a small DAG looks at the
    deadline instead: the run processing day D must have succeeded by the deadline on D+1.
    """
    from journeys.alerts import alert

    settings = settings or get_settings()
    ti = context["ti"]
    checked_at = context.get("logical_date") or context["dag_run"].run_after
    day = date(checked_at.year, checked_at.month, checked_at.day) - timedelta(days=1)
    if ti.get_previous_dagrun() is None:
        # The watchdog's first run comes right after installation, for a day Airflow did not
        # exist yet: nothing could have run then, so it establishes the baseline, no alert.
        return {"run_date": str(day), "state": None, "late": None, "note": "first check"}
    logical = datetime.combine(day, time.min, tzinfo=UTC)
    state = "not started"
    for candidate in ("success", "failed", "running", "queued"):
        count = ti.get_dr_count(dag_id=NIGHTLY_DAG_ID, logical_dates=[logical], states=[candidate])
        if count:
            state = candidate
            break
    deadline = datetime.combine(day + timedelta(days=1), settings.nightly_deadline, UTC)
    summary = {"run_date": str(day), "state": state, "late": state != "success"}
    if summary["late"]:
        path = alert(
            {
                "dag_id": NIGHTLY_DAG_ID,
                "run_date": day,
                "state": state,
                "deadline": deadline,
                "checked_by": getattr(context.get("dag_run"), "run_id", None),
            },
            kind="late_run",
            settings=settings,
        )
        summary["alert"] = str(path) if path else None
    return summary


# ------------------------------------------------------------------------------------ the CLI


def local_login(airflow_home: Path, url: str) -> str:
    """The local `admin` login of `make airflow` (SimpleAuthManager), created on first use."""
    passwords = airflow_home / "simple_auth_manager_passwords.json.generated"
    known = json.loads(passwords.read_text()) if passwords.is_file() else {}
    if not known.get("admin"):
        known["admin"] = secrets.token_urlsafe(12)
        airflow_home.mkdir(parents=True, exist_ok=True)
        _replace(passwords, json.dumps(known).encode())
    return f"Airflow UI and REST API: {url}  (login: admin / {known['admin']})"


def main(argv: list[str]) -> int:
    """`python -m journeys.orchestration manifest [--force] | login AIRFLOW_HOME URL`."""
    command = argv[0] if argv else "manifest"
    if command == "manifest":
        settings = get_settings()
        problem = manifest_problem(settings)
        if problem is None and "--force" not in argv:
            print(f"dbt manifest up to date: {settings.dbt_manifest}")
        else:
            print(f"dbt manifest written: {build_manifest(settings)}")
        return 0
    if command == "login" and len(argv) == 3:
        print(local_login(Path(argv[1]), argv[2]))
        return 0
    print("usage: python -m journeys.orchestration manifest [--force] | login AIRFLOW_HOME URL")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
