"""Degrades gracefully: tiny or uniform populations, orders-only companies, no champion yet."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd

from journeys.warehouse import connect
from ml.data import FEATURES, labelled, load_features, model_matrix
from ml.segmentation import FIRST_CLUSTER_ID, fit_segments

WEB_AND_EMAIL = [
    c
    for c in FEATURES
    if any(w in c for w in ("web", "browse", "email", "product_views", "cart_adds"))
]


def _orders_only(features: pd.DataFrame) -> pd.DataFrame:
    """What customer_features holds for a company without web, CRM or consent exports."""
    out = features.copy()
    for c in WEB_AND_EMAIL:
        out[c] = np.nan if c.startswith("days_since") else 0
    return out


def test_too_few_customers_get_rule_segments_and_a_reason(nightly_run) -> None:
    home, _ = nightly_run
    with connect(home.settings) as con:
        x = model_matrix(load_features(con, home.run_date)).head(40)
    result = fit_segments(x)
    assert result.model.algorithm == "rules"
    assert "too few" in result.model.message
    assert (result.model.predict(x) < FIRST_CLUSTER_ID).all()


def test_uniform_population_gets_rule_segments_and_a_reason(nightly_run) -> None:
    home, _ = nightly_run
    with connect(home.settings) as con:
        x = model_matrix(load_features(con, home.run_date))
    same = pd.concat([x[x["frequency"] > 0].head(1)] * 500, ignore_index=True)
    result = fit_segments(same)
    assert result.model.algorithm == "rules"
    assert "uniform" in result.model.message


def test_orders_only_company_still_gets_segments_and_scores(nightly_run) -> None:
    from ml.churn import fit_outcome

    home, _ = nightly_run
    horizon = home.settings.churn_horizon_days
    with connect(home.settings) as con:
        now = _orders_only(load_features(con, home.run_date))
        at_train = labelled(con, home.run_date - timedelta(days=2 * horizon), horizon, 0.1)
        at_holdout = labelled(con, home.run_date - timedelta(days=horizon), horizon, 0.1)
    segments = fit_segments(model_matrix(now))
    assert len(segments.sizes) >= 3
    train = _orders_only(at_train[at_train["frequency"] > 0]).reset_index(drop=True)
    holdout = _orders_only(at_holdout[at_holdout["frequency"] > 0]).reset_index(drop=True)
    result = fit_outcome(
        "churned",
        train,
        model_matrix(train),
        holdout,
        model_matrix(holdout),
        model_matrix(_orders_only(at_train)),
        horizon,
    )
    # Purchases alone carry less signal; the model still ranks churners well above chance.
    assert result.metrics["auc"] > 0.7
    assert np.isfinite(result.holdout_scores["model"]).all()


def test_scoring_without_champions_falls_back_to_rules_and_bgnbd(warehouse_copy) -> None:
    from ml.score import BGNBD_FALLBACK, RULES, score_customers

    settings, run_date = warehouse_copy  # a warehouse, but an empty MLflow registry
    summary = score_customers(settings, run_date)
    assert summary["segmentation_model_version"] == RULES
    assert summary["churn_model_version"] == BGNBD_FALLBACK
    assert summary["notes"]
    with connect(settings) as con:
        scores = con.execute(
            "select segment_id, churn_probability from ml.customer_scores where snapshot_date = ?",
            [run_date],
        ).df()
    assert len(scores) == summary["customers"] > 0
    assert scores["churn_probability"].dropna().between(0, 1).all()
    assert scores["segment_id"].lt(FIRST_CLUSTER_ID).all()
