"""Churn and high-value models: calibrated XGBoost judged out of time against simple baselines.

Temporal design, no leakage: a model trains on features as of cutoff C1 = run − 2H with outcomes
in (C1, C1 + H], and is judged on the later, unseen cutoff C2 = run − H with outcomes in
(C2, run]. Features at a cutoff only read events on or before it (marts.customer_features); the
champion is judged on the same C2 rows, so promotion compares like with like. The registered
model is the one judged: scores at the run date come from exactly what the holdout measured.

The same machinery serves two targets:
- churned: no completed purchase in the H days after the cutoff (buyers only: a prospect
  cannot stop buying);
- high_value: among the top 10 % of spenders over those H days (everyone known at the cutoff).

Inside the training cutoff the model is cross-fitted: customers fall into FOLDS folds by a hash
of their id (so row order never matters); one booster per fold learns on the other folds and
stops early on its own. The bag's average log-odds is the score, and a Platt calibration fitted
on the out-of-fold scores (every training customer, none seen by the booster that scored them)
turns it into an honest probability without changing the ranking. Above MAX_TRAIN_ROWS the
training rows are thinned by the same hash: more rows add little to a model of ~40 features.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from xgboost import DMatrix, XGBClassifier

from journeys.errors import PipelineError
from ml import bgnbd
from ml.data import MATRIX_COLUMNS, history

XGB_PARAMS = {
    "n_estimators": 2000,  # an upper bound: early stopping picks the number
    "max_depth": 3,
    "learning_rate": 0.03,
    "min_child_weight": 5,
    "subsample": 0.8,
    "colsample_bytree": 0.8,
    "reg_lambda": 1.0,
    "tree_method": "hist",
    "max_bin": 128,
    "n_jobs": 1,  # measured: two threads are slower on this 2-core machine at every size
    "random_state": 7,
    "eval_metric": "logloss",
    "early_stopping_rounds": 50,
}
FOLDS = 5
# Past LARGE_ROWS training rows: fewer folds and a faster learning rate. Each booster sees
# plenty of data, and the bag stays a few hundred trees, so scoring and per-row contributions
# of a million customers take seconds, not minutes.
LARGE_ROWS = 20_000
LARGE_FOLDS = 3
LARGE_LEARNING_RATE = 0.1
LARGE_MAX_TREES = 400  # a bound on training and scoring time whatever early stopping says
MAX_TRAIN_ROWS = 100_000
EXACT_CONTRIBUTIONS_ROWS = 50_000
MIN_ROWS = 50
MIN_POSITIVES = 5
LIFT_SHARE = 0.10
# Derived from the purchase rhythm and engagement: signals a tree cannot build from ratios.
AUGMENTED = [
    "bgnbd_p_alive",
    "bgnbd_p_no_purchase",
    "bgnbd_expected_purchases",
    "purchase_gap_ratio",
    "email_silence",
    "browse_silence",
]


class NotEnoughHistory(PipelineError):
    """Too few labelled customers, or too few of one class, to train or judge a model."""


def id_hash(customer_ids: pd.Series) -> np.ndarray:
    """A fixed pseudo-random number per customer id (not per position)."""
    return pd.util.hash_pandas_object(
        pd.Series(np.asarray(customer_ids), dtype="string"), index=False
    ).to_numpy()


def folds_of(customer_ids: pd.Series, y: np.ndarray, folds: int = FOLDS) -> np.ndarray:
    """Fold number per customer by id hash; by position only if a fold would lack a class."""
    fold = (id_hash(customer_ids) % np.uint64(folds)).astype("int64")
    for k in range(folds):
        inside = fold == k
        if len(set(y[inside])) < 2 or len(set(y[~inside])) < 2:
            return np.arange(len(y)) % folds
    return fold


class OutcomeModel(BaseEstimator, ClassifierMixin):
    """model_matrix columns in, calibrated P(outcome in the next H days) out.

    Holds the BG/NBD population parameters fitted at its training cutoff, the cross-fitted
    boosters and the Platt calibration, so scoring needs nothing but the features.
    """

    def __init__(self, target: str = "churned", horizon_days: int = 90) -> None:
        self.target = target
        self.horizon_days = horizon_days

    def augment(self, x: pd.DataFrame) -> pd.DataFrame:
        x = x[MATRIX_COLUMNS].astype("float64")
        freq, t_x, T = history(x)
        h = float(self.horizon_days)
        extra = pd.DataFrame(
            {
                "bgnbd_p_alive": bgnbd.p_alive(freq, t_x, T, self.bgnbd_),
                "bgnbd_p_no_purchase": bgnbd.p_no_purchase(h, freq, t_x, T, self.bgnbd_),
                "bgnbd_expected_purchases": bgnbd.expected_purchases(h, freq, t_x, T, self.bgnbd_),
                # How many usual gaps have passed since the last purchase / open / session.
                "purchase_gap_ratio": x["recency_days"]
                / np.maximum(x["avg_days_between_purchases"], 1.0),
                "email_silence": np.minimum(x["days_since_last_email_open"], 400.0)
                * x["email_opens_per_week"]
                / 7.0,
                "browse_silence": np.minimum(x["days_since_last_browse"], 400.0)
                * x["browse_sessions_per_month"]
                / 30.0,
            },
            index=x.index,
        )
        return pd.concat([x, extra], axis=1)

    def fit(
        self,
        x: pd.DataFrame,
        y: pd.Series,
        customer_ids: pd.Series,
        population: pd.DataFrame | bgnbd.BgNbdParams,
    ):
        """Fit on one cutoff's rows; BG/NBD from `population` (everyone at that cutoff, as a
        model_matrix) or its parameters fitted already."""
        self.bgnbd_ = (
            population
            if isinstance(population, bgnbd.BgNbdParams)
            else bgnbd.fit(*history(population))
        )
        y = np.asarray(y, dtype="int64")
        ids = np.asarray(customer_ids)
        z = self.augment(x)
        large = len(y) > LARGE_ROWS
        folds = LARGE_FOLDS if large else FOLDS
        params = XGB_PARAMS | (
            {"learning_rate": LARGE_LEARNING_RATE, "n_estimators": LARGE_MAX_TREES} if large else {}
        )
        fold = folds_of(pd.Series(ids), y, folds)
        out_of_fold = np.zeros(len(y))
        self.boosters_ = []
        for k in range(folds):
            inside = fold == k
            booster = XGBClassifier(**params).fit(
                z[~inside], y[~inside], eval_set=[(z[inside], y[inside])], verbose=False
            )
            out_of_fold[inside] = booster.predict(z[inside], output_margin=True)
            self.boosters_.append(booster)
        self.calibrator_ = LogisticRegression(C=1e4).fit(out_of_fold.reshape(-1, 1), y)
        self.classes_ = np.array([0, 1])
        self.feature_names_ = list(z.columns)
        self.trees_ = [int(b.best_iteration) + 1 for b in self.boosters_]
        return self

    def margin(self, x: pd.DataFrame) -> np.ndarray:
        """The bag's average log-odds (before calibration)."""
        z = self.augment(x)
        return np.mean([b.predict(z, output_margin=True) for b in self.boosters_], axis=0)

    def predict_proba(self, x: pd.DataFrame) -> np.ndarray:
        p = self.calibrator_.predict_proba(self.margin(x).reshape(-1, 1))[:, 1]
        return np.column_stack([1.0 - p, p])

    def predict(self, x: pd.DataFrame) -> np.ndarray:
        return (self.predict_proba(x)[:, 1] >= 0.5).astype("int64")

    def contributions(self, x: pd.DataFrame) -> pd.DataFrame:
        """Per-row additive contributions (log-odds) of every feature: XGBoost's own.

        Exact TreeSHAP up to EXACT_CONTRIBUTIONS_ROWS rows; beyond, XGBoost's approximate
        (Saabas) contributions, ten times cheaper, which pick the same top reason ~85 % of the
        time. Contributions add up to the margin, so the bag's are the average of its boosters'.
        """
        matrix = DMatrix(self.augment(x))
        approximate = len(x) > EXACT_CONTRIBUTIONS_ROWS
        raw = np.mean(
            [
                b.get_booster().predict(
                    matrix,
                    pred_contribs=True,
                    approx_contribs=approximate,
                    iteration_range=(0, int(b.best_iteration) + 1),
                )
                for b in self.boosters_
            ],
            axis=0,
        )
        return pd.DataFrame(raw[:, :-1], columns=self.feature_names_, index=x.index)

    def importance(self) -> pd.Series:
        total = pd.Series(0.0, index=self.feature_names_)
        for b in self.boosters_:
            gain = b.get_booster().get_score(importance_type="total_gain")
            total = total.add(pd.Series(gain, dtype="float64"), fill_value=0.0)
        return total.reindex(self.feature_names_).fillna(0.0)


