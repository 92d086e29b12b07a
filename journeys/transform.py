"""Run the dbt project through dbt's programmatic runner (never a shell string)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date, timedelta

from journeys.errors import PipelineError
from journeys.settings import Settings

# Telemetry and update checks cost time and try the network; nothing here may reach it.
QUIET_ENV = {
    "DBT_SEND_ANONYMOUS_USAGE_STATS": "False",
    "DO_NOT_TRACK": "true",
    "DBT_VERSION_CHECK": "False",
}


class TransformError(PipelineError):
    """dbt failed: the message lists every failed model or test with dbt's own reason."""


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


def dbt_vars(settings: Settings, run_date: date, extra_snapshots: Sequence[date] = ()) -> dict:
    """dbt's variables for the run date: features are built for it and for `extra_snapshots`,
    and for its training snapshots where a feature table holds them already (a re-run of a
    night the models trained: re-running a day leaves the same tables)."""
    return {
        "snapshot_date": run_date.isoformat(),
        "extra_snapshot_dates": [d.isoformat() for d in extra_snapshots],
        "training_snapshot_dates": [d.isoformat() for d in settings.training_snapshots(run_date)],
        "reporting_currency": settings.reporting_currency,
        **feature_vars(settings, run_date),
    }


def feature_vars(settings: Settings, run_date: date) -> dict:
    """RFM weights, the VIP rule, lifecycle thresholds and the daily models' window (#9)."""
    recency, frequency, monetary = settings.rfm_weights
    return {
        "rfm_weights": {"recency": recency, "frequency": frequency, "monetary": monetary},
        "vip_min_rfm_score": settings.vip_min_rfm_score,
        "vip_min_orders": settings.vip_min_orders,
        "lifecycle": {
            "new_days": settings.lifecycle_new_days,
            "active_days": settings.lifecycle_active_days,
            "lapsed_days": settings.lifecycle_lapsed_days,
            "loyal_min_orders": settings.lifecycle_loyal_min_orders,
        },
        "history_start": (run_date - timedelta(days=settings.history_days - 1)).isoformat(),
    }


def invoke(
    settings: Settings,
    args: list[str],
    run_date: date | None = None,
    extra_snapshots: Sequence[date] = (),
) -> list[dict]:
    """Invoke one dbt command against this environment's warehouse; raise on any failure."""
    from dbt.cli.main import dbtRunner

    common = [
        "--quiet",  # our summary reports the run; dbt's full log goes to --log-path
        "--project-dir",
        str(settings.dbt_project_dir),
        "--profiles-dir",
        str(settings.dbt_project_dir),
        "--target-path",
        str(settings.dbt_target_dir),
        "--log-path",
        str(settings.dbt_log_dir),
    ]
    if run_date is not None:
        common += ["--vars", json.dumps(dbt_vars(settings, run_date, extra_snapshots))]
    settings.warehouse.parent.mkdir(parents=True, exist_ok=True)
    with _environment({**QUIET_ENV, **settings.dbt_env()}):
        try:
            result = dbtRunner().invoke([*args, *common])
        finally:
            release_warehouse()
    nodes = [
        {
            "name": r.node.name,
            "type": r.node.resource_type,
            "status": str(r.status),
            "seconds": round(r.execution_time, 2),
            "message": r.message,
        }
        for r in (getattr(result.result, "results", None) or [])
    ]
    failed = [n for n in nodes if n["status"] in ("error", "fail")]
    if not result.success:
        detail = "\n".join(f"  {n['type']} {n['name']}: {n['message']}" for n in failed)
        cause = f": {result.exception}" if result.exception else ""
        raise TransformError(f"dbt {args[0]} failed{cause}\n{detail}".rstrip())
    return nodes


def release_warehouse() -> None:
    """Close the DuckDB handle dbt-duckdb keeps open in this process after a dbt command.

    Otherwise this process holds the warehouse file until it exits, and another process (an
    analyst, `journeys evaluate`, the next stage run as a subprocess) cannot open it.
    """
    import gc

    from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    from dbt.adapters.factory import reset_adapters

    reset_adapters()
    DuckDBConnectionManager.close_all_connections()
    gc.collect()


def build(settings: Settings, run_date: date, full_refresh: bool = False) -> dict:
    """`dbt build` for the run date: staging, the identity step, then intermediate and marts.

    Models and their data tests run in DAG order; identity resolution (Splink, identifier
    rules, stable ids) is Python and sits between the layers. `full_refresh` rebuilds the
    incremental models from scratch (`dbt build --full-refresh`).
    """
    from journeys.identity.resolve import resolve_identities
    from journeys.segments import compile_segments

    # Bad rule segment definitions stop the build before any model runs.
    segments = compile_segments(settings)
    # dbt unit tests check logic, not data: `make test` runs them, the nightly build does not.
    skip_unit = ["--exclude-resource-type", "unit_test"]
    if full_refresh:
        skip_unit.append("--full-refresh")
    nodes = invoke(settings, ["build", "--select", "staging", *skip_unit], run_date)
    identity = resolve_identities(settings, run_date)
    nodes += invoke(settings, ["build", "--select", "intermediate", "marts", *skip_unit], run_date)
    models = [n for n in nodes if n["type"] == "model"]
    tests = [n for n in nodes if n["type"] == "test"]
    slowest = sorted(((n["name"], n["seconds"]) for n in models), key=lambda x: -x[1])
    return {
        "identity": identity,
        "models": len(models),
        "tests": len(tests),
        "tests_passed": sum(n["status"] == "pass" for n in tests),
        "warnings": [n["name"] for n in nodes if n["status"] == "warn"],
        "slowest_models": slowest[:5],
        "rule_segments": segments["segments"],
    }


# The models holding feature snapshots (incremental by snapshot date), and the one on top.
SNAPSHOT_MODELS = ("int_customer_features_aggregated", "customer_category_mix", "customer_features")


def build_training_snapshots(settings: Settings, run_date: date) -> dict:
    """Add the training snapshots to the feature tables, next to the run date's.

    The nightly transform builds the run date's snapshot only; the train step calls this on
    the nights it trains. A snapshot with no earlier one in a table is computed for everybody
    (a full refresh of that snapshot); the run date's is carried over from itself. The next
    nightly transform drops them again.
    """
    snapshots = settings.training_snapshots(run_date)
    args = ["build", "--select", *SNAPSHOT_MODELS, "--exclude-resource-type", "unit_test"]
    nodes = invoke(settings, args, run_date, extra_snapshots=snapshots)
    return {
        "snapshots": [d.isoformat() for d in snapshots],
        "seconds": round(sum(n["seconds"] for n in nodes if n["type"] == "model"), 2),
    }
