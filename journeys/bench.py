"""`make bench`: the nightly pipeline at scale, next to the alternatives (issue #6).

One run of `python -m journeys.bench --scale 1m` measures, on one generated history:

1. stages: every stage of a full nightly run from scratch (`journeys.pipeline.STAGES`, each in a
   fresh subprocess): wall time and peak memory (max RSS of the subprocess, from wait4).
2. transform_vs_alternatives: the dbt models (`dbt run` of COMPARED_MODELS) next to one
   hand-written DuckDB script (bench/hand_sql.sql) and a pandas implementation
   (bench/pandas_impl.py) of the same work over the same raw tables, with their row counts.
3. incremental: the transform after landing one more day next to a full refresh of it.
4. identity: identity-resolution throughput (records per minute) and its F1 (`evaluate`).
5. dag_parse: DagBag parse time per DAG file.
6. io_floor: DuckDB reading every export once and nothing else; the full run as a multiple.
Plus the performance targets of the feature (#9), model (#10), publication (#11) and Airflow
(#12) issues. Ratios compare timings from the same run.

The history (exports + ground truth) is generated once per scale, seed and generator version
into the bench cache (`JOURNEYS_BENCH_CACHE`, default `<JOURNEYS_HOME>/bench-cache`) and
reused; every run works in a fresh folder beside it. `--prelanded HOME` starts from a home whose
exports are already landed (read-only: only its warehouse file is copied).
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from importlib import metadata
from pathlib import Path
from typing import Any

from journeys.settings import REPO_ROOT, Settings, get_settings

BENCH_DIR = REPO_ROOT / "bench"
GIB = 1 << 30


@dataclass(frozen=True)
class Scale:
    customers: int
    days: int
    # Settings for this scale only: a short history needs a short churn horizon to train.
    env: dict[str, str] = field(default_factory=dict)


SCALES = {
    # The test's scale: every item runs, the figures mean little.
    "tiny": Scale(300, 150, {"JOURNEYS_CHURN_HORIZON_DAYS": "45"}),
    "small": Scale(3_000, 365),
    "100k": Scale(100_000, 365),
    "1m": Scale(1_000_000, 365),
}
START = date(2025, 1, 1)

# The dbt models bench/hand_sql.sql and bench/pandas_impl.py re-implement (same tables out).
COMPARED_MODELS = (
    "stg_crm__customers",
    "stg_shop__orders",
    "stg_shop__order_lines",
    "stg_pos__receipts",
    "stg_pos__receipt_lines",
    "stg_web__events",
    "stg_consent__events",
    "stg_catalog__products",
    "stg_fx__rates",
    "int_identifiers_linked",
    "int_orders_unified",
    "fct_orders",
    "quarantined_orders",
    "customer_identifiers",
    "dim_customers",
    "customer_features",
)
# dbt relation -> the same table in the hand-SQL and pandas outputs (schema-less names).
COMPARED_TABLES = {
    "staging.stg_crm__customers": "crm_customers",
    "staging.stg_shop__orders": "shop_orders",
    "staging.stg_shop__order_lines": "shop_order_lines",
    "staging.stg_pos__receipts": "pos_receipts",
    "staging.stg_pos__receipt_lines": "pos_receipt_lines",
    "staging.stg_web__events": "web_events",
    "staging.stg_consent__events": "consent_events",
    "staging.stg_catalog__products": "catalog_products",
    "staging.stg_fx__rates": "fx_rates",
    "intermediate.int_identifiers_linked": "identifiers_linked",
    "intermediate.int_orders_unified": "orders_unified",
    "marts.fct_orders": "fct_orders",
    "marts.quarantined_orders": "quarantined_orders",
    "marts.customer_identifiers": "customer_identifiers",
    "marts.dim_customers": "dim_customers",
    "marts.customer_features": "customer_features",
}
# Sums that must agree across the three implementations (same rows is not enough).
CHECKSUMS = {
    "fct_orders": "sum(amount)",
    "customer_features": "sum(monetary) + sum(frequency) + sum(coalesce(web_sessions_30d, 0))",
}
# The feature, lifecycle and rule segment models (#9), everything `make bench-features`
# builds: their dbt build time is reported.
FEATURE_MODEL_PREFIXES = (
    "int_web_cookie_days",
    "fct_customer_daily",
    "int_customer_features_aggregated",
    "customer_category_mix",
    "customer_features",
    "customer_lifecycle",
    "customer_rule_segments",
    "rule_segment_",
)
PUBLICATION_STAGES = ("publish", "activate", "export")
ITEMS = (
    "stages",
    "transform_vs_alternatives",
    "incremental",
    "identity",
    "dag_parse",
    "io_floor",
    "feature_models",
    "train_score",
    "publication",
    "airflow_vs_cli",
)


# --------------------------------------------------------------------------- measuring


@dataclass
class Run:
    """One measured subprocess."""

    label: str
    seconds: float
    peak_rss_bytes: int
    returncode: int
    output: dict | None
    stderr_tail: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def _quiet_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {
        **os.environ,
        "DO_NOT_TRACK": "true",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "False",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "GX_ANALYTICS_ENABLED": "False",
        "PYTHONUNBUFFERED": "1",
    }
    env.update(extra or {})
    return env


def measure(
    label: str,
    cmd: list[str],
    env: dict[str, str],
    log_dir: Path,
    memory_limit: int | None = None,
) -> Run:
    """Run `cmd` in a fresh process: wall time, peak RSS (wait4's ru_maxrss), last JSON line.

    With `memory_limit` (bytes), the process is stopped once its RSS passes it, before the
    kernel's OOM killer picks a victim on a shared machine; its stderr then says so.
    """
    log_dir.mkdir(parents=True, exist_ok=True)
    out_path, err_path = log_dir / f"{label}.out", log_dir / f"{label}.err"
    print(f"  … {label}", file=sys.stderr, flush=True)
    over_limit = threading.Event()
    with out_path.open("wb") as out, err_path.open("wb") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, cwd=REPO_ROOT)
        if memory_limit:
            threading.Thread(
                target=_watch_memory, args=(proc.pid, memory_limit, over_limit), daemon=True
            ).start()
        # wait4 gives this child's own rusage (with its waited-for descendants), not a running
        # maximum over every child the bench ever had, as RUSAGE_CHILDREN would.
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    output = None
    for line in reversed(out_path.read_text(errors="replace").splitlines()):
        if line.startswith("{"):
            try:
                output = json.loads(line)
                break
            except json.JSONDecodeError:
                continue
    tail = "\n".join(err_path.read_text(errors="replace").splitlines()[-15:])
    if over_limit.is_set():
        tail = f"stopped by the bench: RSS passed {memory_limit / GIB:.1f} GiB\n{tail}"
    run = Run(label, seconds, usage.ru_maxrss * 1024, proc.returncode, output, tail)
    state = "ok" if run.ok else f"FAILED (exit {run.returncode}, see {err_path})"
    print(
        f"    {label}: {seconds:.1f} s, {run.peak_rss_bytes / GIB:.2f} GiB, {state}",
        file=sys.stderr,
    )
    return run


def _watch_memory(pid: int, limit: int, over_limit: threading.Event) -> None:
    import psutil

    try:
        process = psutil.Process(pid)
        while process.is_running():
            if process.memory_info().rss > limit:
                over_limit.set()
                process.kill()
                return
            time.sleep(0.5)
    except psutil.Error:  # the process ended between two looks
        return


@dataclass
class Measurement:
    name: str
    value: float | int | str | None
    unit: str
    target: str | None = None
    passed: bool | None = None
    note: str | None = None


@dataclass
class Item:
    title: str
    status: str = "measured"  # measured | skipped | failed
    reason: str | None = None
    measurements: list[Measurement] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    def add(self, name, value, unit, target=None, passed=None, note=None) -> None:
        self.measurements.append(Measurement(name, value, unit, target, passed, note))

    def skip(self, reason: str) -> None:
        self.status, self.reason = "skipped", reason

    def fail(self, reason: str) -> None:
        self.status, self.reason = "failed", reason


def at_most(value: float | None, limit: float) -> bool | None:
    return None if value is None else value <= limit


def at_least(value: float | None, limit: float) -> bool | None:
    return None if value is None else value >= limit


def ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else round(a / b, 3)


# --------------------------------------------------------------------------- the history


def generator_version() -> str:
    """A digest of the sample generator's code: a changed generator never reuses old data."""
    digest = hashlib.sha256()
    for path in sorted((REPO_ROOT / "journeys" / "sample").glob("*.py")):
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:10]


