"""Why is this customer at risk? The three features that push their churn score up the most.

XGBoost's own per-row contributions (TreeSHAP, in log-odds) are additive: the features with the
largest positive contributions are the ones that raise this customer's score above the average
customer's. Each reason reads "<what the feature means>: <the customer's value>", e.g.
"days since last purchase: 212". Vectorised per feature, so a million rows take seconds.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ml.data import LABELS

TOP_REASONS = 3
# Shown with two decimals; everything else is a count, a number of days or money (rounded).
FRACTIONS = {
    "online_share",
    "discount_share",
    "purchases_per_year",
    "email_opens_per_week",
    "browse_sessions_per_month",
    "avg_basket_lines",
    "bgnbd_p_alive",
    "bgnbd_p_no_purchase",
    "bgnbd_expected_purchases",
    "purchase_gap_ratio",
    "email_silence",
    "browse_silence",
}
NEVER = 3650.0


def _format(feature: str, values: pd.Series) -> pd.Series:
    label = LABELS.get(feature, feature.replace("_", " "))
    if feature in FRACTIONS:
        text = values.round(2).map("{:.2f}".format)
    else:
        text = values.round(0).astype("int64").astype("string")
    if feature.startswith("days_since") or feature == "recency_days":
        text = text.where(values < NEVER, "never")
    return label + ": " + text


def top_reasons(
    contributions: pd.DataFrame, values: pd.DataFrame, k: int = TOP_REASONS
) -> pd.DataFrame:
    """Columns reason_1..reason_k: the k largest positive contributions per row (else null)."""
    c = contributions.to_numpy()
    order = np.argsort(-c, axis=1, kind="stable")[:, :k]
    out = pd.DataFrame(index=contributions.index)
    names = np.asarray(contributions.columns)
    for rank in range(k):
        column = pd.Series(pd.NA, index=contributions.index, dtype="string")
        chosen = order[:, rank]
        positive = c[np.arange(len(c)), chosen] > 0
        for j in np.unique(chosen[positive]):
            rows = positive & (chosen == j)
            feature = names[j]
            column[rows] = _format(feature, values.loc[rows, feature].astype("float64"))
        out[f"reason_{rank + 1}"] = column
    return out
