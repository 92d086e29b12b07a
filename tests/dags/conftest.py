"""Fixtures for the DAG tests: an isolated Airflow home, its metadata DB, the dbt manifest the
nightly DAG renders from, and the DagBag.

Airflow reads its configuration once, when `airflow` is first imported, and writes
`$AIRFLOW_HOME/airflow.cfg` (default `~/airflow`) at that moment. So the rule in this folder is:
**no test module imports airflow at module level** (nor `journeys.orchestration`, which imports
`airflow.sdk`); they import it inside tests and fixtures that depend on `airflow_home`, which
sets the environment first. The fixture refuses to run if something else imported airflow
before it (with a message saying what to fix).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
DAGS_FOLDER = REPO_ROOT / "dags"
NIGHTLY_DAG_ID = "customer_journeys_nightly"
TRAINING_DAG_ID = "customer_journeys_training"


@dataclass(frozen=True)
class AirflowHome:
    path: Path
    dags_folder: Path
    manifest: Path  # where the DAGs look for the dbt manifest (built by the dbt_manifest fixture)
    env: dict[str, str]  # what the fixture set; pass to subprocesses as `{**os.environ, **env}`

    def env_for(self, home: Path) -> dict[str, str]:
        """The same configuration for another Airflow home (e.g. for services started apart)."""
        return airflow_env(home, self.manifest)


@dataclass(frozen=True)
class NightlyHome:
    """What the end-to-end DAG tests need: a JOURNEYS_HOME with exports, and the date to run."""

    home: Path
    run_date: date


def airflow_env(home: Path, manifest: Path) -> dict[str, str]:
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW_CONFIG": str(home / "airflow.cfg"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(home / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        # unit_test_mode would swap in Airflow's own test config: example DAGs on, and cron
        # schedules with data intervals (a different logical date than production).
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
        "AIRFLOW__USAGE_DATA_COLLECTION__ENABLED": "False",
        # One key for every Airflow process of a test (the API server checks the tokens the
        # scheduler signs); otherwise each process would invent its own.
        "AIRFLOW__API_AUTH__JWT_SECRET": "customer-journeys-tests-only",
        "AIRFLOW__COSMOS__CACHE_DIR": str(home / "cosmos"),
        "JOURNEYS_DBT_MANIFEST": str(manifest),
        "DO_NOT_TRACK": "true",
        "SCARF_ANALYTICS": "false",
    }


@pytest.fixture(scope="session")
def airflow_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowHome]:
    """An Airflow home in a temp dir, configured through the environment before airflow loads.

    Cheap (no import, no DB): tests that only parse DAGs need nothing more.
    """
    home = tmp_path_factory.mktemp("airflow_home")
    manifest = home / "dbt" / "manifest.json"
    env = airflow_env(home, manifest)
    if "airflow.configuration" in sys.modules:
        loaded_home = getattr(sys.modules["airflow.configuration"], "AIRFLOW_HOME", "?")
        pytest.fail(
            f"airflow was imported before the airflow_home fixture (AIRFLOW_HOME={loaded_home}), "
            "so it runs with the wrong configuration. Import airflow inside tests or fixtures "
            "that use airflow_home, never at module level in a test file or conftest.",
            pytrace=False,
        )
    with pytest.MonkeyPatch.context() as mp:
        # Nothing from the developer's shell may leak in: no config, connections or variables.
        for key in list(os.environ):
            if key.startswith(("AIRFLOW__", "AIRFLOW_CONN_", "AIRFLOW_VAR_")):
                mp.delenv(key)
        for key, value in env.items():
            mp.setenv(key, value)
        yield AirflowHome(path=home, dags_folder=DAGS_FOLDER, manifest=manifest, env=env)


@pytest.fixture(scope="session")
def dbt_manifest(airflow_home: AirflowHome, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The dbt manifest, parsed once per session (what `make airflow` does before starting)."""
    from journeys.orchestration import build_manifest
    from journeys.settings import get_settings

    started = time.perf_counter()
    scratch = tmp_path_factory.mktemp("manifest_home")
    settings = get_settings({"JOURNEYS_HOME": str(scratch), **airflow_home.env})
    path = build_manifest(settings)
    print(f"\n[airflow] dbt manifest built in {time.perf_counter() - started:.2f}s")
    assert path == airflow_home.manifest
    return path