def cached_history(cache: Path, scale_name: str, scale: Scale, seed: int) -> tuple[Path, float]:
    """Exports + truth for the scale: generated once (atomically), then reused."""
    key = cache / f"{scale_name}-c{scale.customers}-d{scale.days}-s{seed}-g{generator_version()}"
    if (key / ".complete").exists():
        return key, 0.0
    cache.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=f".{key.name}-", dir=cache))
    cmd = [
        sys.executable,
        "-m",
        "journeys.cli",
        "generate",
        "--customers",
        str(scale.customers),
        "--days",
        str(scale.days),
        "--start",
        START.isoformat(),
        "--seed",
        str(seed),
    ]
    run = measure("generate", cmd, _quiet_env({"JOURNEYS_HOME": str(partial)}), partial / "logs")
    if not run.ok:
        raise SystemExit(f"generating the history failed:\n{run.stderr_tail}")
    (partial / ".complete").write_text(json.dumps({"seconds": run.seconds}))
    shutil.rmtree(key, ignore_errors=True)
    partial.rename(key)
    return key, run.seconds


def unland_from(con, day: date) -> int:
    """Forget deliveries from `day` on in a copied warehouse, so the bench can land them anew."""
    from journeys.landing import refresh_raw_views

    con.execute(
        "delete from raw.quarantine where checksum in "
        "(select checksum from raw.load_manifest where delivery_date >= ?)",
        [day],
    )
    files = con.execute(
        "select count(*) from raw.load_manifest where delivery_date >= ?", [day]
    ).fetchall()[0][0]
    con.execute("delete from raw.load_manifest where delivery_date >= ?", [day])
    refresh_raw_views(con)
    return int(files)


# --------------------------------------------------------------------------- subprocess entries


def _stage_main(name: str, day: date, full_refresh: bool) -> dict:
    """One pipeline stage in this (fresh) process; its summary plus dbt's per-model times."""
    from journeys import pipeline

    settings = get_settings()
    stage = dict(pipeline.STAGES)[name]
    if full_refresh:  # the incremental models rebuilt from scratch (`transform --full-refresh`)
        stage = functools.partial(pipeline.transform, full_refresh=True)
    results = settings.dbt_target_dir / "run_results.json"
    results.unlink(missing_ok=True)  # only this process's dbt calls count
    summary = stage(day, settings)
    models = _dbt_model_results(settings)
    return {
        "summary": summary,
        "dbt_models": _dbt_model_seconds(models),
        "feature_span": _dbt_span(models, FEATURE_MODEL_PREFIXES),
    }


def _dbt_model_results(settings: Settings) -> dict[str, dict]:
    """This process's last dbt command's result per model, from dbt's run_results.json."""
    results = settings.dbt_target_dir / "run_results.json"
    if not results.exists():
        return {}
    return {
        r["unique_id"].split(".")[-1]: r
        for r in json.loads(results.read_text()).get("results", [])
        if r["unique_id"].startswith("model.")
    }


