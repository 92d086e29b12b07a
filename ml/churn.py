"""Churn: will a customer make no completed purchase in the next H days?

Temporal split, no leakage: the model trains on features as of cutoff C1 = run − 2H with labels
from (C1, C1 + H], and is judged on the later, unseen cutoff C2 = run − H with labels from
(C2, run]. Features at a cutoff only read events on or before it (marts.customer_features).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from xgboost import XGBClassifier

from journeys.errors import PipelineError

XGB_PARAMS = {
    "n_estimators": 300,
    "max_depth": 4,
    "learning_rate": 0.05,
    "subsample": 0.9,
    "colsample_bytree": 0.9,
    "tree_method": "hist",
    "n_jobs": 2,
    "random_state": 7,
    "eval_metric": "logloss",
}


class NotEnoughHistory(PipelineError):
    """Too few labelled customers, or only one class, to train or judge a churn model."""


@dataclass
class ChurnResult:
    model: XGBClassifier
    metrics: dict[str, float]
    train_rows: int
    holdout_rows: int


def _check(y: pd.Series, what: str) -> None:
    if len(y) < 50 or y.nunique() < 2:
        raise NotEnoughHistory(
            f"{what}: {len(y)} labelled customers with classes {sorted(y.unique().tolist())}"
        )


def fit_churn(
    x_train: pd.DataFrame, y_train: pd.Series, x_holdout: pd.DataFrame, y_holdout: pd.Series
) -> ChurnResult:
    """Fit XGBoost, score the holdout, and report it next to two simple baselines."""
    _check(y_train, "training cutoff")
    _check(y_holdout, "holdout cutoff")
    model = XGBClassifier(**XGB_PARAMS).fit(x_train, y_train)
    p = model.predict_proba(x_holdout)[:, 1]
    logistic = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    p_logistic = logistic.fit(np.log1p(x_train.clip(lower=0)), y_train).predict_proba(
        np.log1p(x_holdout.clip(lower=0))
    )[:, 1]
    # The classic rule: the longer since the last purchase, the likelier the customer is gone.
    p_recency = x_holdout["recency_days"].to_numpy()
    metrics = {
        "auc": float(roc_auc_score(y_holdout, p)),
        "pr_auc": float(average_precision_score(y_holdout, p)),
        "baseline_recency_auc": float(roc_auc_score(y_holdout, p_recency)),
        "baseline_logistic_auc": float(roc_auc_score(y_holdout, p_logistic)),
        "holdout_churn_rate": float(y_holdout.mean()),
    }
    return ChurnResult(model, metrics, len(x_train), len(x_holdout))