@pytest.fixture(scope="session")
def airflow_db(airflow_home: AirflowHome) -> AirflowHome:
    """The metadata DB (SQLite in the temp home), created once per session.

    In-process `initdb()` builds the schema from the ORM and stamps the migration head, which
    is what `airflow db migrate` does on an empty DB, without a second airflow start-up.
    """
    from airflow.utils import db

    started = time.perf_counter()
    db.initdb()
    print(f"\n[airflow] metadata DB initialised in {time.perf_counter() - started:.2f}s")
    return airflow_home


@pytest.fixture(scope="session")
def dagbag(airflow_home: AirflowHome, dbt_manifest: Path) -> Any:
    """Every DAG under dags/, parsed the way the DAG processor does (safe-mode heuristic on)."""
    from airflow.dag_processing.dagbag import DagBag

    # Example DAGs are switched off above (AIRFLOW__CORE__LOAD_EXAMPLES=False); Airflow 3.3
    # removed DagBag(include_examples=...), so it is not passed here.
    started = time.perf_counter()
    bag = DagBag(dag_folder=str(airflow_home.dags_folder))
    elapsed = time.perf_counter() - started
    print(f"\n[airflow] DagBag of {airflow_home.dags_folder} in {elapsed:.2f}s")
    return bag


@pytest.fixture
def nightly_dag(dagbag: Any) -> Any:
    """The nightly DAG as parsed from its file (so `dag.test()` finds it in the dags folder)."""
    assert not dagbag.import_errors, dagbag.import_errors
    dag = dagbag.dags.get(NIGHTLY_DAG_ID)
    assert dag is not None, f"{NIGHTLY_DAG_ID} not found in {sorted(dagbag.dags)}"
    return dag


@pytest.fixture
def nightly_home(
    request: pytest.FixtureRequest, airflow_home: AirflowHome, monkeypatch: pytest.MonkeyPatch
) -> Iterator[NightlyHome]:
    """The JOURNEYS_HOME and run date for an end-to-end run of the nightly DAG.

    Seam: it takes both from `sample_home` (tests/conftest.py: a fresh home holding the
    session's generated sample exports, `run_date` = last delivery day). Only JOURNEYS_HOME (and
    the session's dbt manifest) is set; other JOURNEYS_* overrides are removed so the DAG's
    tasks, which read the environment, see exactly that home.

    The whole environment is put back afterwards: `dag.test()` runs the tasks in this process,
    and cosmos copies each dbt task's env (this home's warehouse path) into os.environ for
    OpenLineage and never removes it, which would point later tests' subprocesses here.
    """
    sample = request.getfixturevalue("sample_home")
    home = Path(sample.home)
    before = dict(os.environ)
    for key in list(os.environ):
        if key.startswith("JOURNEYS_") and key != "JOURNEYS_DBT_MANIFEST":
            monkeypatch.delenv(key)
    monkeypatch.setenv("JOURNEYS_HOME", str(home))
    yield NightlyHome(home=home, run_date=sample.run_date)
    os.environ.clear()
    os.environ.update(before)


# What a day's run produces, compared between runs (load times, batch ids and paths differ).
WAREHOUSE_TABLES = (
    "marts.fct_orders",
    "marts.customer_features",
    "marts.dim_customers",
    "marts.customer_identifiers",
)


@pytest.fixture(scope="session")
def warehouse_snapshot() -> Callable[..., dict]:
    """Reads what a run leaves in a warehouse, to compare two runs: the main tables, the
    published segments and the load manifest."""

    def snapshot(settings: Any, read_only: bool = False) -> dict:
        from journeys.warehouse import connect

        # A process that ran dbt keeps the file open read-write: read it with the same mode.
        with connect(settings, read_only=read_only) as con:
            tables = {
                # landed_batch_id names the landing run that brought a row: it differs by design
                table: con.execute(
                    f"select columns(lambda c: c <> 'landed_batch_id') from {table} order by all"
                ).fetchall()
                for table in WAREHOUSE_TABLES
            }
            tables["published"] = con.execute(
                "select customer_id, snapshot_date, segment_id, segment_name, "
                "round(churn_probability, 6) from marts.customer_segments order by 1"
            ).fetchall()
            tables["manifest"] = con.execute(
                "select file, status, rows_received, rows_loaded, rows_quarantined "
                "from raw.load_manifest order by all"
            ).fetchall()
        return tables

    return snapshot


@pytest.fixture
def no_retries(nightly_dag: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Production retries (2, with back-off) would make dag.test() sit out the retry delays
    after a failure; in a test a failure should end the run at once."""
    for task in nightly_dag.tasks:
        monkeypatch.setattr(task, "retries", 0)
