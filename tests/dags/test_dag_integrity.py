"""Every DAG under dags/ imports cleanly, follows the house rules, and parses cheaply.

Airflow is imported inside the tests (see conftest.py): never at module level here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DAGS_FOLDER = REPO_ROOT / "dags"
NIGHTLY, TRAINING, WATCHDOG = (
    "customer_journeys_nightly",
    "customer_journeys_training",
    "customer_journeys_watchdog",
)
POOL = "customer_journeys_warehouse"
FEATURES = "customer_journeys://marts/customer_features"
MODELS = "customer_journeys://ml/champion_models"
SEGMENTS = "customer_journeys://marts/customer_segments"
ACTIVATION = "customer_journeys://activation/exports"
# Tasks that never open the warehouse, so need no slot of its pool.
OUTSIDE_POOL = {"wait_for_previous_run", "check_nightly_on_time"}
# Never imported while a DAG file is parsed: the scheduler parses every file every few minutes.
HEAVY_MODULES = (
    "pandas", "numpy", "sklearn", "xgboost", "mlflow", "great_expectations", "duckdb",
    "dbt", "splink", "matplotlib", "pyarrow",
)  # fmt: skip
# The budget for one DAG file (the scheduler's parse loop), cosmos rendering included.
MAX_PARSE_SECONDS = 0.5


def dag_files() -> list[Path]:
    return sorted(p for p in DAGS_FOLDER.rglob("*.py") if "__pycache__" not in p.parts)


def _uris(assets) -> set[str]:
    return {asset.uri for asset in assets}


def test_dags_import_without_errors(dagbag) -> None:
    assert not dagbag.import_errors, "\n\n".join(
        f"{path}:\n{error}" for path, error in dagbag.import_errors.items()
    )
    assert set(dagbag.dags) == {NIGHTLY, TRAINING, WATCHDOG}


def test_every_dag_file_is_picked_up(dagbag) -> None:
    """A file without the words "airflow" and "dag" is skipped silently by the DAG processor."""
    loaded = {Path(dag.fileloc).resolve() for dag in dagbag.dags.values()}
    skipped = [p for p in dag_files() if p.name != "__init__.py" and p.resolve() not in loaded]
    assert not skipped, f"no DAG found in {skipped}"


def test_house_rules_for_every_dag(dagbag) -> None:
    for dag_id, dag in dagbag.dags.items():
        assert dag.doc_md, dag_id
        assert "customer-journeys" in dag.tags, dag_id
        assert dag.catchup is False, dag_id
        assert dag.max_active_runs == 1, dag_id


def test_every_task_retries_with_backoff_and_alerts(dagbag) -> None:
    from journeys.alerts import alert

    problems = []
    for dag_id, dag in dagbag.dags.items():
        for task in dag.tasks:
            callbacks = task.on_failure_callback
            callbacks = callbacks if isinstance(callbacks, list) else [callbacks]
            if (
                task.retries < 2
                or task.retry_delay < timedelta(minutes=1)
                # Airflow >= 3.2: a multiplier (legacy True means 2.0); 0 or 1 means no backoff.
                or float(task.retry_exponential_backoff) <= 1.0
                or alert not in callbacks
            ):
                problems.append(f"{dag_id}.{task.task_id}")
    assert not problems, f"tasks without retries, back-off or the failure alert: {problems}"


def test_every_warehouse_task_takes_the_pool(dagbag) -> None:
    """DuckDB has one writer at a time: warehouse tasks of every DAG share a one-slot pool."""
    outside = {
        f"{dag_id}.{task.task_id}": task.pool
        for dag_id, dag in dagbag.dags.items()
        for task in dag.tasks
        if (task.pool == POOL) == (task.task_id in OUTSIDE_POOL)
    }
    assert not outside, outside
    makefile = (REPO_ROOT / "Makefile").read_text()
    assert f"pools set {POOL} 1" in makefile, "make airflow must create the pool"


def test_every_dag_serializes(dagbag) -> None:
    """The scheduler and UI only ever see the serialized DAG: it must round-trip."""
    from airflow.serialization.serialized_objects import DagSerialization

    for dag_id, dag in dagbag.dags.items():
        restored = DagSerialization.deserialize_dag(DagSerialization.serialize_dag(dag))
        assert set(restored.task_dict) == set(dag.task_dict), dag_id


def test_nightly_dag_renders_dbt_model_by_model_between_the_stages(
    nightly_dag, dbt_manifest
) -> None:
    tasks = nightly_dag.task_dict
    models = {
        node["name"]: node["original_file_path"]
        for node in json.loads(dbt_manifest.read_text())["nodes"].values()
        if node["resource_type"] == "model" and node["package_name"] == "customer_journeys"
    }
    dbt = {t: task for t, task in tasks.items() if t.startswith("dbt_")}
    for name, path in models.items():
        group = "dbt_staging" if path.startswith("models/staging/") else "dbt_marts"
        task = dbt.get(f"{group}.{name}_model_build")
        assert task is not None, f"no task for model {name} in {group}"
        assert type(task).__module__.startswith("cosmos."), name
    assert "transform" not in tasks, "with a current manifest, dbt is not one opaque task"

    def upstream(task_id: str) -> set[str]:
        return tasks[task_id].upstream_task_ids

    def downstream(task_id: str) -> set[str]:
        return tasks[task_id].downstream_task_ids

    assert upstream("wait_for_previous_run") == set()
    assert upstream("land") == {"wait_for_previous_run"}
    staging = {t for t in dbt if t.startswith("dbt_staging.")}
    marts = {t for t in dbt if t.startswith("dbt_marts.")}
    assert {t for t in staging if upstream(t) == {"land"}}, "staging starts after landing"
    assert upstream("identity") <= staging and downstream("identity") <= marts
    assert all(upstream(t) <= marts | {"identity"} for t in marts)
    assert upstream("validate") and upstream("validate") <= marts
    for before, after in (
        ("validate", "train_first_champion"),
        ("train_first_champion", "score"),
        ("score", "publish"),
    ):
        assert upstream(after) == {before}, after
    assert downstream("publish") == set()
    assert tasks["score"].trigger_rule == "none_failed"  # runs when first training is skipped


def test_nightly_dag_processes_the_day_that_ended(nightly_dag) -> None:
    from airflow.sdk import CronDataIntervalTimetable

    timetable = nightly_dag.timetable
    assert isinstance(timetable, CronDataIntervalTimetable)
    assert (timetable.expression, str(timetable.timezone)) == ("0 0 * * *", "UTC")


def test_training_and_watchdog_schedules_come_from_settings(dagbag) -> None:
    from journeys.settings import get_settings

    settings = get_settings()
    assert dagbag.dags[TRAINING].timetable.expression == settings.training_schedule
    deadline = settings.nightly_deadline
    expected = f"{deadline.minute} {deadline.hour} * * *"
    assert dagbag.dags[WATCHDOG].timetable.expression == expected


def test_assets_connect_the_dags(dagbag) -> None:
    nightly, training = dagbag.dags[NIGHTLY].task_dict, dagbag.dags[TRAINING].task_dict
    outlets = {
        f"{dag_id}.{task.task_id}": _uris(task.outlets)
        for dag_id, dag in dagbag.dags.items()
        for task in dag.tasks
        if task.outlets
    }
    assert outlets == {
        f"{NIGHTLY}.validate": {FEATURES},
        f"{NIGHTLY}.train_first_champion": {MODELS},
        f"{NIGHTLY}.publish": {SEGMENTS, ACTIVATION},
        f"{TRAINING}.train": {MODELS},
    }
    assert _uris(training["train"].inlets) == {FEATURES}
    assert _uris(nightly["score"].inlets) == {MODELS}


def test_without_a_current_manifest_dbt_runs_as_one_task(
    airflow_home, dbt_manifest, monkeypatch, tmp_path
) -> None:
    """A missing (or outdated) manifest never breaks the DAG: it falls back to one dbt task."""
    from airflow.dag_processing.dagbag import DagBag

    for manifest in (tmp_path / "missing.json", tmp_path / "outdated.json"):
        if manifest.name == "outdated.json":
            manifest.write_bytes(dbt_manifest.read_bytes())  # no fingerprint: built from what?
        monkeypatch.setenv("JOURNEYS_DBT_MANIFEST", str(manifest))
        bag = DagBag(dag_folder=str(DAGS_FOLDER / "customer_journeys_nightly.py"))
        assert not bag.import_errors, bag.import_errors
        tasks = bag.dags[NIGHTLY].task_dict
        assert not [t for t in tasks if t.startswith("dbt")]
        assert tasks["transform"].upstream_task_ids == {"land"}
        assert tasks["validate"].upstream_task_ids == {"transform"}


PARSE_PROBE = r"""
import json, sys, time

