"""The one settings module: every path, URI and tunable, from environment variables.

Importing this module does no work: nothing is created, connected or configured. Call
`get_settings()` when you need values; it reads the environment each time, so a test or a
second environment is one variable away (`JOURNEYS_HOME`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, time, timedelta
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DBT_PROJECT_DIR = REPO_ROOT / "dbt_project"


@dataclass(frozen=True)
class Settings:
    home: Path
    exports: Path
    warehouse: Path
    landed: Path
    truth: Path
    activation: Path
    mlflow_uri: str
    mlflow_artifacts: Path
    reporting_currency: str
    churn_horizon_days: int
    dbt_threads: int
    # Orchestration (Airflow): where the DAGs find the dbt manifest, where alerts go, when the
    # nightly run counts as late, and how often models are retrained.
    dbt_manifest: Path
    alerts: Path
    alert_webhook_url: str | None
    nightly_deadline: time
    training_schedule: str
    # Models (ml/): the nightly run retrains when the last training is this many days old (or
    # no champion exists); a challenger must beat the champion's holdout figure by the margin;
    # the high-value model predicts the top share of spenders over the next horizon.
    retrain_every_days: int = 7
    promotion_margin: float = 0.005
    high_value_share: float = 0.10
    # Identity resolution: memory DuckDB may use for Splink before spilling to disk.
    identity_memory_limit: str = "3GB"
    # RFM (#9): weights of the recency, frequency and monetary quintile scores in the weighted
    # score, and the VIP rule: weighted score at least vip_min_rfm_score and at least
    # vip_min_orders completed purchases.
    rfm_weights: tuple[float, float, float] = (0.4, 0.3, 0.3)
    vip_min_rfm_score: float = 4.5
    vip_min_orders: int = 2
    # Lifecycle stages (#9): a first purchase within new_days is "new"; a last purchase within
    # active_days is "active" ("loyal" with at least loyal_min_orders purchases); within
    # lapsed_days "at_risk"; older "lapsed". Never bought: "prospect".
    lifecycle_new_days: int = 30
    lifecycle_active_days: int = 90
    lifecycle_lapsed_days: int = 180
    lifecycle_loyal_min_orders: int = 3
    # Lifecycle history (#9): a full refresh rebuilds this many days; incremental runs add days.
    history_days: int = 30
    # Rule segment definitions (#9), compiled into dbt models under dbt_project/models/marts.
    segments_file: Path = DBT_PROJECT_DIR / "segments.yml"
    # Activation (journeys/activation.py): the channel the model segments are exported to (rule
    # segments name their own), and the share of each audience held out as a control group.
    activation_default_channel: str = "email"
    control_group_share: float = 0.10
    # Analysts (#11): the published read-only copy of the analyst-facing schemas, written in a
    # storage version DuckDB 1.x clients read (v1.0.0: every 1.x release); erasure requests
    # and their log, and the secret salt of the log's hashes (a file under erasure_dir unless
    # JOURNEYS_ERASURE_SALT is set).
    analyst_warehouse: Path = REPO_ROOT / "data" / "published" / "analytics.duckdb"
    analyst_schemas: tuple[str, ...] = ("marts", "ml", "identity")
    analyst_raw_tables: tuple[str, ...] = ("load_manifest", "quarantine")
    analyst_storage_version: str = "v1.0.0"
    erasure_dir: Path = REPO_ROOT / "data" / "erasure"
    erasure_salt: str | None = None
    # `make bench`: generated histories per scale, reused across runs (outside git).
    bench_cache: Path = REPO_ROOT / "data" / "bench-cache"

    @property
    def dbt_project_dir(self) -> Path:
        return DBT_PROJECT_DIR

    @property
    def dbt_target_dir(self) -> Path:
        # Per-home target dir: two environments never share compiled artefacts or logs.
        return self.home / "dbt" / "target"

    @property
    def dbt_log_dir(self) -> Path:
        return self.home / "dbt" / "logs"

    def training_snapshots(self, run_date: date) -> list[date]:
        """Feature snapshots the models train on, built by the train step when it trains.

        run_date - H trains (its label window ends at the run date); run_date - 2H is the
        out-of-time holdout's training snapshot. The nightly transform builds the run date's
        snapshot only.
        """
        horizon = timedelta(days=self.churn_horizon_days)
        return [run_date - horizon, run_date - 2 * horizon]

    def dbt_env(self) -> dict[str, str]:
        """Variables `dbt_project/profiles.yml` reads through env_var()."""
        return {
            "JOURNEYS_WAREHOUSE": str(self.warehouse),
            "JOURNEYS_LANDED": str(self.landed),
            "DBT_THREADS": str(self.dbt_threads),
        }


def _weights(text: str) -> tuple[float, float, float]:
    """`r,f,m` -> three non-negative weights that do not all vanish."""
    parts = [float(p) for p in text.split(",")]
    if len(parts) != 3 or min(parts) < 0 or sum(parts) == 0:
        raise ValueError(f"JOURNEYS_RFM_WEIGHTS={text!r}: expected three weights r,f,m >= 0")
    return (parts[0], parts[1], parts[2])


def get_settings(env: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if env is None else env
    home = Path(env.get("JOURNEYS_HOME", REPO_ROOT / "data")).resolve()

    def path(var: str, default: Path) -> Path:
        return Path(env[var]).resolve() if env.get(var) else default

    artifacts = path("JOURNEYS_MLFLOW_ARTIFACTS", home / "mlflow" / "artifacts")
    return Settings(
        home=home,
        exports=path("JOURNEYS_EXPORTS", home / "exports"),
        warehouse=path("JOURNEYS_WAREHOUSE", home / "warehouse.duckdb"),
        landed=path("JOURNEYS_LANDED", home / "landed"),
        truth=path("JOURNEYS_TRUTH", home / "truth"),
        activation=path("JOURNEYS_ACTIVATION", home / "activation"),
        mlflow_uri=env.get("JOURNEYS_MLFLOW_URI") or f"sqlite:///{home / 'mlflow' / 'mlflow.db'}",
        mlflow_artifacts=artifacts,
        reporting_currency=env.get("JOURNEYS_REPORTING_CURRENCY", "EUR").upper(),
        churn_horizon_days=int(env.get("JOURNEYS_CHURN_HORIZON_DAYS", "90")),
        dbt_threads=int(env.get("JOURNEYS_DBT_THREADS", "2")),
        dbt_manifest=path("JOURNEYS_DBT_MANIFEST", home / "dbt" / "manifest" / "manifest.json"),
        alerts=path("JOURNEYS_ALERTS", home / "alerts"),
        alert_webhook_url=env.get("JOURNEYS_ALERT_WEBHOOK_URL") or None,
        nightly_deadline=time.fromisoformat(env.get("JOURNEYS_NIGHTLY_DEADLINE", "06:00")),
        training_schedule=env.get("JOURNEYS_TRAINING_SCHEDULE", "0 3 * * 0"),
        retrain_every_days=int(env.get("JOURNEYS_RETRAIN_EVERY_DAYS", "7")),
        promotion_margin=float(env.get("JOURNEYS_PROMOTION_MARGIN", "0.005")),
        high_value_share=float(env.get("JOURNEYS_HIGH_VALUE_SHARE", "0.10")),
        identity_memory_limit=env.get("JOURNEYS_IDENTITY_MEMORY_LIMIT", "3GB"),
        rfm_weights=_weights(env.get("JOURNEYS_RFM_WEIGHTS", "0.4,0.3,0.3")),
        vip_min_rfm_score=float(env.get("JOURNEYS_VIP_MIN_RFM_SCORE", "4.5")),
        vip_min_orders=int(env.get("JOURNEYS_VIP_MIN_ORDERS", "2")),
        lifecycle_new_days=int(env.get("JOURNEYS_LIFECYCLE_NEW_DAYS", "30")),
        lifecycle_active_days=int(env.get("JOURNEYS_LIFECYCLE_ACTIVE_DAYS", "90")),
        lifecycle_lapsed_days=int(env.get("JOURNEYS_LIFECYCLE_LAPSED_DAYS", "180")),
        lifecycle_loyal_min_orders=int(env.get("JOURNEYS_LIFECYCLE_LOYAL_MIN_ORDERS", "3")),
        history_days=int(env.get("JOURNEYS_HISTORY_DAYS", "30")),
        segments_file=path("JOURNEYS_SEGMENTS_FILE", DBT_PROJECT_DIR / "segments.yml"),
        activation_default_channel=env.get("JOURNEYS_ACTIVATION_DEFAULT_CHANNEL", "email").lower(),
        control_group_share=float(env.get("JOURNEYS_CONTROL_GROUP_SHARE", "0.10")),
        analyst_warehouse=path(
            "JOURNEYS_ANALYST_WAREHOUSE", home / "published" / "analytics.duckdb"
        ),
        analyst_schemas=tuple(
            s.strip()
            for s in env.get("JOURNEYS_ANALYST_SCHEMAS", "marts,ml,identity").split(",")
            if s.strip()
        ),
        analyst_storage_version=env.get("JOURNEYS_ANALYST_STORAGE_VERSION", "v1.0.0"),
        erasure_dir=path("JOURNEYS_ERASURE_DIR", home / "erasure"),
        erasure_salt=env.get("JOURNEYS_ERASURE_SALT") or None,
        bench_cache=path("JOURNEYS_BENCH_CACHE", home / "bench-cache"),
    )