# --- metrics -----------------------------------------------------------------------------------


def lift_at(y: np.ndarray, score: np.ndarray, share: float = LIFT_SHARE) -> float:
    """Outcome rate among the top `share` by score over the overall rate."""
    y = np.asarray(y, dtype=float)
    n = max(1, int(round(share * len(y))))
    top = np.argsort(-np.asarray(score, dtype=float), kind="stable")[:n]
    base = y.mean()
    return float(y[top].mean() / base) if base > 0 else float("nan")


def scores_metrics(y: np.ndarray, score: np.ndarray, probability: bool) -> dict[str, float]:
    out = {
        "auc": float(roc_auc_score(y, score)),
        "pr_auc": float(average_precision_score(y, score)),
        "lift_at_10": lift_at(y, score),
    }
    if probability:
        out["brier"] = float(brier_score_loss(y, np.clip(score, 0.0, 1.0)))
    return out


# --- fitting with baselines ----------------------------------------------------------------------


@dataclass
class OutcomeResult:
    target: str
    model: OutcomeModel
    metrics: dict[str, float]  # the model's holdout figures
    baselines: dict[str, dict[str, float]]  # baseline name -> its holdout figures
    train_rows: int
    holdout_rows: int
    holdout_rate: float
    holdout_scores: dict[str, np.ndarray] = field(default_factory=dict)  # for the plots
    holdout_y: np.ndarray | None = None

    @property
    def beats_every_baseline(self) -> bool:
        return all(self.metrics["auc"] > b["auc"] for b in self.baselines.values())