heavy, files, out = set(sys.argv[1].split(",")), sys.argv[2:-1], sys.argv[-1]

def loaded():
    return {name.split(".")[0] for name in sys.modules} & heavy

started = time.perf_counter()
import airflow.sdk  # noqa: F401
from airflow.dag_processing.dagbag import DagBag
report = {"airflow_import_s": time.perf_counter() - started, "airflow_heavy": sorted(loaded())}
for path in files:
    before = loaded()
    started, cpu_started = time.perf_counter(), time.process_time()
    bag = DagBag(dag_folder=path)
    report[path] = {
        "parse_s": time.perf_counter() - started,
        "parse_cpu_s": time.process_time() - cpu_started,
        "new_heavy": sorted(loaded() - before),
        "dags": bag.dag_ids,
        "tasks": sum(len(dag.tasks) for dag in bag.dags.values()),
        "errors": list(bag.import_errors.values()),
    }
with open(out, "w") as f:
    json.dump(report, f)
"""


def test_dag_files_parse_fast_without_heavy_imports(airflow_home, dbt_manifest, tmp_path) -> None:
    """Parse each DAG file in a fresh interpreter, the way the DAG processor does.

    One interpreter for all files: a module is charged to the first file that imports it (the
    nightly DAG pays for cosmos and the manifest). The budget is on the CPU time a parse costs:
    wall time on a shared machine measures its load as much as the parse.
    """
    files = [str(p) for p in dag_files()]
    # The repo root, so the DAG files' own imports (journeys.*) resolve as on a worker.
    pythonpath = os.pathsep.join(filter(None, [str(DAGS_FOLDER.parent), os.getenv("PYTHONPATH")]))
    out = tmp_path / "parse.json"
    proc = subprocess.run(
        [sys.executable, "-c", PARSE_PROBE, ",".join(HEAVY_MODULES), *files, str(out)],
        env={**os.environ, **airflow_home.env, "PYTHONPATH": pythonpath},
        cwd=airflow_home.path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    report = json.loads(out.read_text())

    print(f"\n[airflow] import in a fresh interpreter: {report['airflow_import_s']:.2f}s")
    for path in files:
        entry = report[path]
        print(
            f"[airflow] parse {Path(path).name}: {entry['parse_cpu_s'] * 1000:.0f} ms CPU, "
            f"{entry['parse_s'] * 1000:.0f} ms wall ({entry['tasks']} tasks)"
        )
    for path in files:
        entry = report[path]
        assert not entry["errors"], f"{path}: {entry['errors']}"
        assert not entry["new_heavy"], f"{path} imports {entry['new_heavy']} at parse time"
        cpu = entry["parse_cpu_s"]
        assert cpu < MAX_PARSE_SECONDS, f"{path} took {cpu:.2f}s of CPU to parse"
