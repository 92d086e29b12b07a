"""Pictures logged to MLflow: ROC, calibration, importance, projections and segment profiles.

matplotlib with the Agg backend (no display); each function returns a Figure for
mlflow.log_figure and the caller closes it.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn.calibration import calibration_curve  # noqa: E402
from sklearn.metrics import roc_curve  # noqa: E402


def roc(y: np.ndarray, scores: dict[str, np.ndarray], title: str):
    fig, ax = plt.subplots(figsize=(5.5, 5))
    for name, s in scores.items():
        fpr, tpr, _ = roc_curve(y, s)
        ax.plot(fpr, tpr, label=name, lw=2 if name == "model" else 1)
    ax.plot([0, 1], [0, 1], "k:", lw=0.8)
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title=title)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return fig


def calibration(y: np.ndarray, probabilities: dict[str, np.ndarray], title: str):
    fig, ax = plt.subplots(figsize=(5.5, 5))
    for name, p in probabilities.items():
        observed, predicted = calibration_curve(y, np.clip(p, 0, 1), n_bins=10, strategy="quantile")
        ax.plot(predicted, observed, "o-", ms=3, label=name)
    ax.plot([0, 1], [0, 1], "k:", lw=0.8)
    ax.set(xlabel="predicted probability", ylabel="observed rate", title=title)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    return fig


def importance(gain: pd.Series, labels: dict[str, str], title: str, top: int = 15):
    top_gain = gain.sort_values(ascending=True).tail(top)
    fig, ax = plt.subplots(figsize=(7, 0.32 * len(top_gain) + 1.2))
    ax.barh([labels.get(f, f) for f in top_gain.index], top_gain.to_numpy())
    ax.set(xlabel="total gain", title=title)
    fig.tight_layout()
    return fig


def projection(points: np.ndarray, segments: np.ndarray, names: dict[int, str], title: str):
    fig, ax = plt.subplots(figsize=(7, 5.5))
    for s in np.unique(segments):
        rows = segments == s
        ax.scatter(
            points[rows, 0], points[rows, 1], s=5, alpha=0.6, label=f"{s}: {names.get(int(s), s)}"
        )
    ax.set(title=title, xticks=[], yticks=[])
    ax.legend(fontsize=7, markerscale=3, loc="best")
    fig.tight_layout()
    return fig


def segment_profiles(
    profile: pd.DataFrame, names: dict[int, str], sizes: dict[int, int], labels: dict[str, str]
):
    """Heat map: each segment's centroid per trait in standard deviations from the average buyer."""
    fig, ax = plt.subplots(figsize=(1.2 * profile.shape[1] + 3, 0.55 * profile.shape[0] + 2))
    values = profile.to_numpy()
    limit = max(1.0, float(np.abs(values).max()))
    image = ax.imshow(values, cmap="RdBu_r", vmin=-limit, vmax=limit, aspect="auto")
    ax.set_xticks(
        range(profile.shape[1]),
        [labels.get(c, c) for c in profile.columns],
        rotation=35,
        ha="right",
        fontsize=8,
    )
    ax.set_yticks(
        range(profile.shape[0]),
        [f"{s} {names.get(int(s), s)} (n={sizes.get(int(s), 0):,})" for s in profile.index],
        fontsize=8,
    )
    for (i, j), v in np.ndenumerate(values):
        ax.text(j, i, f"{v:+.1f}", ha="center", va="center", fontsize=7)
    fig.colorbar(image, ax=ax, label="standard deviations from the average buyer")
    ax.set_title("Segment profiles")
    fig.tight_layout()
    return fig
