"""`make bench` at the tiny scale: every item measured or skipped with a reason, a
results.json of the documented shape, and the dbt, hand-SQL and pandas outputs agreeing.
Figures are not asserted (the machine is shared); `make bench SCALE=small` is the quick look.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from journeys.bench import ITEMS

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory, process_env) -> dict:
    tmp = tmp_path_factory.mktemp("bench")
    env = process_env(JOURNEYS_HOME=str(tmp / "home"), JOURNEYS_BENCH_CACHE=str(tmp / "cache"))
    out = tmp / "results.json"
    # The Airflow comparison runs the nightly twice more: `make bench` covers it, not the suite.
    cmd = [sys.executable, "-m", "journeys.bench", "--scale", "tiny", "--results", str(out)]
    cmd += ["--skip", "airflow_vs_cli"]
    done = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Results:" in done.stdout  # the table was printed
    return json.loads(out.read_text())


def test_every_item_is_measured_or_skipped_with_a_reason(results: dict) -> None:
    assert list(results["items"]) == list(ITEMS)
    for name, item in results["items"].items():
        assert item["status"] in ("measured", "skipped"), (name, item["reason"])
        if item["status"] == "skipped":
            assert item["reason"], name
        else:
            assert item["measurements"], name
            for m in item["measurements"]:
                assert set(m) == {"name", "value", "unit", "target", "passed", "note"}
                assert m["passed"] is None or m["target"], (name, m)
    assert results["items"]["airflow_vs_cli"]["reason"] == "skipped on request (--skip)"


def test_results_name_the_machine_and_the_scale(results: dict) -> None:
    machine = results["machine"]
    assert machine["cores"] >= 1 and machine["ram_gib"] > 0 and machine["cpu_model"]
    assert {"duckdb", "dbt-core", "pandas"} <= set(machine["versions"])
    assert results["scale"]["name"] == "tiny"


def test_every_stage_of_the_nightly_run_has_time_and_memory(results: dict) -> None:
    from journeys.pipeline import STAGES

    measured = {m["name"]: m for m in results["items"]["stages"]["measurements"]}
    for stage, _ in STAGES:
        assert measured[stage]["unit"] == "s" and measured[stage]["value"] > 0
        assert measured[f"{stage} peak memory"]["value"] > 0


def test_dbt_hand_sql_and_pandas_build_the_same_tables(results: dict) -> None:
    counts = results["items"]["transform_vs_alternatives"]["details"]["row_counts"]
    assert counts["customer_features"]["dbt"] > 0
    mismatched = {name: row for name, row in counts.items() if not row["match"]}
    assert not mismatched
    for name, row in counts.items():
        assert row["hand_sql"] == row["dbt"] == row["pandas"], name