def _dbt_model_seconds(models: dict[str, dict]) -> dict[str, float]:
    return {name: round(r["execution_time"], 3) for name, r in models.items()}


def _dbt_span(models: dict[str, dict], prefixes: tuple[str, ...]) -> float | None:
    """Wall-clock seconds from the first of these models starting to the last one finishing.

    dbt runs two models at a time, each slowing the other: the sum of their times counts the
    overlap twice, the span does not (it includes the data tests run between them).
    """
    timings = [
        r["timing"] for name, r in models.items() if name.startswith(prefixes) and r["timing"]
    ]
    if not timings:
        return None
    start = min(datetime.fromisoformat(t[0]["started_at"].rstrip("Z")) for t in timings)
    end = max(datetime.fromisoformat(t[-1]["completed_at"].rstrip("Z")) for t in timings)
    return round((end - start).total_seconds(), 2)


def _dbt_models_main(day: date) -> dict:
    """The compared models, `dbt run` only (no data tests), as the yardstick runs them."""
    from journeys.transform import invoke

    settings = get_settings()
    nodes = invoke(settings, ["run", "--select", *COMPARED_MODELS, "--full-refresh"], day)
    return {"models": len(nodes), "node_seconds": {n["name"]: n["seconds"] for n in nodes}}


def _snapshot_dates(settings: Settings, day: date) -> list[str]:
    """The snapshots the nightly transform builds (training snapshots come with training)."""
    return [day.isoformat()]


def _hand_sql_main(day: date, out: Path) -> dict:
    import duckdb

    settings = get_settings()
    dates = ", ".join(f"date '{d}'" for d in _snapshot_dates(settings, day))
    script = (
        (BENCH_DIR / "hand_sql.sql")
        .read_text()
        .replace("{snapshot_dates}", f"[{dates}]")
        .replace("{reporting_currency}", settings.reporting_currency)
        .replace("{phone_country_code}", _phone_country_code())
    )
    out.unlink(missing_ok=True)
    with duckdb.connect(str(out)) as con:
        con.execute(f"attach '{settings.warehouse}' as wh (read_only)")
        con.execute(script)
        tables = con.execute(
            "select table_schema, table_name from information_schema.tables "
            "where table_schema like 'hand_%'"
        ).fetchall()
        return {
            name: con.execute(f"select count(*) from {schema}.{name}").fetchall()[0][0]
            for schema, name in tables
        }


def _phone_country_code() -> str:
    import yaml

    project = yaml.safe_load((REPO_ROOT / "dbt_project" / "dbt_project.yml").read_text())
    return str(project["vars"]["default_phone_country_code"])


def _io_floor_main(exports: Path) -> dict:
    """Read every export once with DuckDB (every column, a trivial aggregate) and nothing else."""
    import duckdb

    groups: dict[tuple[str, str], list[str]] = {}
    for path in sorted(p for p in exports.rglob("*") if p.is_file()):
        name = path.name
        kind = (
            "parquet"
            if name.endswith(".parquet")
            else "json"
            if name.endswith((".jsonl", ".jsonl.gz"))
            else "csv"
        )
        entity = name.split(".")[0].split("-")[0]
        groups.setdefault((f"{path.parent.parent.name}/{entity}", kind), []).append(str(path))
    readers = {
        "csv": "read_csv({files}, header = true, all_varchar = true, union_by_name = {union}, "
        "ignore_errors = true, strict_mode = false)",
        "json": "read_json({files}, format = 'newline_delimited', union_by_name = {union}, "
        "ignore_errors = true, maximum_object_size = 1048576)",
        "parquet": "read_parquet({files}, union_by_name = {union})",
    }
    rows, files, size = {}, 0, 0
    with duckdb.connect() as con:
        for (entity, kind), paths in groups.items():
            listed = "[" + ", ".join("'" + p.replace("'", "''") + "'" for p in paths) + "]"
            # max() over every column makes DuckDB decode every value; nothing else is done.
            # Matching columns by name sniffs every file (10x slower on many small CSVs): only
            # when the files of an entity disagree on their columns.
            try:
                relation = readers[kind].format(files=listed, union="false")
                n = con.execute(f"select count(*), max(columns(*)) from {relation}").fetchall()
            except duckdb.Error:
                relation = readers[kind].format(files=listed, union="true")
                n = con.execute(f"select count(*), max(columns(*)) from {relation}").fetchall()
            rows[entity] = rows.get(entity, 0) + n[0][0]
            files += len(paths)
            size += sum(os.path.getsize(p) for p in paths)
    return {"rows": rows, "files": files, "bytes": size}


def _dag_parse_main(dags: Path) -> dict:
    """DagBag per DAG file (after one warm-up parse) and for the whole folder."""
    from airflow.dag_processing.dagbag import DagBag

    with tempfile.TemporaryDirectory() as empty:
        DagBag(dag_folder=empty)  # warm-up: Airflow's own lazy imports are not a DAG's cost
    per_file = {}
    errors = {}
    for path in sorted(dags.glob("*.py")):
        started = time.perf_counter()
        bag = DagBag(dag_folder=str(path))
        per_file[path.name] = round(time.perf_counter() - started, 3)
        errors.update({Path(k).name: str(v)[:300] for k, v in bag.import_errors.items()})
    started = time.perf_counter()
    bag = DagBag(dag_folder=str(dags))
    folder = time.perf_counter() - started
    return {
        "per_file": per_file,
        "folder_seconds": round(folder, 3),
        "dags": len(bag.dags),
        "import_errors": errors,
    }


