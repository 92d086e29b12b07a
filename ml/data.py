"""Reading model inputs from the warehouse: features per snapshot and what happened after it.

Features come from marts.customer_features, which only reads events on or before its snapshot
date; outcomes (purchases and spend in the H days after a cutoff) come from marts.fct_orders and
are only ever joined to features of that cutoff, never used as features.
"""

from __future__ import annotations

import re
from datetime import date, timedelta

import duckdb
import numpy as np
import pandas as pd

# Columns read from marts.customer_features.
FEATURES = [
    "recency_days",
    "frequency",
    "monetary",
    "tenure_days",
    "avg_order_value",
    "frequency_90d",
    "monetary_90d",
    "online_share",
    "web_sessions_30d",
    "product_views_30d",
    "cart_adds_30d",
    "email_opens_90d",
    "email_clicks_90d",
    "days_since_last_web_event",
    "days_since_first_purchase",
    "avg_days_between_purchases",
    "frequency_365d",
    "monetary_365d",
    "avg_basket_lines",
    "discount_share",
    "distinct_categories",
    "browse_sessions_90d",
    "browse_sessions_365d",
    "email_opens_30d",
    "email_opens_365d",
    "days_since_last_browse",
    "days_since_last_email_open",
]
# Rates derived in Python from the columns above (comparable across tenures).
DERIVED = ["purchases_per_year", "email_opens_per_week", "browse_sessions_per_month"]
MATRIX_COLUMNS = FEATURES + DERIVED

# "Never" for a days-since column: longer ago than any history we keep.
NEVER_DAYS = 3650.0

# What a feature means, for reasons and charts a marketer reads.
LABELS = {
    "recency_days": "days since last purchase",
    "frequency": "purchases to date",
    "monetary": "total spend",
    "tenure_days": "days since first seen",
    "avg_order_value": "average order value",
    "frequency_90d": "purchases in the last 90 days",
    "monetary_90d": "spend in the last 90 days",
    "online_share": "share of purchases online",
    "web_sessions_30d": "web sessions in the last 30 days",
    "product_views_30d": "product views in the last 30 days",
    "cart_adds_30d": "add-to-carts in the last 30 days",
    "email_opens_90d": "newsletter opens in the last 90 days",
    "email_clicks_90d": "newsletter clicks in the last 90 days",
    "days_since_last_web_event": "days since last web or e-mail activity",
    "days_since_first_purchase": "days since first purchase",
    "avg_days_between_purchases": "average days between purchases",
    "frequency_365d": "purchases in the last year",
    "monetary_365d": "spend in the last year",
    "avg_basket_lines": "products per basket",
    "discount_share": "share of online items bought on discount",
    "distinct_categories": "product categories bought",
    "browse_sessions_90d": "browsing sessions in the last 90 days",
    "browse_sessions_365d": "browsing sessions in the last year",
    "email_opens_30d": "newsletter opens in the last 30 days",
    "email_opens_365d": "newsletter opens in the last year",
    "days_since_last_browse": "days since last browsing session",
    "days_since_last_email_open": "days since last newsletter open",
    "purchases_per_year": "purchases per year",
    "email_opens_per_week": "newsletter opens per week",
    "browse_sessions_per_month": "browsing sessions per month",
    "bgnbd_p_alive": "purchase rhythm: probability still active",
    "bgnbd_p_no_purchase": "purchase rhythm: probability of no purchase",
    "bgnbd_expected_purchases": "purchase rhythm: expected purchases",
    "purchase_gap_ratio": "usual gaps between purchases since the last one",
    "email_silence": "newsletter opens missed since the last one",
    "browse_silence": "browsing sessions missed since the last one",
}


def load_features(con: duckdb.DuckDBPyConnection, snapshot_date: date) -> pd.DataFrame:
    """Features of every customer as of `snapshot_date`, ordered by customer_id.

    Plus one `category_share_<category>` column per catalog category (category_mix).
    """
    cols = ", ".join(FEATURES)
    features = con.execute(
        f"select customer_id, {cols} from marts.customer_features "
        "where snapshot_date = ? order by customer_id",
        [snapshot_date],
    ).df()
    return features.merge(category_mix(con, snapshot_date), on="customer_id", how="left")


CATEGORY_PREFIX = "category_share_"


def category_column(category: str) -> str:
    """Column name of a category's share: lower case, anything but letters and digits as _."""
    return CATEGORY_PREFIX + re.sub(r"[^0-9a-z]+", "_", str(category).lower()).strip("_")


# A purchased line says more about a customer's taste than a product view.
PURCHASE_WEIGHT = 3.0
# Pseudo-counts of the population's category mix added to every customer's own: one or two
# items say little, so a sparse customer's shares lean towards the population's.
CATEGORY_PRIOR_STRENGTH = 2.0


def category_mix(con: duckdb.DuckDBPyConnection, snapshot_date: date) -> pd.DataFrame:
    """Each customer's interest split over the catalog's categories (shares summing to 1).

    Interest is purchased lines (weighted PURCHASE_WEIGHT) plus product views, from
    marts.customer_category_mix: what people buy and look at. Shares are smoothed towards the
    population's mix with CATEGORY_PRIOR_STRENGTH pseudo-counts. Customers with no interest
    at all are absent (the caller's left join leaves them null); one column per category with
    any interest by the snapshot, in name order.
    """
    long = con.execute(
        """
        select customer_id, category,
               sum(? * purchased_lines + product_views) as interest
        from marts.customer_category_mix
        where snapshot_date = ?
        group by customer_id, category
        """,
        [PURCHASE_WEIGHT, snapshot_date],
    ).df()
    if long.empty:
        return pd.DataFrame(columns=["customer_id"])
    columns = sorted(set(long["category"].map(category_column)))
    long["column"] = long["category"].map(category_column)
    # Two categories may share a column name ("Home & Garden", "home garden"): sum them.
    wide = (
        long.groupby(["customer_id", "column"])["interest"]
        .sum()
        .unstack("column", fill_value=0)
        .reindex(columns=columns, fill_value=0)
        .astype("float64")
    )
    population = wide.sum(axis=0) / wide.to_numpy().sum()
    smoothed = (wide + CATEGORY_PRIOR_STRENGTH * population).div(
        wide.sum(axis=1) + CATEGORY_PRIOR_STRENGTH, axis=0
    )
    smoothed.columns.name = None
    return smoothed.reset_index()