def _check(y: pd.Series, what: str) -> None:
    positives = int(y.sum())
    if len(y) < MIN_ROWS or min(positives, len(y) - positives) < MIN_POSITIVES:
        raise NotEnoughHistory(
            f"{what}: {len(y)} labelled customers, {positives} positive: too few to train or judge"
        )


def _baseline_scores(
    target: str,
    model: OutcomeModel,
    x_train: pd.DataFrame,
    y_train: np.ndarray,
    x_holdout: pd.DataFrame,
) -> dict[str, tuple[np.ndarray, bool]]:
    """Each baseline's holdout score and whether it is a probability."""
    logistic = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    logistic.fit(np.log1p(x_train.clip(lower=0)), y_train)
    p_logistic = logistic.predict_proba(np.log1p(x_holdout.clip(lower=0)))[:, 1]
    freq, t_x, T = history(x_holdout)
    h = float(model.horizon_days)
    if target == "churned":
        return {
            "logistic": (p_logistic, True),
            # The classic rule: the longer since the last purchase, the likelier they are gone.
            "recency": (x_holdout["recency_days"].to_numpy(dtype=float), False),
            "bgnbd": (bgnbd.p_no_purchase(h, freq, t_x, T, model.bgnbd_), True),
        }
    expected = bgnbd.expected_purchases(h, freq, t_x, T, model.bgnbd_)
    return {
        "logistic": (p_logistic, True),
        # The classic rule: last year's best customers are next quarter's.
        "spend": (x_holdout["monetary_365d"].to_numpy(dtype=float), False),
        # BG/NBD expected purchases times the customer's average order value.
        "bgnbd_spend": (expected * x_holdout["avg_order_value"].to_numpy(dtype=float), False),
    }


def fit_outcome(
    target: str,
    train: pd.DataFrame,
    x_train: pd.DataFrame,
    holdout: pd.DataFrame,
    x_holdout: pd.DataFrame,
    population: pd.DataFrame | bgnbd.BgNbdParams,
    horizon_days: int,
) -> OutcomeResult:
    """Fit on the training cutoff, judge on the holdout next to the target's baselines.

    `train`/`holdout` carry customer_id and the label column `target`; `x_*` are their
    model_matrix rows in the same order; `population` is the model_matrix of everyone at the
    training cutoff (the BG/NBD fit), or its BG/NBD parameters.
    """
    _check(train[target], f"{target}: training cutoff")
    _check(holdout[target], f"{target}: holdout cutoff")
    # Training sees customers in id order, whatever order they came in; beyond MAX_TRAIN_ROWS
    # a fixed subset of them (by id hash) is enough for a model of ~40 features.
    order = np.argsort(train["customer_id"].to_numpy(), kind="stable")
    train, x_train = train.iloc[order], x_train.iloc[order]
    if len(train) > MAX_TRAIN_ROWS:
        keep = (id_hash(train["customer_id"]) // np.uint64(FOLDS)) % np.uint64(10_000) < (
            MAX_TRAIN_ROWS / len(train) * 10_000
        )
        train, x_train = train.loc[keep], x_train.loc[keep]
    y_train = train[target].to_numpy(dtype="int64")
    y_holdout = holdout[target].to_numpy(dtype="int64")
    model = OutcomeModel(target, horizon_days).fit(
        x_train, y_train, train["customer_id"], population
    )
    p = model.predict_proba(x_holdout)[:, 1]
    baselines = _baseline_scores(target, model, x_train, y_train, x_holdout)
    return OutcomeResult(
        target=target,
        model=model,
        metrics=scores_metrics(y_holdout, p, probability=True),
        baselines={
            name: scores_metrics(y_holdout, s, prob) for name, (s, prob) in baselines.items()
        },
        train_rows=len(x_train),
        holdout_rows=len(x_holdout),
        holdout_rate=float(y_holdout.mean()),
        holdout_scores={"model": p, **{name: s for name, (s, _) in baselines.items()}},
        holdout_y=y_holdout,
    )
