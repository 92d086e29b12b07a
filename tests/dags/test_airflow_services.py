"""The real Airflow services, driven from outside through the REST API.

Starts `airflow api-server`, `airflow scheduler` (LocalExecutor, parallelism 2) and
`airflow dag-processor` on 127.0.0.1 with a fresh SQLite metadata DB, then does what an external
client would: logs in, creates the warehouse pool, unpauses and triggers the nightly DAG for a
day of a tiny generated sample, waits (bounded) for the run to succeed, and checks the published
table and the asset event publication emitted; then creates a backfill over that day and the
next (rerunning the finished day) and checks it leaves the same warehouse as `journeys run`
for those days one by one. The services are always stopped, whatever happens.
Slow (minutes): `-m "not e2e"` skips it.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

# A tiny sample: a few days of deliveries for 200 people (plus their history in the first
# delivery), so the run measures Airflow, not the pipeline.
TINY_CUSTOMERS, TINY_DAYS, TINY_START, TINY_SEED = 200, 5, date(2025, 6, 1), 3
RUN_DATE = TINY_START + timedelta(days=TINY_DAYS - 1)
FIRST_DAY = RUN_DATE - timedelta(days=1)  # triggered alone, then backfilled with RUN_DATE
SERVICES = ("api-server", "scheduler", "dag-processor")
START_TIMEOUT_S = 120
# A bound, not an expectation: a failed task ends the wait at once (see `finished`), and a run
# takes ~2 min on an idle laptop, but each task's start-up is far slower on a busy shared box.
RUN_TIMEOUT_S = 1800
NIGHTLY_DAG_ID = "customer_journeys_nightly"
POOL = "customer_journeys_warehouse"
SEGMENTS_ASSET_URI = "customer_journeys://marts/customer_segments"


@dataclass
class LiveAirflow:
    url: str
    home: Path
    journeys_home: Path
    password: str
    logs: dict[str, Path] = field(default_factory=dict)

    def tail(self, lines: int = 40) -> str:
        out = []
        for name, path in self.logs.items():
            text = path.read_text(errors="replace").splitlines() if path.exists() else []
            out.append(f"--- {name} (last {lines} lines) ---\n" + "\n".join(text[-lines:]))
        return "\n".join(out)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _stop(processes: list[subprocess.Popen]) -> None:
    """SIGTERM each service's process group (its workers too), then SIGKILL what is left."""
    for proc in processes:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    for proc in processes:
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
    for proc in processes:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # stragglers in the group, if any
        except ProcessLookupError:
            pass
        proc.wait()


