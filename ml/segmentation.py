"""Behavioural segmentation: K-Means on log-compressed, scaled behaviour traits of buyers.

- Who is clustered: customers who bought at least once; they show every trait.
- Prospects (never bought) who browsed, viewed products or opened a newsletter join the buyer
  segment whose centroid is nearest on the traits they do show (category mix, browsing,
  newsletter): a browsing bargain hunter looks like the bargain hunters who bought.
  Prospects with no activity at all show nothing to match: they get the dormant rule segment.
- Traits, not lifecycle: purchase rate, order value, basket size, breadth of the assortment
  bought (product categories), discount affinity, channel, newsletter and browsing engagement,
  tenure, and the split of interest (purchased lines and product views) over the catalog's
  categories. Recency is left out on purpose: it changes
  every night and belongs to the lifecycle stage, and segments must stay put night to night.
- k by silhouette over K_RANGE on a sample (silhouette is O(n²)); K-Means itself is fitted on
  a bounded sample too and then assigns everyone, so a million customers cost what 50k cost.
  Only a k whose clusters are reproducible counts: K-Means fitted on two disjoint halves of
  the buyers must split the silhouette sample alike (ARI >= MIN_STABILITY, the mean over
  STABILITY_SPLITS pairs of halves). Silhouettes of neighbouring k differ by a hundredth or
  two, so the silhouette alone flips k with the sample; a k that cuts through one group of
  customers cuts it differently in each half and is not stable. Among the stable k (all k
  when none is), silhouettes within K_TOLERANCE of the best are a tie, won by the smallest
  k; the previous champion's k is kept unless another k is clearly better.
- A Gaussian mixture and HDBSCAN run on the same sample for comparison (logged, not used).
- Stable ids: new centroids are matched to the previous champion's (Hungarian assignment in the
  new scaled space); a matched cluster keeps its id, a new one gets an id never used before.
- Names in marketer's words from each cluster's most distinctive traits.
- Too few buyers, or no cluster structure: rule segments only, with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment
from sklearn.base import BaseEstimator
from sklearn.cluster import HDBSCAN, KMeans
from sklearn.metrics import adjusted_rand_score, silhouette_score
from sklearn.mixture import GaussianMixture
from sklearn.preprocessing import StandardScaler

from ml.data import CATEGORY_PREFIX, category_columns

SEGMENT_FEATURES = [
    "purchases_per_year",
    "avg_order_value",
    "avg_basket_lines",
    "distinct_categories",
    "discount_share",
    "online_share",
    "email_opens_per_week",
    "browse_sessions_per_month",
    "tenure_days",
]
# Behaviour a prospect (never bought) can show; category shares count only when it has any.
# Not tenure: prospects are mostly recent sign-ups of every type (who signed up long ago has
# usually bought), so their tenure tells when they came, not how they behave.
PROSPECT_TRAITS = ["email_opens_per_week", "browse_sessions_per_month"]
# Shares are already on [0, 1]; everything else is a heavy-tailed count, rate or amount.
SHARES = {"discount_share", "online_share"}
K_RANGE = range(3, 9)
FIT_SAMPLE = 50_000  # K-Means, mixture and scaler are fitted on at most this many buyers
SILHOUETTE_SAMPLE = 4_000  # silhouette and the comparisons run on at most this many
TSNE_SAMPLE = 500
MIN_BUYERS = 100
MIN_SILHOUETTE = 0.10  # below it the "clusters" are arbitrary cuts through one cloud
K_TOLERANCE = 0.01  # silhouettes closer than this are a tie: the smaller k, or the champion's
MIN_STABILITY = 0.9  # ARI between the clusterings of two halves for a k to be reproducible
STABILITY_SPLITS = 2  # pairs of disjoint halves the stability is averaged over
STABILITY_SAMPLE = 20_000  # buyers split into the two halves (bounds its cost at scale)
MATCH_DISTANCE = 1.5  # centroids further apart (in standard deviations) are different segments

# Rule segments: fixed ids below FIRST_CLUSTER_ID, the same in every run.
ENGAGED_PROSPECTS, DORMANT_PROSPECTS = 1, 2
RULE_SEGMENTS = {
    ENGAGED_PROSPECTS: "Engaged prospects (never bought, active online)",
    DORMANT_PROSPECTS: "Dormant prospects (never bought)",
    3: "Active repeat buyers",
    4: "New buyers",
    5: "Cooling buyers",
    6: "Lapsed buyers",
}
FIRST_CLUSTER_ID = 10

# Words for a cluster that stands out on a trait: (when high, when low).
TRAIT_WORDS = {
    "purchases_per_year": ("frequent", "rare"),
    "avg_order_value": ("big-spending", "small-order"),
    "avg_basket_lines": ("multi-item", "single-item"),
    "distinct_categories": ("broad-assortment", "single-category"),
    "discount_share": ("deal-seeking", "full-price"),
    "online_share": ("online", "in-store"),
    "email_opens_per_week": ("newsletter-loving", "newsletter-ignoring"),
    "browse_sessions_per_month": ("web-browsing", "low-browsing"),
    "tenure_days": ("long-standing", "new"),
}
NAME_THRESHOLD = 0.35  # |z| of a cluster mean that counts as standing out


def _is_share(feature: str) -> bool:
    return feature in SHARES or feature.startswith(CATEGORY_PREFIX)


def _rule_segment(x: pd.DataFrame) -> np.ndarray:
    """RFM rules for everyone: prospects by engagement, buyers by recency and repeat."""
    bought = x["frequency"].to_numpy() > 0
    engaged = x["days_since_last_web_event"].to_numpy() <= 90
    recency = x["recency_days"].to_numpy()
    repeat = x["frequency"].to_numpy() >= 2
    return np.select(
        [
            ~bought & engaged,
            ~bought,
            (recency <= 90) & repeat,
            recency <= 90,
            recency <= 180,
        ],
        [ENGAGED_PROSPECTS, DORMANT_PROSPECTS, 3, 4, 5],
        6,
    ).astype("int32")


class Segmenter(BaseEstimator):
    """The registered segmentation model: model_matrix columns in, segment ids out.

    algorithm "kmeans": buyers by their nearest centroid, prospects with any activity by the
    nearest centroid on the traits they show, the others by rule;
    algorithm "rules": everyone by rule (a population that cannot be clustered).
    """

    def __init__(self) -> None:
        self.algorithm = "rules"
        self.features = list(SEGMENT_FEATURES)  # plus the category shares, set when fitted
        self.log_features = [c for c in SEGMENT_FEATURES if not _is_share(c)]
        self.scaler: StandardScaler | None = None
        self.kmeans: KMeans | None = None
        self.cluster_ids = np.zeros(0, dtype="int32")  # K-Means label -> segment id
        self.names: dict[int, str] = dict(RULE_SEGMENTS)
        self.next_id = FIRST_CLUSTER_ID
        self.message = ""

    # -- transforms -------------------------------------------------------------------------
    def prepare(self, x: pd.DataFrame) -> np.ndarray:
        """log1p of the skewed traits, shares as they are, then standardised."""
        # A category the model never saw is ignored; one missing tonight is a share of 0.
        raw = x.reindex(columns=self.features, fill_value=0.0).astype("float64")
        raw[self.log_features] = np.log1p(raw[self.log_features].clip(lower=0))
        return self.scaler.transform(raw.to_numpy())

    def centroids_raw(self) -> pd.DataFrame:
        """Centroids back in the traits' own units, indexed by segment id."""
        values = self.scaler.inverse_transform(self.kmeans.cluster_centers_)
        frame = pd.DataFrame(values, columns=self.features)
        frame[self.log_features] = np.expm1(frame[self.log_features])
        frame.index = pd.Index(self.cluster_ids, name="segment_id")
        return frame

    def predict(self, x: pd.DataFrame) -> np.ndarray:
        segment = _rule_segment(x)
        if self.algorithm != "kmeans":
            return segment
        bought = x["frequency"].to_numpy() > 0
        if bought.any():
            labels = self.kmeans.predict(self.prepare(x.loc[bought]))
            segment[bought] = self.cluster_ids[labels]
        shown = self.shown_traits(x)
        active = ~bought & shown.any(axis=1)
        if active.any():
            segment[active] = self.cluster_ids[self.nearest_on(x.loc[active], shown[active])]
        return segment

    def shown_traits(self, x: pd.DataFrame) -> np.ndarray:
        """(rows, features) mask of the traits a prospect shows: browsing and newsletter
        activity (zero counts too, once it shows anything), and the category mix if any."""
        shown = np.zeros((len(x), len(self.features)), dtype=bool)
        categories = [c for c in self.features if c.startswith(CATEGORY_PREFIX)]
        has_mix = x.reindex(columns=categories, fill_value=0.0).sum(axis=1).to_numpy() > 0
        engaged = (x[["email_opens_per_week", "browse_sessions_per_month"]].to_numpy() > 0).any(
            axis=1
        )
        for j, feature in enumerate(self.features):
            if feature in PROSPECT_TRAITS:
                shown[:, j] = engaged | has_mix
            elif feature in categories:
                shown[:, j] = has_mix
        return shown

    def nearest_on(self, x: pd.DataFrame, shown: np.ndarray) -> np.ndarray:
        """K-Means label of the centroid nearest on the shown traits only (partial distance)."""
        z = self.prepare(x)
        distance = np.stack(
            [(((z - c) ** 2) * shown).sum(axis=1) for c in self.kmeans.cluster_centers_], axis=1
        )
        return distance.argmin(axis=1)


