"""Behavioural segmentation: K-Means on scaled, log-compressed features, k by silhouette.

Silhouette is computed on a fixed-size sample, never on all customers (it is O(n²)).
Segment names are derived from each cluster's profile in marketer's words.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.compose import ColumnTransformer
from sklearn.metrics import silhouette_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from journeys.errors import PipelineError

SEGMENT_FEATURES = [
    "recency_days",
    "frequency",
    "monetary",
    "avg_order_value",
    "tenure_days",
    "online_share",
    "web_sessions_30d",
    "product_views_30d",
    "cart_adds_30d",
    "email_opens_90d",
]
# Heavy-tailed counts and amounts: log1p keeps a few big spenders from owning a cluster.
SKEWED = [c for c in SEGMENT_FEATURES if c != "online_share"]
SILHOUETTE_SAMPLE = 5_000
K_RANGE = range(3, 9)


class TooFewCustomers(PipelineError):
    """The population is too small or too uniform to cluster."""


@dataclass
class SegmentationResult:
    model: Pipeline
    k: int
    silhouette_by_k: dict[int, float]
    names: dict[int, str]
    sizes: dict[int, int]


def _pipeline(k: int, seed: int) -> Pipeline:
    log = FunctionTransformer(np.log1p, feature_names_out="one-to-one")
    prepare = ColumnTransformer(
        [("log", log, SKEWED), ("keep", "passthrough", ["online_share"])],
        verbose_feature_names_out=False,
    )
    return Pipeline(
        [
            ("prepare", prepare),
            ("scale", StandardScaler()),
            ("cluster", KMeans(n_clusters=k, n_init=4, random_state=seed)),
        ]
    )


def fit_segments(x: pd.DataFrame, seed: int = 7) -> SegmentationResult:
    """Fit K-Means for each k in K_RANGE and keep the best silhouette (on a sample)."""
    x = x[SEGMENT_FEATURES]
    if len(x) < 50 or x.drop_duplicates().shape[0] < max(K_RANGE):
        raise TooFewCustomers(
            f"{len(x)} customers ({x.drop_duplicates().shape[0]} distinct profiles): "
            "too few to cluster"
        )
    rng = np.random.default_rng(seed)
    sample_index = rng.choice(len(x), size=min(SILHOUETTE_SAMPLE, len(x)), replace=False)
    scores: dict[int, float] = {}
    fitted: dict[int, Pipeline] = {}
    for k in K_RANGE:
        model = _pipeline(k, seed).fit(x)
        scaled = model[:-1].transform(x.iloc[sample_index])
        labels = model[-1].labels_[sample_index]
        if len(set(labels)) < 2:
            continue
        scores[k] = float(silhouette_score(scaled, labels))
        fitted[k] = model
    if not scores:
        raise TooFewCustomers("every k gave a single cluster: customers are too uniform")
    best = max(scores, key=scores.get)
    model = fitted[best]
    labels = model[-1].labels_
    names = name_segments(x, labels)
    sizes = {int(c): int((labels == c).sum()) for c in np.unique(labels)}
    return SegmentationResult(model, best, scores, names, sizes)


def name_segments(x: pd.DataFrame, labels: np.ndarray) -> dict[int, str]:
    """Readable names from each cluster's medians: value tier, activity, and web behaviour."""
    profile = x.assign(_segment=labels).groupby("_segment").median()
    overall_monetary = x["monetary"].median()
    names: dict[int, str] = {}
    for segment, row in profile.iterrows():
        if row["frequency"] == 0:
            base = "Engaged prospects" if row["product_views_30d"] > 0 else "Dormant prospects"
        else:
            value = (
                "High-value"
                if row["monetary"] >= 2 * max(overall_monetary, 1)
                else "Low-value"
                if row["monetary"] < 0.5 * overall_monetary
                else "Mid-value"
            )
            recency = row["recency_days"]
            activity = "active" if recency <= 60 else "cooling" if recency <= 180 else "lapsed"
            base = f"{value} {activity}"
            if row["frequency"] <= 1:
                base += " one-timers"
            elif row["web_sessions_30d"] >= 2:
                base += " browsers"
        name, n = base, 2
        while name in names.values():
            name, n = f"{base} {n}", n + 1
        names[int(segment)] = name
    return names
