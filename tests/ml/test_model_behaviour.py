"""The models behave: better than every baseline out of time, sensible on clear-cut profiles,
blind to row order, explained per customer, and stable in their segment ids."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from journeys.warehouse import connect
from ml import tracking
from ml.data import FEATURES, labelled, load_features, model_matrix


def _champion(settings, name):
    import mlflow

    tracking.configure(settings)
    return mlflow.sklearn.load_model(f"models:/{name}@{tracking.CHAMPION}")


@pytest.fixture(scope="module")
def features_now(nightly_run):
    home, _ = nightly_run
    with connect(home.settings) as con:
        return load_features(con, home.run_date)


@pytest.mark.parametrize("model", ["churn", "high_value"])
def test_model_beats_every_baseline_on_the_out_of_time_holdout(nightly_run, model) -> None:
    _, results = nightly_run
    figures = results["train"][model]
    baselines = {
        k: v
        for k, v in figures.items()
        if k.startswith("baseline_") and k.endswith("_auc") and not k.endswith("_pr_auc")
    }
    assert len(baselines) == 3, baselines  # logistic, a rule and a BG/NBD score
    assert all(figures["auc"] > v for v in baselines.values()), figures
    assert figures["beats_every_baseline"] is True
    # Calibrated: the mean predicted probability is close to the holdout's observed rate.
    assert 0.0 < figures["brier"] < 0.25


def _profile(**values) -> pd.DataFrame:
    row = dict.fromkeys(FEATURES, 0.0) | values
    return pd.DataFrame([row])


def test_churner_like_profile_scores_above_loyal_one(nightly_run) -> None:
    home, _ = nightly_run
    model = _champion(home.settings, tracking.CHURN_MODEL)
    loyal = _profile(
        recency_days=12,
        frequency=14,
        monetary=2100,
        tenure_days=700,
        avg_order_value=150,
        frequency_90d=3,
        monetary_90d=450,
        online_share=0.5,
        web_sessions_30d=3,
        product_views_30d=6,
        email_opens_90d=6,
        days_since_last_web_event=2,
        days_since_first_purchase=690,
        avg_days_between_purchases=50,
        frequency_365d=7,
        monetary_365d=1050,
        avg_basket_lines=2.8,
        discount_share=0.05,
        distinct_categories=6,
        browse_sessions_90d=6,
        browse_sessions_365d=20,
        email_opens_30d=2,
        email_opens_365d=22,
        days_since_last_browse=3,
        days_since_last_email_open=4,
    )
    churner = _profile(
        recency_days=240,
        frequency=2,
        monetary=160,
        tenure_days=600,
        avg_order_value=80,
        online_share=0.5,
        days_since_last_web_event=200,
        days_since_first_purchase=400,
        avg_days_between_purchases=160,
        frequency_365d=1,
        monetary_365d=80,
        avg_basket_lines=1.5,
        distinct_categories=2,
        browse_sessions_365d=2,
        email_opens_365d=3,
        days_since_last_browse=210,
        days_since_last_email_open=200,
    )
    p_loyal, p_churner = model.predict_proba(model_matrix(pd.concat([loyal, churner])))[:, 1]
    assert p_churner > p_loyal + 0.2, (p_churner, p_loyal)


def test_scores_do_not_depend_on_row_order(nightly_run, features_now) -> None:
    home, _ = nightly_run
    x = model_matrix(features_now)
    shuffled = x.sample(frac=1.0, random_state=3)
    for name in (tracking.SEGMENTATION_MODEL, tracking.CHURN_MODEL, tracking.HIGH_VALUE_MODEL):
        model = _champion(home.settings, name)
        if name == tracking.SEGMENTATION_MODEL:
            a, b = model.predict(x), model.predict(shuffled)
        else:
            a, b = model.predict_proba(x)[:, 1], model.predict_proba(shuffled)[:, 1]
        np.testing.assert_array_equal(pd.Series(b, index=shuffled.index).loc[x.index], a)


def test_training_does_not_depend_on_row_order(nightly_run) -> None:
    from ml.churn import fit_outcome

    home, _ = nightly_run
    horizon = home.settings.churn_horizon_days
    with connect(home.settings) as con:
        at_train = labelled(con, home.run_date - timedelta(days=2 * horizon), horizon, 0.1)
        at_holdout = labelled(con, home.run_date - timedelta(days=horizon), horizon, 0.1)
    train = at_train[at_train["frequency"] > 0].reset_index(drop=True)
    holdout = at_holdout[at_holdout["frequency"] > 0].reset_index(drop=True)
    shuffled = train.sample(frac=1.0, random_state=5).reset_index(drop=True)
    population = model_matrix(at_train)
    fits = [
        fit_outcome(
            "churned", t, model_matrix(t), holdout, model_matrix(holdout), population, horizon
        )
        for t in (train, shuffled)
    ]
    np.testing.assert_allclose(fits[0].holdout_scores["model"], fits[1].holdout_scores["model"])


def test_every_scored_buyer_carries_churn_reasons(nightly_run) -> None:
    home, _ = nightly_run
    with connect(home.settings) as con:
        scores = con.execute(
            "select churn_probability, churn_reason_1, churn_reason_2, churn_reason_3, "
            "high_value_probability from marts.customer_segments"
        ).df()
    buyers = scores.dropna(subset=["churn_probability"])
    assert len(buyers) > 0
    assert buyers["churn_reason_1"].notna().mean() > 0.95
    assert scores.loc[scores["churn_probability"].isna(), "churn_reason_1"].isna().all()
    assert buyers["churn_reason_1"].str.contains(": ").all()  # "<what it means>: <value>"
    assert scores["high_value_probability"].between(0, 1).all()


def test_segment_ids_survive_a_retraining(features_now) -> None:
    from sklearn.metrics import adjusted_rand_score

    from ml.segmentation import fit_segments

    x = model_matrix(features_now)
    first = fit_segments(x, seed=7).model
    # Another night: a slightly different population and another random start.
    rng = np.random.default_rng(1)
    tonight = x.loc[rng.random(len(x)) < 0.9]
    second = fit_segments(tonight, previous=first, seed=11).model
    a, b = first.predict(tonight), second.predict(tonight)
    assert first.algorithm == second.algorithm == "kmeans"
    assert adjusted_rand_score(a, b) > 0.8
    assert (a == b).mean() > 0.85  # the same customers keep the same ids, not just the partition
    assert set(second.names) >= set(np.unique(b))


def test_segment_ids_survive_a_champion_without_a_trait_the_challenger_has(
    features_now, monkeypatch
) -> None:
    """An upgrade adds a trait: the old champion's centroids say nothing about it, so ids are
    matched on the traits both models have rather than all handed out afresh."""
    from ml import segmentation

    x = model_matrix(features_now)
    added = "distinct_categories"
    with monkeypatch.context() as patch:
        patch.setattr(
            segmentation,
            "SEGMENT_FEATURES",
            [f for f in segmentation.SEGMENT_FEATURES if f != added],
        )
        old = segmentation.fit_segments(x, seed=7).model
    assert added not in old.features
    new = segmentation.fit_segments(x, previous=old, seed=11).model
    assert added in new.features
    assert (old.predict(x) == new.predict(x)).mean() > 0.85


def test_k_is_chosen_among_clusterings_that_reproduce_on_disjoint_halves(features_now) -> None:
    from ml.segmentation import K_TOLERANCE, MIN_STABILITY, fit_segments

    result = fit_segments(model_matrix(features_now), seed=7)
    assert result.model.algorithm == "kmeans"
    assert set(result.stability_by_k) == set(result.silhouette_by_k)
    stable = {k for k, s in result.stability_by_k.items() if s >= MIN_STABILITY}
    # No k reproduces (a small population): the silhouette alone decides, and says so.
    candidates = {k: result.silhouette_by_k[k] for k in stable or result.silhouette_by_k}
    top = max(candidates.values())
    assert result.k == min(k for k, s in candidates.items() if s >= top - K_TOLERANCE)
    assert ("stable" in result.model.message) == bool(stable)


def test_stability_is_high_only_for_the_groups_that_are_there() -> None:
    from ml.segmentation import _stability

    # Three well-separated groups: three clusters come back from any half of the data; two
    # or six cut (or merge) groups wherever K-Means happens to start, differently per half.
    rng = np.random.default_rng(0)
    centres = np.array([[0, 0, 0, 0], [8, 0, 0, 0], [0, 8, 0, 0]], dtype=float)
    z = np.concatenate([c + rng.normal(size=(600, 4)) for c in centres])
    sample = z[rng.choice(len(z), 500, replace=False)]
    stability = _stability(z, sample, [2, 3, 6], np.random.default_rng(1), seed=7)
    assert stability[3] > 0.98
    assert stability[2] < 0.9 and stability[6] < 0.9


def test_prospects_join_a_segment_only_on_the_traits_they_show(features_now) -> None:
    from ml.segmentation import DORMANT_PROSPECTS, FIRST_CLUSTER_ID, fit_segments

    x = model_matrix(features_now)
    model = fit_segments(x, seed=7).model
    assert model.algorithm == "kmeans"
    segments = model.predict(x)
    prospect = (x["frequency"] == 0).to_numpy()
    shows = model.shown_traits(x).any(axis=1)
    assert (prospect & shows).any() and (prospect & ~shows).any()
    assert (segments[prospect & shows] >= FIRST_CLUSTER_ID).all()
    assert (segments[prospect & ~shows] == DORMANT_PROSPECTS).all()

    # A prospect with exactly a cluster's browsing, newsletter and category mix joins that
    # cluster, whatever its (absent) purchase traits and tenure say: they are not looked at.
    centroids = model.centroids_raw()
    rows = []
    for i, segment in enumerate(centroids.index):
        other = centroids.iloc[(i + 1) % len(centroids)]
        row = x.iloc[0].copy()
        row[model.features] = other[model.features].to_numpy()  # another cluster's purchases
        shown = [f for f in model.features if f not in SEGMENT_PURCHASE_TRAITS]
        row[shown] = centroids.loc[segment, shown].to_numpy()
        row["frequency"] = 0
        rows.append(row)
    synthetic = pd.DataFrame(rows)
    assert (model.predict(synthetic) == centroids.index.to_numpy()).all()


SEGMENT_PURCHASE_TRAITS = {
    "tenure_days",
    "purchases_per_year",
    "avg_order_value",
    "avg_basket_lines",
    "distinct_categories",
    "discount_share",
    "online_share",
}


def test_category_shares_sum_to_one_for_customers_with_any_interest(features_now) -> None:
    from ml.data import category_columns

    shares = features_now[category_columns(features_now)]
    assert shares.shape[1] >= 2
    known = shares.notna().all(axis=1)
    assert known.mean() > 0.5
    np.testing.assert_allclose(shares[known].sum(axis=1), 1.0, rtol=1e-9)
    # Smoothed towards the population: no customer is 100 % one category.
    assert shares[known].max(axis=1).max() < 1.0
