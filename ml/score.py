"""Scoring job: every customer of the run date, by the champion models only.

- segment: the segmentation champion (rule segments when there is none yet);
- churn probability (buyers only: a prospect cannot stop buying) with the top three reasons
  from the model's own per-row contributions; without a churn champion (too little history to
  train one), BG/NBD P(no purchase in H days) fitted on tonight's histories stands in, marked
  as such in churn_model_version, without reasons;
- high-value probability (everyone), when a high-value champion exists.
"""

from __future__ import annotations

from datetime import date

import duckdb
import numpy as np
import pandas as pd

from journeys.settings import Settings
from journeys.warehouse import connect
from ml import tracking
from ml.data import load_features, model_matrix

SCORES_DDL = """
create schema if not exists ml;
create table if not exists ml.customer_scores (
    customer_id varchar not null,
    snapshot_date date not null,
    segment_id integer not null,
    segment_name varchar not null,
    churn_probability double,
    segmentation_model_version varchar not null,
    churn_model_version varchar not null,
    scored_at timestamptz not null
);
"""
# Added after the first release: created on older warehouses by ensure_scores_table().
ADDED_COLUMNS = {
    "churn_reason_1": "varchar",
    "churn_reason_2": "varchar",
    "churn_reason_3": "varchar",
    "high_value_probability": "double",
    "high_value_model_version": "varchar",
}
BGNBD_FALLBACK = "bgnbd-fallback"
RULES = "rules"


def ensure_scores_table(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(SCORES_DDL)
    present = {
        r[0]
        for r in con.execute(
            "select column_name from information_schema.columns "
            "where table_schema = 'ml' and table_name = 'customer_scores'"
        ).fetchall()
    }
    for column, kind in ADDED_COLUMNS.items():
        if column not in present:
            con.execute(f"alter table ml.customer_scores add column {column} {kind}")


def _champion(client, name: str):
    from ml import registry

    version, model = registry.load_champion(client, name)
    if isinstance(model, Exception):
        return version, None
    return version, model


def score_customers(settings: Settings, run_date: date) -> dict:
    """Write `ml.customer_scores` for the run date (replacing any earlier scoring of that date)."""
    from threadpoolctl import threadpool_limits

    import ml.churn
    import ml.segmentation  # noqa: F401

    with threadpool_limits(limits=1):  # see ml.train.train_models
        return _score(settings, run_date)


def _score(settings: Settings, run_date: date) -> dict:
    import mlflow

    from ml import bgnbd
    from ml.data import history
    from ml.reasons import top_reasons
    from ml.segmentation import RULE_SEGMENTS, Segmenter

    tracking.configure(settings)
    client = mlflow.MlflowClient()
    seg_version, segmenter = _champion(client, tracking.SEGMENTATION_MODEL)
    churn_version, churn_model = _champion(client, tracking.CHURN_MODEL)
    hv_version, hv_model = _champion(client, tracking.HIGH_VALUE_MODEL)
    notes: list[str] = []

    with connect(settings) as con:
        features = load_features(con, run_date)
    x = model_matrix(features)
    buyers = x["frequency"].to_numpy() > 0

    if segmenter is None:
        segmenter = Segmenter()
        notes.append("no segmentation champion: rule segments")
    segment_ids = segmenter.predict(x)
    names = {**RULE_SEGMENTS, **segmenter.names}

    churn = np.full(len(x), np.nan)
    reasons = pd.DataFrame(
        {f"reason_{i}": pd.Series(pd.NA, index=x.index, dtype="string") for i in (1, 2, 3)}
    )
    if churn_model is not None and buyers.any():
        xb = x.loc[buyers]
        churn[buyers] = churn_model.predict_proba(xb)[:, 1]
        reasons.loc[buyers] = top_reasons(
            churn_model.contributions(xb), churn_model.augment(xb)
        ).to_numpy()
        churn_label = str(churn_version.version)
    else:
        churn_label = BGNBD_FALLBACK
        if buyers.any():
            freq, t_x, T = history(x)
            params = bgnbd.fit(freq, t_x, T)
            churn[buyers] = bgnbd.p_no_purchase(
                float(settings.churn_horizon_days), freq, t_x, T, params
            )[buyers]
        notes.append("no churn champion: BG/NBD probability of no purchase, without reasons")

    high_value = np.full(len(x), np.nan)
    if hv_model is not None and len(x):
        high_value = hv_model.predict_proba(x)[:, 1]
    elif hv_model is None:
        notes.append("no high-value champion: high_value_probability is empty")

    scores = pd.DataFrame(
        {
            "customer_id": features["customer_id"],
            "snapshot_date": run_date,
            "segment_id": segment_ids.astype("int32"),
            "segment_name": [names.get(int(s), f"Segment {s}") for s in segment_ids],
            "churn_probability": churn,
            "churn_reason_1": reasons["reason_1"].to_numpy(),
            "churn_reason_2": reasons["reason_2"].to_numpy(),
            "churn_reason_3": reasons["reason_3"].to_numpy(),
            "high_value_probability": high_value,
            "segmentation_model_version": str(seg_version.version) if seg_version else RULES,
            "churn_model_version": churn_label,
            "high_value_model_version": str(hv_version.version) if hv_version else None,
            "scored_at": pd.Timestamp.now(tz="UTC"),
        }
    )
    with connect(settings) as con:
        ensure_scores_table(con)
        con.execute("begin transaction")
        try:
            con.execute("delete from ml.customer_scores where snapshot_date = ?", [run_date])
            con.register("new_scores", scores)
            con.execute("insert into ml.customer_scores by name select * from new_scores")
            con.unregister("new_scores")
            con.execute("commit")
        except BaseException:
            con.execute("rollback")
            raise
    return {
        "customers": len(scores),
        "segmentation_model_version": str(seg_version.version) if seg_version else RULES,
        "churn_model_version": churn_label,
        "high_value_model_version": str(hv_version.version) if hv_version else None,
        "mean_churn_probability": _mean(scores["churn_probability"]),
        "mean_high_value_probability": _mean(scores["high_value_probability"]),
        "with_reasons": int(scores["churn_reason_1"].notna().sum()),
        "notes": notes,
    }


def _mean(values: pd.Series) -> float | None:
    m = values.mean()
    return None if pd.isna(m) else round(float(m), 4)