def category_columns(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if c.startswith(CATEGORY_PREFIX)]


def outcomes(con: duckdb.DuckDBPyConnection, cutoff: date, horizon_days: int) -> pd.DataFrame:
    """Completed purchases and spend of every customer in (cutoff, cutoff + horizon]."""
    return con.execute(
        """
        select customer_id,
               count(*) filter (
                   where status = 'completed' and ordered_on > ? and ordered_on <= ?
               ) as purchases_after,
               coalesce(sum(amount) filter (
                   where status = 'completed' and ordered_on > ? and ordered_on <= ?
               ), 0) as spend_after
        from marts.fct_orders
        where customer_id is not null
        group by customer_id
        """,
        [cutoff, cutoff + timedelta(days=horizon_days)] * 2,
    ).df()


def labelled(
    con: duckdb.DuckDBPyConnection, cutoff: date, horizon_days: int, top_share: float
) -> pd.DataFrame:
    """Features at `cutoff` with both labels for the H days after it.

    - churned: 1 when the customer made no completed purchase in (cutoff, cutoff + H].
    - high_value: 1 when their spend in that window is positive and among the top `top_share`
      of all customers known at the cutoff.
    """
    frame = load_features(con, cutoff).merge(
        outcomes(con, cutoff, horizon_days), on="customer_id", how="left"
    )
    frame["purchases_after"] = frame["purchases_after"].fillna(0)
    frame["spend_after"] = frame["spend_after"].fillna(0.0)
    frame["churned"] = (frame["purchases_after"] == 0).astype("int64")
    frame["high_value"] = high_value_label(frame["spend_after"], top_share)
    return frame


def high_value_label(spend: pd.Series, top_share: float) -> pd.Series:
    """1 for the top `top_share` of spenders (ties at the threshold included), 0 otherwise."""
    if len(spend) == 0:
        return spend.astype("int64")
    threshold = float(np.quantile(spend.to_numpy(), 1.0 - top_share))
    return ((spend > 0) & (spend >= threshold)).astype("int64")


def model_matrix(features: pd.DataFrame) -> pd.DataFrame:
    """Numeric matrix with missing values filled on purpose, plus rates comparable across tenure.

    MATRIX_COLUMNS, then the category shares of `features` (if it has them).

    Never bought: recency and days since first purchase are tenure + 1 (longer ago than anything
    they could have bought); no web or e-mail activity: days since is 10 years; no purchase:
    average order value 0 and online share 0.5 (no evidence either way); no online items:
    discount share 0 (nothing bought on discount); one purchase: days between purchases equal to
    days since that purchase (the gap so far).
    """
    x = features[FEATURES].astype("float64").copy()
    tenure = x["tenure_days"].fillna(0).clip(lower=0)
    x["tenure_days"] = tenure
    x["recency_days"] = x["recency_days"].fillna(tenure + 1)
    x["days_since_first_purchase"] = x["days_since_first_purchase"].fillna(tenure + 1)
    x["avg_days_between_purchases"] = x["avg_days_between_purchases"].fillna(
        x["days_since_first_purchase"]
    )
    for col in (
        "days_since_last_web_event",
        "days_since_last_browse",
        "days_since_last_email_open",
    ):
        x[col] = x[col].fillna(NEVER_DAYS)
    x["avg_order_value"] = x["avg_order_value"].fillna(0.0)
    x["online_share"] = x["online_share"].fillna(0.5)
    x["discount_share"] = x["discount_share"].fillna(0.0)
    x["avg_basket_lines"] = x["avg_basket_lines"].fillna(0.0)
    # Rates over the time the customer could have shown the behaviour (at least a week).
    year_window = np.clip(tenure + 1, 7, 365)
    x["purchases_per_year"] = x["frequency"].fillna(0) / np.maximum(tenure + 1, 30) * 365
    x["email_opens_per_week"] = x["email_opens_365d"].fillna(0) / year_window * 7
    x["browse_sessions_per_month"] = x["browse_sessions_365d"].fillna(0) / year_window * 30
    x = x.fillna(0.0).replace([np.inf, -np.inf], 0.0)
    # Category shares: 0 everywhere for a customer with no purchase or view (no evidence).
    shares = features[category_columns(features)].astype("float64").fillna(0.0)
    return pd.concat([x[MATRIX_COLUMNS], shares.set_axis(x.index)], axis=1)


def history(x: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """BG/NBD history (purchases, time of the last, time observed) in days from first seen."""
    T = x["tenure_days"].to_numpy(dtype=float) + 1.0  # to the end of the snapshot day
    freq = x["frequency"].to_numpy(dtype=float)
    last = np.clip(T - 1.0 - x["recency_days"].to_numpy(dtype=float), 0.0, T)
    # A purchase's time of day is unknown: put it mid-day.
    t_x = np.where(freq > 0, np.minimum(last + 0.5, T), 0.0)
    return freq, t_x, T
