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

    def feature_snapshots(self, run_date: date) -> list[date]:
        """Snapshot dates the nightly run builds features for.

        The run date is scored; run_date - H trains (its label window ends at the run date);
        run_date - 2H is the out-of-time holdout's training snapshot.
        """
        horizon = timedelta(days=self.churn_horizon_days)
        return [run_date, run_date - horizon, run_date - 2 * horizon]

    def dbt_env(self) -> dict[str, str]:
        """Variables `dbt_project/profiles.yml` reads through env_var()."""
        return {
            "JOURNEYS_WAREHOUSE": str(self.warehouse),
            "JOURNEYS_LANDED": str(self.landed),
            "DBT_THREADS": str(self.dbt_threads),
        }


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
        bench_cache=path("JOURNEYS_BENCH_CACHE", home / "bench-cache"),
    )
