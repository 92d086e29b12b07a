"""Every DAG under dags/ imports cleanly, follows the house rules, and parses cheaply.

Airflow is imported inside the tests (see conftest.py): never at module level here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

DAGS_FOLDER = Path(__file__).resolve().parents[2] / "dags"
NIGHTLY_DAG_ID = "customer_journeys_nightly"
NIGHTLY_STAGES = ("land", "transform", "validate", "train", "score", "publish")
SEGMENTS_ASSET_URI = "customer_journeys://marts/customer_segments"
# Never imported while a DAG file is parsed: the scheduler parses every file every few minutes.
HEAVY_MODULES = (
    "pandas", "numpy", "sklearn", "xgboost", "mlflow", "great_expectations", "duckdb",
    "dbt", "splink", "matplotlib", "pyarrow",
)  # fmt: skip
# Generous on purpose: catches a pathological import, not a slow machine.
MAX_PARSE_SECONDS = 5.0


def dag_files() -> list[Path]:
    return sorted(p for p in DAGS_FOLDER.rglob("*.py") if "__pycache__" not in p.parts)


def test_dags_import_without_errors(dagbag) -> None:
    assert not dagbag.import_errors, "\n\n".join(
        f"{path}:\n{error}" for path, error in dagbag.import_errors.items()
    )
    assert NIGHTLY_DAG_ID in dagbag.dags


def test_every_dag_file_is_picked_up(dagbag) -> None:
    """A file without the words "airflow" and "dag" is skipped silently by the DAG processor."""
    loaded = {Path(dag.fileloc).resolve() for dag in dagbag.dags.values()}
    skipped = [p for p in dag_files() if p.name != "__init__.py" and p.resolve() not in loaded]
    assert not skipped, f"no DAG found in {skipped}"


def test_every_dag_has_tags(dagbag) -> None:
    untagged = sorted(dag_id for dag_id, dag in dagbag.dags.items() if not dag.tags)
    assert not untagged, f"DAGs without tags: {untagged}"


def test_no_dag_catches_up(dagbag) -> None:
    catching_up = sorted(dag_id for dag_id, dag in dagbag.dags.items() if dag.catchup)
    assert not catching_up, f"DAGs with catchup=True: {catching_up}"


def test_every_task_retries_at_least_twice(dagbag) -> None:
    too_few = sorted(
        f"{dag_id}.{task.task_id} (retries={task.retries})"
        for dag_id, dag in dagbag.dags.items()
        for task in dag.tasks
        if task.retries < 2
    )
    assert not too_few, f"tasks with fewer than 2 retries: {too_few}"


def test_every_dag_serializes(dagbag) -> None:
    """The scheduler and UI only ever see the serialized DAG: it must round-trip."""
    from airflow.serialization.serialized_objects import DagSerialization

    for dag_id, dag in dagbag.dags.items():
        restored = DagSerialization.deserialize_dag(DagSerialization.serialize_dag(dag))
        assert set(restored.task_dict) == set(dag.task_dict), dag_id


def test_nightly_dag_runs_the_six_stages_in_order(nightly_dag) -> None:
    from journeys.pipeline import STAGES

    assert tuple(name for name, _ in STAGES) == NIGHTLY_STAGES, "one task per pipeline stage"
    tasks = nightly_dag.task_dict
    assert tuple(sorted(tasks, key=NIGHTLY_STAGES.index)) == NIGHTLY_STAGES
    assert set(tasks) == set(NIGHTLY_STAGES)
    # A straight line: each stage waits for the previous one and nothing else.
    for upstream, downstream in zip(NIGHTLY_STAGES, NIGHTLY_STAGES[1:], strict=False):
        assert tasks[downstream].upstream_task_ids == {upstream}
        assert tasks[upstream].downstream_task_ids == {downstream}
    assert tasks[NIGHTLY_STAGES[0]].upstream_task_ids == set()
    assert tasks[NIGHTLY_STAGES[-1]].downstream_task_ids == set()


def test_nightly_dag_schedule_and_defaults(nightly_dag) -> None:
    dag = nightly_dag
    assert dag.doc_md and "nightly" in dag.doc_md.lower()
    assert dag.schedule == "@daily"
    assert dag.start_date == datetime(2025, 1, 1, tzinfo=UTC)
    assert dag.catchup is False
    assert dag.max_active_runs == 1
    assert set(dag.tags) == {"customer-journeys", "nightly"}
    for task in dag.tasks:
        assert task.retries >= 2
        assert task.retry_delay >= timedelta(minutes=1)
        # Airflow >= 3.3: a multiplier (legacy True means 2.0); 0 or 1 means no backoff.
        assert float(task.retry_exponential_backoff) not in (0.0, 1.0), task.task_id
        # Summaries stay one XCom each, whatever keys a stage returns.
        assert task.multiple_outputs is False, task.task_id


def test_nightly_dag_publishes_the_segments_asset(nightly_dag) -> None:
    from airflow.sdk import Asset

    outlets = {
        task_id: [o.uri for o in task.outlets if isinstance(o, Asset)]
        for task_id, task in nightly_dag.task_dict.items()
    }
    assert outlets.pop("publish") == [SEGMENTS_ASSET_URI]
    assert not any(outlets.values()), f"only publish should update the asset: {outlets}"


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
    started = time.perf_counter()
    bag = DagBag(dag_folder=path)
    report[path] = {
        "parse_s": time.perf_counter() - started,
        "new_heavy": sorted(loaded() - before),
        "dags": bag.dag_ids,
        "errors": list(bag.import_errors.values()),
    }
with open(out, "w") as f:
    json.dump(report, f)
"""


def test_dag_files_parse_fast_without_heavy_imports(airflow_home, tmp_path) -> None:
    """Parse each DAG file in a fresh interpreter, the way the DAG processor does.

    One interpreter for all files: a heavy module is charged to the first file that imports it.
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
        print(f"[airflow] parse {Path(path).name}: {report[path]['parse_s'] * 1000:.0f} ms")
    for path in files:
        entry = report[path]
        assert not entry["errors"], f"{path}: {entry['errors']}"
        assert not entry["new_heavy"], f"{path} imports {entry['new_heavy']} at parse time"
        assert entry["parse_s"] < MAX_PARSE_SECONDS, f"{path} took {entry['parse_s']:.1f}s"