def _airflow_env(home: Path) -> dict[str, str]:
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW_CONFIG": str(home / "airflow.cfg"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(home / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
        "AIRFLOW__USAGE_DATA_COLLECTION__ENABLED": "False",
        "SCARF_ANALYTICS": "false",
    }


def _airflow_run_main(day: date) -> dict:
    """The nightly DAG for `day` through Airflow (`dag.test()`), timed without DB set-up."""
    from airflow.dag_processing.dagbag import DagBag
    from airflow.utils import db

    db.initdb()
    bag = DagBag(dag_folder=str(REPO_ROOT / "dags"))
    nightly = [d for d in bag.dags.values() if "nightly" in d.dag_id]
    if not nightly:
        raise SystemExit(f"no nightly DAG under dags/ ({sorted(bag.dags)})")
    dag = nightly[0]
    for task in dag.tasks:
        task.retries = 0  # a failure ends the bench run at once
    started = time.perf_counter()
    run = dag.test(logical_date=datetime.combine(day, datetime.min.time(), tzinfo=UTC))
    seconds = time.perf_counter() - started
    states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    if str(run.state) != "success":
        raise SystemExit(f"nightly DAG run {run.state}: {states}")
    return {"dag_id": dag.dag_id, "dag_test_seconds": round(seconds, 2), "tasks": states}