@dataclass
class SegmentationResult:
    model: Segmenter
    k: int | None
    silhouette_by_k: dict[int, float]
    sizes: dict[int, int]
    comparisons: dict[str, float] = field(default_factory=dict)
    profile: pd.DataFrame | None = None  # mean z-score of each trait per cluster
    sample: np.ndarray | None = None  # scaled sample (for pictures)
    sample_segments: np.ndarray | None = None
    matched: dict[int, int] = field(default_factory=dict)  # new id -> distance-matched old id
    stability_by_k: dict[int, float] = field(default_factory=dict)  # ARI between halves' fits

    @property
    def silhouette(self) -> float | None:
        return self.silhouette_by_k.get(self.k) if self.k else None


def _rules_only(x: pd.DataFrame, message: str) -> SegmentationResult:
    model = Segmenter()
    model.message = message
    seg = model.predict(x)
    ids, counts = np.unique(seg, return_counts=True)
    return SegmentationResult(
        model, None, {}, dict(zip(ids.tolist(), counts.tolist(), strict=True))
    )


def fit_segments(
    x: pd.DataFrame, previous: Segmenter | None = None, seed: int = 7
) -> SegmentationResult:
    """Cluster the buyers of `x` (a model_matrix), or fall back to rule segments with a reason."""
    buyers = x.loc[x["frequency"].to_numpy() > 0]
    if len(buyers) < MIN_BUYERS:
        return _rules_only(
            x, f"{len(buyers)} buyers: too few to cluster (need {MIN_BUYERS}); rule segments only"
        )
    model = Segmenter()
    model.features = [*SEGMENT_FEATURES, *category_columns(x)]
    traits = buyers[model.features]
    distinct = len(traits.drop_duplicates())
    if distinct < 2 * max(K_RANGE):
        return _rules_only(
            x,
            f"only {distinct} distinct buyer profiles: too uniform to cluster; rule segments only",
        )

    rng = np.random.default_rng(seed)
    fit_rows = np.sort(rng.choice(len(buyers), min(FIT_SAMPLE, len(buyers)), replace=False))
    raw = traits.astype("float64").copy()
    raw[model.log_features] = np.log1p(raw[model.log_features].clip(lower=0))
    model.scaler = StandardScaler().fit(raw.to_numpy()[fit_rows])
    z_fit = model.scaler.transform(raw.to_numpy()[fit_rows])
    sil_rows = np.sort(
        rng.choice(len(fit_rows), min(SILHOUETTE_SAMPLE, len(fit_rows)), replace=False)
    )
    z_sil = z_fit[sil_rows]

    scores: dict[int, float] = {}
    fitted: dict[int, KMeans] = {}
    for k in K_RANGE:
        if k >= len(fit_rows):
            break
        km = KMeans(n_clusters=k, n_init=4, random_state=seed).fit(z_fit)
        labels = km.labels_[sil_rows]
        if len(set(labels)) < 2:
            continue
        scores[k] = float(silhouette_score(z_sil, labels))
        fitted[k] = km
    if not scores:
        return _rules_only(x, "every k gave a single cluster: buyers are too uniform")
    stability = _stability(z_fit, z_sil, list(scores), rng, seed)
    stable = {k: s for k, s in scores.items() if stability.get(k, 0.0) >= MIN_STABILITY}
    candidates = stable or scores
    # Silhouettes on a sample differ by noise of about K_TOLERANCE: among the k that score
    # within it of the best, the fewest segments (a marketer acts on each one).
    top = max(candidates.values())
    best = min(k for k, score in candidates.items() if score >= top - K_TOLERANCE)
    previous_k = (
        len(previous.cluster_ids)
        if previous is not None and previous.algorithm == "kmeans"
        else None
    )
    if previous_k in candidates and candidates[previous_k] >= candidates[best] - K_TOLERANCE:
        best = previous_k
    if scores[best] < MIN_SILHOUETTE:
        return _rules_only(
            x,
            f"no cluster structure among buyers (best silhouette {scores[best]:.3f} < "
            f"{MIN_SILHOUETTE}): rule segments only",
        )
    model.algorithm = "kmeans"
    model.kmeans = fitted[best]
    matched = _assign_ids(model, previous)

    labels_sil = model.kmeans.labels_[sil_rows]
    profile = pd.DataFrame(model.kmeans.cluster_centers_, columns=model.features)
    profile.index = pd.Index(model.cluster_ids, name="segment_id")
    model.names = {**RULE_SEGMENTS, **name_clusters(profile)}
    model.message = (
        f"K-Means with k={best} (best silhouette over the "
        f"{'stable ' if stable else ''}k in {min(K_RANGE)}..{max(K_RANGE)})"
    )
    all_segments = model.predict(x)
    ids, counts = np.unique(all_segments, return_counts=True)
    return SegmentationResult(
        model,
        best,
        scores,
        dict(zip(ids.tolist(), counts.tolist(), strict=True)),
        comparisons=compare_methods(z_sil, labels_sil, best, seed),
        profile=profile,
        sample=z_sil,
        sample_segments=model.cluster_ids[labels_sil],
        matched=matched,
        stability_by_k=stability,
    )


