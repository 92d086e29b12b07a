"""Scoring job: every customer of the run date scored by the champion models."""

from __future__ import annotations

import json
from datetime import date

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


def score_customers(settings: Settings, run_date: date) -> dict:
    """Write `ml.customer_scores` for the run date (replacing any earlier scoring of that date)."""
    import mlflow
    import numpy as np
    import pandas as pd

    from ml.segmentation import SEGMENT_FEATURES

    tracking.configure(settings)
    client = mlflow.MlflowClient()
    seg_version = client.get_model_version_by_alias(tracking.SEGMENTATION_MODEL, tracking.CHAMPION)
    churn_version = client.get_model_version_by_alias(tracking.CHURN_MODEL, tracking.CHAMPION)
    segmenter = mlflow.sklearn.load_model(f"models:/{tracking.SEGMENTATION_MODEL}@champion")
    churn_model = mlflow.xgboost.load_model(f"models:/{tracking.CHURN_MODEL}@champion")
    names = {int(k): v for k, v in json.loads(seg_version.tags["segment_names"]).items()}

    with connect(settings) as con:
        features = load_features(con, run_date)
        x = model_matrix(features)
        segment_ids = segmenter.predict(x[SEGMENT_FEATURES])
        churn = churn_model.predict_proba(x)[:, 1]
        scores = pd.DataFrame(
            {
                "customer_id": features["customer_id"],
                "snapshot_date": run_date,
                "segment_id": segment_ids.astype("int32"),
                "segment_name": [names[int(s)] for s in segment_ids],
                # Churn is only defined for customers who have bought at least once.
                "churn_probability": np.where(features["frequency"].to_numpy() > 0, churn, np.nan),
                "segmentation_model_version": seg_version.version,
                "churn_model_version": churn_version.version,
                "scored_at": pd.Timestamp.now(tz="UTC"),
            }
        )
        con.execute(SCORES_DDL)
        con.execute("begin transaction")
        con.execute("delete from ml.customer_scores where snapshot_date = ?", [run_date])
        con.register("new_scores", scores)
        con.execute("insert into ml.customer_scores by name select * from new_scores")
        con.unregister("new_scores")
        con.execute("commit")
    return {
        "customers": len(scores),
        "segmentation_model_version": seg_version.version,
        "churn_model_version": churn_version.version,
        "mean_churn_probability": round(float(scores["churn_probability"].mean()), 4),
    }