# --------------------------------------------------------------------------- the bench


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.scale = SCALES[args.scale]
        self.items = {name: Item(title) for name, title in ITEM_TITLES.items()}
        self.context: dict[str, Any] = {}
        self.stage_runs: dict[str, Run] = {}

    # ---- plumbing
    def py(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "journeys.bench", *args]

    def env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        return _quiet_env({**self.home_env, **(extra or {})})

    def run(
        self,
        label: str,
        cmd: list[str],
        extra_env: dict[str, str] | None = None,
        memory_limit: int | None = None,
    ) -> Run:
        return measure(label, cmd, self.env(extra_env), self.work / "logs", memory_limit)

    def wanted(self, item: str) -> bool:
        if item in self.args.skip:
            self.items[item].skip("skipped on request (--skip)")
            return False
        return True

    # ---- set-up
    def prepare(self) -> None:
        settings = get_settings()
        cache = settings.bench_cache
        self.context["cache"] = str(cache)
        if self.args.prelanded:
            source = Path(self.args.prelanded).resolve()
            if not (source / "warehouse.duckdb").exists():
                raise SystemExit(f"--prelanded {source}: no warehouse.duckdb (not landed?)")
            history, generated = source, None
            self.context["prelanded"] = str(source)
        else:
            history, generated = cached_history(cache, self.args.scale, self.scale, self.args.seed)
        self.context.update(history=str(history), generate_seconds=generated)
        days = sorted(
            p.name for p in (history / "exports").glob("*/*") if p.is_dir() and p.name[:2] == "20"
        )
        if not days:
            raise SystemExit(f"no deliveries under {history / 'exports'}")
        self.day = date.fromisoformat(days[-1])
        self.previous_day = self.day - timedelta(days=1)
        self.work = (
            Path(self.args.work_dir).resolve()
            if self.args.work_dir
            else cache / f"work-{history.name}"
        )
        shutil.rmtree(self.work, ignore_errors=True)
        (self.work / "home").mkdir(parents=True)
        self.home_env = {
            **self.scale.env,
            "JOURNEYS_HOME": str(self.work / "home"),
            "JOURNEYS_EXPORTS": str(history / "exports"),
            "JOURNEYS_TRUTH": str(history / "truth"),
        }
        if self.args.prelanded:
            import duckdb

            for name in ("warehouse.duckdb", "warehouse.duckdb.wal"):
                if (history / name).exists():  # a WAL left behind holds committed work too
                    shutil.copy2(history / name, self.work / "home" / name)
            with duckdb.connect(str(self.work / "home" / "warehouse.duckdb")) as con:
                self.context["unlanded_files"] = unland_from(con, self.day)
        self.settings = get_settings(self.home_env)
        self.context.update(
            run_date=self.day.isoformat(), previous_day=self.previous_day.isoformat()
        )

    # ---- 1. the nightly run from scratch (history up to the previous day)
    def nightly(self) -> None:
        item = self.items["stages"]
        from journeys.pipeline import STAGES

        for name, _ in STAGES:
            if name == "land" and self.args.prelanded:
                item.add("land", None, "s", note="pre-landed home: history landing not measured")
                continue
            run = self.run(f"stage-{name}", self.py("stage", name, self.previous_day.isoformat()))
            self.stage_runs[name] = run
            if not run.ok:
                item.fail(f"stage {name} failed: {run.stderr_tail[-600:]}")
                return
            item.add(
                name, round(run.seconds, 2), "s", note=f"peak {run.peak_rss_bytes / GIB:.2f} GiB"
            )
            item.add(f"{name} peak memory", round(run.peak_rss_bytes / GIB, 3), "GiB")
        total = sum(r.seconds for r in self.stage_runs.values())
        peak = max(r.peak_rss_bytes for r in self.stage_runs.values()) / GIB
        note = "without landing (pre-landed home)" if self.args.prelanded else None
        item.add("full run", round(total, 1), "s", "≤ 900 s (15 min)", at_most(total, 900), note)
        item.add("full run peak memory", round(peak, 3), "GiB", "≤ 6 GiB", at_most(peak, 6))
        item.details["run_date"] = self.previous_day.isoformat()
        item.details["summaries"] = {
            k: (r.output or {}).get("summary", {})
            for k, r in self.stage_runs.items()
            if k != "land"
        }
        land = self.stage_runs.get("land")
        if land and land.output:
            s = land.output["summary"]
            item.details["landing"] = {
                k: s.get(k)
                for k in ("files_loaded", "rows_loaded", "rows_quarantined", "files_rejected")
            }

    # ---- 3. one more day: incremental transform next to a full refresh
    def incremental(self) -> None:
        item = self.items["incremental"]
        day = self.day.isoformat()
        land = self.run("land-one-day", self.py("stage", "land", day))
        if not land.ok:
            item.fail(f"landing {day} failed: {land.stderr_tail[-600:]}")
            return
        inc = self.run("transform-incremental", self.py("stage", "transform", day))
        full = self.run(
            "transform-full-refresh", self.py("stage", "transform", day, "--full-refresh")
        )
        if not (inc.ok and full.ok):
            item.fail(
                "transform failed: " + (inc.stderr_tail if not inc.ok else full.stderr_tail)[-600:]
            )
            return
        self.context["transform_full"] = full
        share = ratio(inc.seconds, full.seconds)
        item.add("land one day", round(land.seconds, 2), "s")
        item.add("transform after one more day", round(inc.seconds, 2), "s")
        item.add("transform full refresh", round(full.seconds, 2), "s")
        item.add("incremental / full", share, "ratio", "≤ 0.15", at_most(share, 0.15))
        identity_inc = _identity_seconds(inc)
        identity_full = _identity_seconds(full)
        if identity_inc is not None and identity_full is not None:
            dbt_inc, dbt_full = inc.seconds - identity_inc, full.seconds - identity_full
            item.add(
                "dbt part incremental / full",
                ratio(dbt_inc, dbt_full),
                "ratio",
                note=f"without the identity step ({identity_inc:.1f} s / {identity_full:.1f} s)",
            )
        feature = self.items["feature_models"]
        f_inc = _feature_seconds(inc)
        f_full = _feature_seconds(full)
        if not f_full:
            feature.fail("no feature/lifecycle/segment model in dbt's run results")
            return
        f_inc_total, f_full_total = sum(f_inc.values()), sum(f_full.values())
        span_inc, span_full = _feature_span(inc), _feature_span(full)
        feature.add("models", ", ".join(sorted(f_full)), "")
        feature.add(
            "full refresh build (wall clock)",
            span_full,
            "s",
            "≤ 300 s",
            at_most(span_full, 300),
        )
        feature.add("one-day incremental build (wall clock)", span_inc, "s")
        share = ratio(span_inc, span_full)
        feature.add("incremental / full", share, "ratio", "≤ 0.15", at_most(share, 0.15))
        # dbt runs two models at a time: their summed times count the overlap twice.
        feature.add("sum of model times, full refresh", round(f_full_total, 2), "s")
        feature.add(
            "sum of model times, one day",
            round(f_inc_total, 2),
            "s",
            note=f"{ratio(f_inc_total, f_full_total)} of the full refresh's",
        )
        feature.details = {"full": f_full, "incremental": f_inc}

    # ---- 2. dbt vs hand SQL vs pandas
    def alternatives(self) -> None:
        import psutil

        item = self.items["transform_vs_alternatives"]
        day = self.day.isoformat()
        dbt = self.run("dbt-models", self.py("dbt-models", day))
        hand_db = self.work / "hand.duckdb"
        hand = self.run("hand-sql", self.py("hand-sql", day, str(hand_db)))
        pandas_db = self.work / "pandas.duckdb"
        snapshots = [a for d in _snapshot_dates(self.settings, self.day) for a in ("--snapshot", d)]
        pandas = self.run(
            "pandas",
            [
                sys.executable,
                str(BENCH_DIR / "pandas_impl.py"),
                str(self.settings.warehouse),
                str(pandas_db),
                *snapshots,
                "--currency",
                self.settings.reporting_currency,
                "--phone-country-code",
                _phone_country_code(),
            ],
            # pandas holds every table in memory (5.4 GiB at 100k): stop it before the machine
            # runs out rather than let the OOM killer choose.
            memory_limit=int(psutil.virtual_memory().available * 0.8),
        )
        if not dbt.ok:
            item.fail(f"dbt run failed: {dbt.stderr_tail[-600:]}")
            return
        item.add(
            "dbt run (compared models)",
            round(dbt.seconds, 2),
            "s",
            note=f"{len(COMPARED_MODELS)} models",
        )
        node_seconds = sum((dbt.output or {}).get("node_seconds", {}).values())
        item.add(
            "dbt model time inside it",
            round(node_seconds, 2),
            "s",
            note="sum of dbt's per-model timings: the rest is start-up, parsing and scheduling",
        )
        item.add("dbt peak memory", round(dbt.peak_rss_bytes / GIB, 3), "GiB")
        for name, run in (("hand-written DuckDB SQL", hand), ("pandas", pandas)):
            if run.ok:
                item.add(name, round(run.seconds, 2), "s")
                item.add(f"{name} peak memory", round(run.peak_rss_bytes / GIB, 3), "GiB")
            else:
                item.add(
                    name,
                    None,
                    "s",
                    note=f"failed (exit {run.returncode}): {run.stderr_tail[-300:]}",
                )
        if hand.ok:
            r = ratio(dbt.seconds, hand.seconds)
            item.add("dbt / hand SQL", r, "ratio", "≤ 1.5", at_most(r, 1.5))
        if pandas.ok:
            r = ratio(pandas.seconds, dbt.seconds)
            item.add("pandas / dbt", r, "ratio", "≥ 3 (dbt 3x faster)", at_least(r, 3))
        item.details["row_counts"] = self.compare_outputs(
            hand_db if hand.ok else None, pandas_db if pandas.ok else None
        )
        agree = all(v["match"] for v in item.details["row_counts"].values())
        item.add("row counts and checksums agree", "yes" if agree else "NO", "", "all equal", agree)

    def compare_outputs(self, hand_db: Path | None, pandas_db: Path | None) -> dict:
        import duckdb

        def figures(path: Path, qualified) -> dict:
            out = {}
            with duckdb.connect(str(path), read_only=True) as con:
                for dbt_name, short in COMPARED_TABLES.items():
                    table = qualified(dbt_name, short)
                    try:
                        n = con.execute(f"select count(*) from {table}").fetchall()[0][0]
                        check = CHECKSUMS.get(short)
                        s = (
                            con.execute(f"select {check} from {table}").fetchall()[0][0]
                            if check
                            else None
                        )
                    except duckdb.Error:
                        n, s = None, None
                    out[short] = (n, None if s is None else round(float(s), 2))
            return out

        def layer(dbt_name: str) -> str:
            return "staging" if dbt_name.startswith("staging.") else "marts"

        dbt = figures(self.settings.warehouse, lambda d, s: d)
        hand = figures(hand_db, lambda d, s: f"hand_{layer(d)}.{s}") if hand_db else {}
        pandas = figures(pandas_db, lambda d, s: f"pandas_{layer(d)}.{s}") if pandas_db else {}
        result = {}
        for short, (n, s) in dbt.items():
            row = {
                "dbt": n,
                "hand_sql": hand.get(short, (None,))[0],
                "pandas": pandas.get(short, (None,))[0],
            }
            sums = {
                "dbt": s,
                "hand_sql": hand.get(short, (None, None))[1],
                "pandas": pandas.get(short, (None, None))[1],
            }
            present = [v for v in row.values() if v is not None]
            same_rows = len(set(present)) == 1
            same_sums = True
            if short in CHECKSUMS:
                vals = [v for v in sums.values() if v is not None]
                same_sums = all(
                    abs(v - vals[0]) <= 1e-6 * max(1.0, abs(vals[0])) + 0.01 for v in vals
                )
                row["checksum"] = sums
            row["match"] = same_rows and same_sums
            result[short] = row
        return result

    # ---- 4. identity
    def identity(self) -> None:
        item = self.items["identity"]
        full: Run | None = self.context.get("transform_full")
        run = full or self.stage_runs.get("transform")
        if run is None or not run.output:
            item.fail("no transform run to read the identity step from")
            return
        ident = run.output["summary"].get("identity") or {}
        seconds = ident.get("seconds")
        crm = ident.get("crm_records")
        links = self._count("select count(*) from identity.record_links")
        per_min = ratio(crm * 60, seconds) if crm and seconds else None
        item.add("identity step", seconds, "s", "≤ 300 s (5 min)", at_most(seconds, 300))
        item.add("CRM records matched", crm, "records")
        item.add(
            "throughput (CRM records)",
            per_min and round(per_min),
            "records/min",
            "≥ 1,000,000",
            at_least(per_min, 1e6),
        )
        if links and seconds:
            item.add(
                "throughput (all source records linked)",
                round(links * 60 / seconds),
                "records/min",
                note=f"{links:,} record links",
            )
        evaluation = self.run(
            "evaluate", [sys.executable, "-m", "journeys.cli", "evaluate", "--json"]
        )
        if evaluation.ok and evaluation.output:
            figures = evaluation.output.get("identity", {})
            for key in ("precision", "recall", "f1", "over_merge"):
                if key in figures:
                    target, passed = (
                        ("≥ 0.99", at_least(figures[key], 0.99))
                        if key == "f1"
                        else ("≤ 0.02", at_most(figures[key], 0.02))
                        if key == "over_merge"
                        else (None, None)
                    )
                    item.add(f"identity {key}", round(figures[key], 4), "", target, passed)
            item.details["evaluation"] = evaluation.output
        else:
            item.add(
                "identity f1", None, "", note=f"evaluate failed: {evaluation.stderr_tail[-300:]}"
            )
        item.details["identity_step"] = ident
        first = self.stage_runs.get("transform")
        first_ident = (
            ((first.output or {}).get("summary", {}).get("identity") or {}) if first else {}
        )
        if first is not run and first_ident.get("seconds") is not None:
            trained = "trained its match model" if first_ident.get("match_model_trained") else ""
            item.add(
                "identity step in the first nightly run",
                first_ident["seconds"],
                "s",
                note=trained or None,
            )

    def _count(self, sql: str) -> int | None:
        import duckdb

        try:
            with duckdb.connect(str(self.settings.warehouse), read_only=True) as con:
                return int(con.execute(sql).fetchall()[0][0])
        except duckdb.Error:
            return None

    # ---- 5. DAG parse
    def dag_parse(self) -> None:
        item = self.items["dag_parse"]
        airflow_home = self.work / "airflow-parse"
        airflow_home.mkdir(parents=True, exist_ok=True)
        run = self.run("dag-parse", self.py("dag-parse"), _airflow_env(airflow_home))
        if not run.ok or not run.output:
            item.fail(f"DAG parse failed: {run.stderr_tail[-600:]}")
            return
        out = run.output
        for name, seconds in out["per_file"].items():
            item.add(name, seconds, "s", "≤ 0.5 s", at_most(seconds, 0.5))
        files = max(len(out["per_file"]), 1)
        item.add(
            "folder / files",
            round(out["folder_seconds"] / files, 3),
            "s/file",
            "≤ 0.5 s",
            at_most(out["folder_seconds"] / files, 0.5),
        )
        item.add("import errors", len(out["import_errors"]), "", "0", not out["import_errors"])
        item.details = out

    # ---- 6. I/O floor
    def io_floor(self) -> None:
        item = self.items["io_floor"]
        run = self.run("io-floor", self.py("io-floor", self.home_env["JOURNEYS_EXPORTS"]))
        if not run.ok or not run.output:
            item.fail(f"I/O floor failed: {run.stderr_tail[-600:]}")
            return
        out = run.output
        item.add(
            "read every export once",
            round(run.seconds, 2),
            "s",
            note=f"{out['files']:,} files, {out['bytes'] / (1 << 20):,.1f} MiB",
        )
        item.add("rows read", sum(out["rows"].values()), "rows")
        if self.args.prelanded:
            item.add(
                "full run / I/O floor",
                None,
                "x",
                note="pre-landed home: the full run's landing was not measured",
            )
        elif self.items["stages"].status == "measured":
            total = sum(r.seconds for r in self.stage_runs.values())
            multiple = ratio(total, run.seconds)
            item.add("full run / I/O floor", multiple, "x", "≤ 5", at_most(multiple, 5))
            if "land" in self.stage_runs:
                item.add(
                    "landing / I/O floor", ratio(self.stage_runs["land"].seconds, run.seconds), "x"
                )
        item.details = out

    # ---- #10 and #11 targets, read off the nightly stages
    def stage_targets(self) -> None:
        train_score = self.items["train_score"]
        runs = [self.stage_runs.get(s) for s in ("train", "score")]
        if all(runs):
            seconds = sum(r.seconds for r in runs)
            peak = max(r.peak_rss_bytes for r in runs) / GIB
            train_score.add(
                "train + score", round(seconds, 2), "s", "≤ 300 s", at_most(seconds, 300)
            )
            train_score.add(
                "train + score peak memory", round(peak, 3), "GiB", "≤ 6 GiB", at_most(peak, 6)
            )
        else:
            train_score.fail("train or score did not run (see stages)")
        publication = self.items["publication"]
        runs = [self.stage_runs[s] for s in PUBLICATION_STAGES if s in self.stage_runs]
        if runs:
            seconds = sum(r.seconds for r in runs)
            names = " + ".join(r.label.removeprefix("stage-") for r in runs)
            publication.add(names, round(seconds, 2), "s", "≤ 60 s", at_most(seconds, 60))
        else:
            publication.fail("no publication stage ran (see stages)")

    # ---- #12: Airflow-orchestrated next to the CLI
    def airflow_vs_cli(self) -> None:
        item = self.items["airflow_vs_cli"]
        if self.args.scale == "1m" and not self.args.airflow:
            item.skip(
                "its target is defined at 100k: run `make bench SCALE=100k` (or pass --airflow)"
            )
            return
        day = self.day.isoformat()
        cli = self.run("cli-run", [sys.executable, "-m", "journeys.cli", "run", "--date", day])
        airflow_home = self.work / "airflow-run"
        airflow_home.mkdir(parents=True, exist_ok=True)
        orchestrated = self.run(
            "airflow-run", self.py("airflow-run", day), _airflow_env(airflow_home)
        )
        if not cli.ok:
            item.fail(f"journeys run failed: {cli.stderr_tail[-600:]}")
            return
        if not orchestrated.ok or not orchestrated.output:
            item.fail(f"Airflow run failed: {orchestrated.stderr_tail[-600:]}")
            return
        dag_seconds = orchestrated.output["dag_test_seconds"]
        item.add("journeys run (CLI)", round(cli.seconds, 2), "s")
        item.add(
            "Airflow dag.test()",
            dag_seconds,
            "s",
            note=f"process incl. DB set-up {orchestrated.seconds:.1f} s",
        )
        r = ratio(dag_seconds, cli.seconds)
        item.add("Airflow / CLI", r, "ratio", "≤ 1.3 (at 100k)", at_most(r, 1.3))
        item.details = {"run_date": day, "same_state": "both re-run the nightly for the same day"}

    # ---- all of it
    def execute(self) -> dict:
        """Every item in order; results.json is rewritten after each, so a cut-off run leaves
        what it measured (`complete: false`)."""
        self.started = time.perf_counter()
        self.context["load_average_at_start"] = [round(x, 2) for x in os.getloadavg()]
        self.prepare()
        steps = [
            ("stages", self.nightly),
            ("incremental", self.incremental),
            ("transform_vs_alternatives", self.alternatives),
            ("identity", self.identity),
            ("train_score", self.stage_targets),  # also fills publication
            ("airflow_vs_cli", self.airflow_vs_cli),
            ("dag_parse", self.dag_parse),
            ("io_floor", self.io_floor),
        ]
        needs_nightly = {"incremental", "transform_vs_alternatives", "identity", "train_score"}
        needs_nightly |= {"airflow_vs_cli"}
        for name, step in steps:
            if not self.wanted(name):
                continue
            if name in needs_nightly and self.items["stages"].status != "measured":
                self.items[name].skip("needs the nightly run (item stages), which did not complete")
                continue
            step()
            self.save(complete=False)
        for name in ("publication", "feature_models"):  # filled by other steps
            item = self.items[name]
            if name in self.args.skip:
                item = Item(item.title)
                item.skip("skipped on request (--skip)")
                self.items[name] = item
            elif item.status == "measured" and not item.measurements:
                source = "stages" if name == "publication" else "incremental"
                item.skip(f"needs item {source}, which did not run")
        return self.save(complete=True)

    def results(self, complete: bool) -> dict:
        return {
            "complete": complete,
            "scale": {
                "name": self.args.scale,
                **asdict(self.scale),
                "seed": self.args.seed,
                "start": START.isoformat(),
            },
            "machine": machine_info(),
            "context": {k: v for k, v in self.context.items() if not isinstance(v, Run)},
            "bench_seconds": round(time.perf_counter() - self.started, 1),
            "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "items": {name: asdict(item) for name, item in self.items.items()},
        }

    def save(self, complete: bool) -> dict:
        results = self.results(complete)
        path: Path = self.args.results
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(results, indent=2, default=str) + "\n")
        tmp.replace(path)
        return results


