"""Champion / challenger in the MLflow registry, and the warehouse record of every decision.

Each trained version gets the `challenger` alias. It takes the `champion` alias only when it beats
the current champion on the same holdout by the configured margin (or when there is no champion,
or the champion cannot be judged any more). Every decision, promoted or not, is a row of
ml.model_decisions with both figures, so "why is this model serving?" has an answer in SQL.
Scoring only ever loads `models:/<name>@champion`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date

import duckdb
import pandas as pd

from journeys.warehouse import table_exists
from ml import tracking

DECISIONS_DDL = """
create schema if not exists ml;
create table if not exists ml.model_decisions (
    decided_at timestamptz not null,
    run_date date not null,
    model_name varchar not null,
    challenger_version varchar not null,
    champion_version varchar,
    metric varchar not null,
    challenger_metric double,
    champion_metric double,
    margin double not null,
    promoted boolean not null,
    reason varchar not null
);
"""


@dataclass
class Decision:
    run_date: date
    model_name: str
    challenger_version: str
    champion_version: str | None  # the champion before the decision
    metric: str
    challenger_metric: float | None
    champion_metric: float | None
    margin: float
    promoted: bool
    reason: str


def decide(
    challenger: float | None, champion: float | None, margin: float, champion_error: str | None
) -> tuple[bool, str]:
    """Promote only a challenger that is better by `margin`, or one with nothing to beat."""
    if champion_error is not None:
        return True, f"champion cannot be judged on this holdout ({champion_error})"
    if champion is None:
        return True, "no champion yet"
    if challenger is None:
        return False, "challenger has no figure to compare"
    if challenger >= champion + margin:
        return True, f"challenger {challenger:.4f} >= champion {champion:.4f} + margin {margin}"
    return False, f"challenger {challenger:.4f} < champion {champion:.4f} + margin {margin}"


def champion_version(client, name: str):
    """The registry's champion version of `name`, or None."""
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(name, tracking.CHAMPION)
    except MlflowException:
        return None


def load_champion(client, name: str):
    """(version, model) of the champion, or (None, None) when there is none.

    A champion that exists but cannot be loaded (an older model format) is returned as
    (version, exception), so the caller can promote a challenger instead of crashing.
    """
    import mlflow

    version = champion_version(client, name)
    if version is None:
        return None, None
    try:
        return version, mlflow.sklearn.load_model(f"models:/{name}@{tracking.CHAMPION}")
    except Exception as e:  # noqa: BLE001 - any load failure means "cannot serve"
        return version, e


def apply(client, decision: Decision) -> None:
    """The new version is the challenger; a promoted one becomes the champion too."""
    client.set_registered_model_alias(
        decision.model_name, tracking.CHALLENGER, decision.challenger_version
    )
    if decision.promoted:
        client.set_registered_model_alias(
            decision.model_name, tracking.CHAMPION, decision.challenger_version
        )


def record(con: duckdb.DuckDBPyConnection, decisions: list[Decision]) -> None:
    if not decisions:
        return
    con.execute(DECISIONS_DDL)
    frame = pd.DataFrame([asdict(d) for d in decisions])
    frame.insert(0, "decided_at", pd.Timestamp.now(tz="UTC"))
    con.register("new_decisions", frame)
    try:
        con.execute("insert into ml.model_decisions by name select * from new_decisions")
    finally:
        con.unregister("new_decisions")


def last_trained(con: duckdb.DuckDBPyConnection) -> date | None:
    """The latest run date models were trained for (any decision is a training)."""
    if not table_exists(con, "ml", "model_decisions"):
        return None
    value = con.execute("select max(run_date) from ml.model_decisions").fetchall()[0][0]
    return value


def training_due(
    con: duckdb.DuckDBPyConnection,
    client,
    run_date: date,
    every_days: int,
    expected_tags: dict[str, str],
) -> tuple[bool, str]:
    """Whether tonight's run should train, and why (or why not).

    Due when a model has no champion, when a champion was built for other features (its
    `features` tag differs), or when the last training is `every_days` or more before the run
    date. A run date before the last training (a backfill) never retrains: the champion stays.
    """
    for name in (tracking.SEGMENTATION_MODEL, tracking.CHURN_MODEL, tracking.HIGH_VALUE_MODEL):
        version = champion_version(client, name)
        if version is None:
            return True, f"no champion for {name}"
        expected = expected_tags.get(name)
        if expected is not None and version.tags.get("features") != expected:
            return True, f"the champion of {name} was trained on other features"
    last = last_trained(con)
    if last is None:
        return True, "no training recorded"
    age = (run_date - last).days
    if age < 0:
        return False, f"models were last trained for a later date ({last}); backfills score only"
    if age >= every_days:
        return True, f"last trained {age} days ago (cadence: every {every_days} days)"
    return False, f"last trained {age} days ago, for {last} (cadence: every {every_days} days)"