@pytest.fixture
def live_airflow(airflow_home, dbt_manifest, tmp_path) -> Iterator[LiveAirflow]:
    from journeys.sample import generate
    from journeys.settings import get_settings

    journeys_home = tmp_path / "journeys"
    sample = get_settings({"JOURNEYS_HOME": str(journeys_home)})
    generate(
        customers=TINY_CUSTOMERS,
        days=TINY_DAYS,
        start=TINY_START,
        seed=TINY_SEED,
        exports_dir=sample.exports,
        truth_dir=sample.truth,
        progress=False,
    )

    home = tmp_path / "airflow"
    home.mkdir()
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    password = secrets.token_urlsafe(12)
    passwords = home / "passwords.json"
    passwords.write_text(json.dumps({"admin": password}))
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AIRFLOW", "JOURNEYS_"))
    }
    env.update(airflow_home.env_for(home))
    env.update(
        {
            "JOURNEYS_HOME": str(journeys_home),
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "2",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{url}/execution/",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__API__BASE_URL": url,
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
            # Only the run this test triggers: no scheduled runs for "yesterday".
            "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        }
    )
    airflow = str(Path(sys.executable).with_name("airflow"))
    started = time.perf_counter()
    subprocess.run(
        [airflow, "db", "migrate"], env=env, check=True, capture_output=True, timeout=300
    )
    print(f"\n[airflow] metadata DB migrated in {time.perf_counter() - started:.1f}s")

    live = LiveAirflow(url=url, home=home, journeys_home=journeys_home, password=password)
    processes: list[subprocess.Popen] = []
    try:
        for service in SERVICES:
            log = home / f"{service}.log"
            live.logs[service] = log
            with log.open("wb") as out:
                processes.append(
                    subprocess.Popen(
                        [airflow, *service.split()],
                        env=env,
                        cwd=home,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,  # its own process group: stopped as a whole
                    )
                )
        yield live
    finally:
        stopping = time.perf_counter()
        _stop(processes)
        print(f"[airflow] services stopped in {time.perf_counter() - stopping:.1f}s")
        shutil.rmtree(home / "logs", ignore_errors=True)


def _wait_for(what: str, check, timeout: float, live: LiveAirflow, every: float = 1.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(every)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}\n{live.tail()}")


@pytest.fixture
def day_by_day_with_the_cli(live_airflow: LiveAirflow, tmp_path: Path) -> Iterator[tuple]:
    """The reference for the backfill: the same exports, FIRST_DAY then RUN_DATE run by
    `journeys run` in turn, in the background (it runs while Airflow mostly waits on its own
    scheduling). Yields the process and its home."""
    home = tmp_path / "cli"
    shutil.copytree(live_airflow.journeys_home / "exports", home / "exports")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "JOURNEYS_"))}
    runs = " && ".join(
        f"{sys.executable} -m journeys.cli run --date {day.isoformat()}"
        for day in (FIRST_DAY, RUN_DATE)
    )
    process = subprocess.Popen(
        ["sh", "-c", runs],
        env={**env, "JOURNEYS_HOME": str(home)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        yield process, home
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_nightly_dag_triggered_and_backfilled_through_the_rest_api(
    live_airflow: LiveAirflow, day_by_day_with_the_cli, warehouse_snapshot
) -> None:
    """A day triggered through the REST API, then a backfill over it and the next day
    (reprocessing the finished day): the same warehouse as `journeys run` day by day."""
    import httpx

    from journeys.settings import get_settings

    live = live_airflow
    reference, reference_home = day_by_day_with_the_cli
    started = time.perf_counter()
    client = httpx.Client(base_url=live.url, timeout=30)

    def healthy() -> bool:
        try:
            return client.get("/api/v2/monitor/health").status_code == 200
        except httpx.TransportError:
            return False

    _wait_for("the API server", healthy, START_TIMEOUT_S, live)
    login = client.post("/auth/token", json={"username": "admin", "password": live.password})
    assert login.status_code == 201, login.text
    client.headers["Authorization"] = f"Bearer {login.json()['access_token']}"

    dag = f"/api/v2/dags/{NIGHTLY_DAG_ID}"
    _wait_for("the DAG processor to parse the nightly DAG",
              lambda: client.get(dag).status_code == 200, START_TIMEOUT_S, live)  # fmt: skip
    print(f"[airflow] services up and DAG parsed in {time.perf_counter() - started:.1f}s")
    pool = client.post("/api/v2/pools", json={"name": POOL, "slots": 1})
    assert pool.status_code == 201, pool.text
    assert client.patch(dag, json={"is_paused": False}).status_code == 200

    def task_states(run_id: str) -> dict[str, str]:
        tasks = client.get(f"{dag}/dagRuns/{run_id}/taskInstances", params={"limit": 100})
        return {ti["task_id"]: ti["state"] for ti in tasks.json()["task_instances"]}

    def failed(run_id: str) -> bool:
        # Production retries wait minutes: a task that failed once already fails the test.
        return bool(
            set(task_states(run_id).values()) & {"failed", "up_for_retry", "upstream_failed"}
        )

    # 1. One day, triggered as an external client would.
    triggered = client.post(
        f"{dag}/dagRuns", json={"logical_date": f"{FIRST_DAY.isoformat()}T00:00:00Z"}
    )
    assert triggered.status_code == 200, triggered.text
    run_id = triggered.json()["dag_run_id"]
    run_started = time.perf_counter()

    def finished() -> str | None:
        state = client.get(f"{dag}/dagRuns/{run_id}").json()["state"]
        if state in ("success", "failed"):
            return state
        return "failed" if failed(run_id) else None

    state = _wait_for(f"run {run_id}", finished, RUN_TIMEOUT_S, live, every=2.0)
    tasks = client.get(f"{dag}/dagRuns/{run_id}/taskInstances", params={"limit": 100}).json()
    states = {ti["task_id"]: ti["state"] for ti in tasks["task_instances"]}
    print(
        f"[airflow] run {state} in {time.perf_counter() - run_started:.1f}s "
        f"({len(states)} tasks, {sum(t.startswith('dbt') for t in states)} of them dbt)"
    )
    timeline = sorted(
        (ti["start_date"] or "", ti["end_date"] or "", ti["duration"] or 0, ti["task_id"])
        for ti in tasks["task_instances"]
    )
    for start, end, duration, task_id in timeline:
        print(f"[airflow]   {start[11:23]} {end[11:23]} {duration:6.1f}s {task_id}")
    alerts = sorted((live.journeys_home / "alerts").glob("*.json"))
    assert state == "success", (
        f"{states}\n" + "\n".join(p.read_text() for p in alerts) + f"\n{live.tail()}"
    )

    events = client.get(
        "/api/v2/assets/events",
        params={"source_dag_id": NIGHTLY_DAG_ID, "source_run_id": run_id},
    ).json()["asset_events"]
    assert SEGMENTS_ASSET_URI in {event["uri"] for event in events}
    settings = get_settings({"JOURNEYS_HOME": str(live.journeys_home)})
    published = warehouse_snapshot(settings, read_only=True)["published"]
    assert published and max(row[1] for row in published) == FIRST_DAY

    # 2. A backfill over that day and the next, rerunning the finished day (what
    # `make backfill REPROCESS=completed` asks for), one run at a time.
    backfill_started = time.perf_counter()
    created = client.post(
        "/api/v2/backfills",
        json={
            "dag_id": NIGHTLY_DAG_ID,
            "from_date": f"{FIRST_DAY.isoformat()}T00:00:00Z",
            "to_date": f"{RUN_DATE.isoformat()}T00:00:00Z",
            "reprocess_behavior": "completed",
            "max_active_runs": 1,
        },
    )
    assert created.status_code == 200, created.text
    backfill = f"/api/v2/backfills/{created.json()['id']}"

    def backfill_done() -> list[dict] | None:
        runs = client.get(f"{dag}/dagRuns", params={"limit": 100}).json()["dag_runs"]
        if any(failed(run["dag_run_id"]) for run in runs if run["state"] == "running"):
            return runs
        if client.get(backfill).json()["completed_at"] is None:
            return None
        return runs

    runs = _wait_for("the backfill", backfill_done, 2 * RUN_TIMEOUT_S, live, every=2.0)
    by_day = {run["logical_date"][:10]: run for run in runs}
    print(f"[airflow] backfill of 2 days done in {time.perf_counter() - backfill_started:.1f}s")
    assert {day: run["state"] for day, run in by_day.items()} == {
        FIRST_DAY.isoformat(): "success",
        RUN_DATE.isoformat(): "success",
    }, {run["dag_run_id"]: task_states(run["dag_run_id"]) for run in runs}
    assert all(run["run_type"] == "backfill" for run in runs), runs  # the first day reran

    # 3. The same warehouse as `journeys run` for those days, one by one.
    output, _ = reference.communicate(timeout=RUN_TIMEOUT_S)
    assert reference.returncode == 0, output[-3000:]
    cli = get_settings({"JOURNEYS_HOME": str(reference_home)})
    backfilled = warehouse_snapshot(settings, read_only=True)
    assert max(row[1] for row in backfilled["published"]) == RUN_DATE
    assert backfilled == warehouse_snapshot(cli, read_only=True)