ITEM_TITLES = {
    "stages": "1. Full nightly run from scratch, per stage (wall time, peak RSS)",
    "transform_vs_alternatives": "2. dbt models vs hand-written DuckDB SQL vs pandas (same work)",
    "incremental": "3. One more day: incremental transform vs full refresh",
    "identity": "4. Identity resolution throughput and quality",
    "dag_parse": "5. DAG file parse time (DagBag per file)",
    "io_floor": "6. I/O floor: DuckDB reading every export once",
    "feature_models": "#9 Feature, lifecycle and segment models (dbt build)",
    "train_score": "#10 Train + score",
    "publication": "#11 Publication and exports",
    "airflow_vs_cli": "#12 Airflow-orchestrated vs CLI nightly run",
}
assert tuple(ITEM_TITLES) == ITEMS


def _identity_seconds(run: Run) -> float | None:
    return ((run.output or {}).get("summary", {}).get("identity") or {}).get("seconds")


def _feature_span(run: Run) -> float | None:
    return (run.output or {}).get("feature_span")


def _feature_seconds(run: Run) -> dict[str, float]:
    models = (run.output or {}).get("dbt_models", {})
    return {k: v for k, v in models.items() if k.startswith(FEATURE_MODEL_PREFIXES)}


def machine_info() -> dict:
    import psutil

    model = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {}
    for package in (
        "duckdb",
        "dbt-core",
        "dbt-duckdb",
        "pandas",
        "numpy",
        "splink",
        "xgboost-cpu",
        "scikit-learn",
        "mlflow",
        "great-expectations",
        "apache-airflow",
    ):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            pass
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=REPO_ROOT
    ).stdout.strip()
    return {
        "cpu_model": model,
        "cores": os.cpu_count(),
        "ram_gib": round(psutil.virtual_memory().total / GIB, 1),
        # The machine may be shared: a high load average means noisy figures.
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        "os": platform.platform(),
        "python": platform.python_version(),
        "versions": versions,
        "git_commit": commit,
    }


