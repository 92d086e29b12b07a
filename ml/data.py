"""Reading model inputs from the warehouse: features per snapshot and churn labels."""

from __future__ import annotations

from datetime import date, timedelta

import duckdb
import numpy as np
import pandas as pd

# Behaviour features the models see; all come from marts.customer_features.
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
]


def load_features(con: duckdb.DuckDBPyConnection, snapshot_date: date) -> pd.DataFrame:
    """Features of every customer as of `snapshot_date`, ordered by customer_id."""
    cols = ", ".join(FEATURES)
    return con.execute(
        f"select customer_id, {cols} from marts.customer_features "
        "where snapshot_date = ? order by customer_id",
        [snapshot_date],
    ).df()


def churn_labels(con: duckdb.DuckDBPyConnection, cutoff: date, horizon_days: int) -> pd.DataFrame:
    """churned = 1 when a customer made no completed purchase in (cutoff, cutoff + horizon]."""
    return con.execute(
        """
        select customer_id,
               case when count(*) filter (
                   where status = 'completed' and ordered_on > ? and ordered_on <= ?
               ) > 0 then 0 else 1 end as churned
        from marts.fct_orders
        where customer_id is not null
        group by customer_id
        """,
        [cutoff, cutoff + timedelta(days=horizon_days)],
    ).df()


def model_matrix(features: pd.DataFrame) -> pd.DataFrame:
    """Numeric matrix with missing values filled on purpose.

    Never bought: recency is set to tenure + 1 (longer ago than anything they could have
    bought); no web activity: days since the last web event is set to 10 years; no purchase:
    average order value 0 and online share 0.5 (no evidence either way).
    """
    x = features[FEATURES].astype("float64").copy()
    x["recency_days"] = x["recency_days"].fillna(x["tenure_days"].fillna(0) + 1)
    x["days_since_last_web_event"] = x["days_since_last_web_event"].fillna(3650.0)
    x["avg_order_value"] = x["avg_order_value"].fillna(0.0)
    x["online_share"] = x["online_share"].fillna(0.5)
    return x.fillna(0.0).replace([np.inf, -np.inf], 0.0)