def _stability(
    z_fit: np.ndarray, z_sil: np.ndarray, ks: list[int], rng: np.random.Generator, seed: int
) -> dict[int, float]:
    """Per k: mean ARI of the silhouette sample as split by K-Means fitted on two disjoint
    halves of (at most STABILITY_SAMPLE) buyers, over STABILITY_SPLITS random halvings.
    Near 1: the k clusters are there in any half of the data; lower: k cuts through a group
    wherever K-Means happens to start."""
    halvings = [rng.permutation(len(z_fit)) for _ in range(STABILITY_SPLITS)]
    out: dict[int, float] = {}
    for k in ks:
        agreements = []
        for order in halvings:
            n = min(len(order), STABILITY_SAMPLE)
            halves = (order[: n // 2], order[n // 2 : n])
            if min(len(h) for h in halves) <= k:
                break
            a, b = (
                KMeans(n_clusters=k, n_init=4, random_state=seed).fit(z_fit[h]).predict(z_sil)
                for h in halves
            )
            agreements.append(adjusted_rand_score(a, b))
        if agreements:
            out[k] = float(np.mean(agreements))
    return out


def _assign_ids(model: Segmenter, previous: Segmenter | None) -> dict[int, int]:
    """Give each new cluster the id of the previous champion's nearest centroid (one-to-one).

    Both sets of centroids are compared in the new model's scaled space, on the traits both
    models have (an upgrade may add one); a pair further apart than MATCH_DISTANCE is not the
    same segment, so the new cluster gets a fresh id.
    """
    k = model.kmeans.n_clusters
    ids = np.full(k, -1, dtype="int32")
    next_id = FIRST_CLUSTER_ID
    matched: dict[int, int] = {}
    if previous is not None and previous.algorithm == "kmeans":
        next_id = max(previous.next_id, FIRST_CLUSTER_ID)
        old = previous.centroids_raw()
        old_raw = old.reindex(columns=model.features, fill_value=0.0)
        old_raw[model.log_features] = np.log1p(old_raw[model.log_features].clip(lower=0))
        old_z = model.scaler.transform(old_raw.to_numpy())
        new_z = model.kmeans.cluster_centers_
        # A trait the previous model did not have cannot tell its centroids apart from ours.
        shared = np.isin(model.features, previous.features)
        cost = np.linalg.norm((new_z[:, None, :] - old_z[None, :, :])[:, :, shared], axis=2)
        rows, cols = linear_sum_assignment(cost)
        for r, c in zip(rows, cols, strict=True):
            if cost[r, c] <= MATCH_DISTANCE:
                ids[r] = int(old.index[c])
                matched[int(old.index[c])] = round(float(cost[r, c]), 3)
    # New clusters get fresh ids in a stable order (largest first).
    order = np.argsort(-np.bincount(model.kmeans.labels_, minlength=k), kind="stable")
    for r in order:
        if ids[r] < 0:
            ids[r] = next_id
            next_id += 1
    model.cluster_ids = ids
    model.next_id = next_id
    return matched


def name_clusters(profile: pd.DataFrame) -> dict[int, str]:
    """Names from the traits where each cluster's centroid stands out (z-scores).

    Up to three traits with |z| >= NAME_THRESHOLD, strongest first, the channel last, then
    "buyers": "Frequent deal-seeking online buyers". A name already taken gets the next trait.
    """
    names: dict[int, str] = {}
    for segment, row in profile.iterrows():
        ranked = row.abs().sort_values(ascending=False)
        words = [
            word
            for t in ranked.index
            if abs(row[t]) >= NAME_THRESHOLD and (word := _trait_word(t, row[t] > 0))
        ]
        take = 3
        while True:
            chosen = words[:take]
            channel = [w for w in chosen if w in ("online", "in-store")]
            body = [w for w in chosen if w not in channel] + channel
            name = " ".join([*body, "buyers"]) if body else "Typical buyers"
            name = name[0].upper() + name[1:]
            if name not in names.values() or take >= len(words):
                break
            take += 1
        base, n = name, 2
        while name in names.values():
            name, n = f"{base} ({n})", n + 1
        names[int(segment)] = name
    return names


def _trait_word(trait: str, high: bool) -> str | None:
    """A trait's word; a category says what a cluster favours, never what it avoids."""
    if trait.startswith(CATEGORY_PREFIX):
        return f"{trait.removeprefix(CATEGORY_PREFIX).replace('_', ' ')}-loving" if high else None
    return TRAIT_WORDS[trait][0 if high else 1]


def compare_methods(
    z: np.ndarray, kmeans_labels: np.ndarray, k: int, seed: int
) -> dict[str, float]:
    """A Gaussian mixture and HDBSCAN on the same sample: how they would have split it."""
    out: dict[str, float] = {"kmeans_silhouette": float(silhouette_score(z, kmeans_labels))}
    gmm = GaussianMixture(n_components=k, covariance_type="full", random_state=seed).fit(z)
    g = gmm.predict(z)
    out["gmm_bic"] = float(gmm.bic(z))
    out["gmm_clusters"] = float(len(set(g)))
    if len(set(g)) > 1:
        out["gmm_silhouette"] = float(silhouette_score(z, g))
    out["gmm_ari_vs_kmeans"] = float(adjusted_rand_score(kmeans_labels, g))
    density = HDBSCAN(min_cluster_size=max(10, len(z) // 50), min_samples=10, copy=True).fit(z)
    d = density.labels_
    clustered = d >= 0
    out["hdbscan_clusters"] = float(len(set(d[clustered])))
    out["hdbscan_noise_share"] = float(1.0 - clustered.mean())
    if len(set(d[clustered])) > 1:
        out["hdbscan_silhouette"] = float(silhouette_score(z[clustered], d[clustered]))
        out["hdbscan_ari_vs_kmeans"] = float(
            adjusted_rand_score(kmeans_labels[clustered], d[clustered])
        )
    return out


def silhouette_on(
    model: Segmenter, x: pd.DataFrame, space: Segmenter, seed: int = 7
) -> float | None:
    """Silhouette of `model`'s segments of the buyers in `x`, measured in `space`'s features.

    Two models judged on the same customers in the same space: how the challenger is compared
    with the champion.
    """
    buyers = x.loc[x["frequency"].to_numpy() > 0]
    if space.algorithm != "kmeans" or len(buyers) < 3:
        return None
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(len(buyers), min(SILHOUETTE_SAMPLE, len(buyers)), replace=False))
    sample = buyers.iloc[rows]
    labels = model.predict(sample)
    if len(set(labels.tolist())) < 2:
        return None
    return float(silhouette_score(space.prepare(sample), labels))