# --------------------------------------------------------------------------- report


def print_report(results: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=None if sys.stdout.isatty() else 150)
    m, s = results["machine"], results["scale"]
    console.print(
        f"[bold]Customer Journeys bench[/] — scale {s['name']} "
        f"({s['customers']:,} customers × {s['days']} days), "
        f"{m['cores']} cores {m['cpu_model']}, {m['ram_gib']} GiB RAM, commit {m['git_commit']}"
    )
    table = Table("item", "measurement", "value", "target", "", show_lines=False)
    for item in results["items"].values():
        if item["status"] != "measured":
            table.add_row(
                item["title"], f"[yellow]{item['status']}[/]", "", "", item["reason"] or ""
            )
            continue
        for i, meas in enumerate(item["measurements"]):
            value = meas["value"]
            shown = (
                "–"
                if value is None
                else f"{value:,}"
                if isinstance(value, int)
                else f"{value:,.3f}".rstrip("0").rstrip(".")
                if isinstance(value, float)
                else str(value)
            )
            mark = {True: "[green]pass[/]", False: "[red]miss[/]", None: ""}[meas["passed"]]
            table.add_row(
                item["title"] if i == 0 else "",
                meas["name"],
                f"{shown} {meas['unit']}".strip(),
                meas["target"] or "",
                mark + (f" {meas['note']}" if meas["note"] else ""),
            )
        table.add_section()
    console.print(table)
    counts = results["items"]["transform_vs_alternatives"]["details"].get("row_counts")
    if counts:
        rows = Table(
            "table",
            "dbt",
            "hand SQL",
            "pandas",
            "same",
            title="Row counts (dbt vs the alternatives)",
        )
        for name, row in counts.items():
            rows.add_row(
                name,
                *(
                    f"{row[k]:,}" if row[k] is not None else "–"
                    for k in ("dbt", "hand_sql", "pandas")
                ),
                "yes" if row["match"] else "[red]NO[/]",
            )
        console.print(rows)
    console.print(f"Bench took {results['bench_seconds']:.0f} s.")


# --------------------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in SUBCOMMANDS:
        output = SUBCOMMANDS[argv[0]](argv[1:])
        print(json.dumps(output, default=str))
        return
    parser = argparse.ArgumentParser(
        prog="python -m journeys.bench", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--scale", choices=sorted(SCALES), default="1m")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--results", type=Path, default=BENCH_DIR / "results.json")
    parser.add_argument(
        "--work-dir", help="where the run's home goes (default: in the bench cache)"
    )
    parser.add_argument(
        "--prelanded",
        help="a JOURNEYS_HOME whose exports are already landed (e.g. /work/cache/home-1m): only "
        "its warehouse file is copied; its last delivery day is un-landed in the copy",
    )
    parser.add_argument(
        "--skip", action="append", default=[], choices=ITEMS, help="leave an item out"
    )
    parser.add_argument(
        "--airflow", action="store_true", help="run the Airflow comparison at 1m too"
    )
    args = parser.parse_args(argv)
    results = Bench(args).execute()
    print_report(results)
    print(f"Results: {args.results}")


SUBCOMMANDS = {
    "stage": lambda a: _stage_main(a[0], date.fromisoformat(a[1]), "--full-refresh" in a[2:]),
    "dbt-models": lambda a: _dbt_models_main(date.fromisoformat(a[0])),
    "hand-sql": lambda a: _hand_sql_main(date.fromisoformat(a[0]), Path(a[1])),
    "io-floor": lambda a: _io_floor_main(Path(a[0])),
    "dag-parse": lambda a: _dag_parse_main(REPO_ROOT / "dags"),
    "airflow-run": lambda a: _airflow_run_main(date.fromisoformat(a[0])),
}


if __name__ == "__main__":
    main()
