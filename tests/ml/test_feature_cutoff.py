"""No feature reads past its cutoff: features built after deleting everything later are equal."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd

from journeys.transform import invoke
from journeys.warehouse import connect
from ml.data import FEATURES, category_columns, load_features


def test_no_feature_reads_past_its_cutoff(nightly_run, warehouse_copy) -> None:
    home, _ = nightly_run
    settings, run_date = warehouse_copy
    cutoff = run_date - timedelta(days=settings.churn_horizon_days)  # the training/holdout cutoff
    with connect(home.settings) as con:
        expected = load_features(con, cutoff)
    # Erase the future from everything customer_features and customer_category_mix read: orders
    # (their lines only count through them) and web/e-mail events after the cutoff; then
    # rebuild the features for it.
    with connect(settings) as con:
        later_orders = con.execute(
            "select count(*) from marts.fct_orders where ordered_on > ?", [cutoff]
        ).fetchall()[0][0]
        later_events = con.execute(
            "select count(*) from staging.stg_web__events where cast(event_at as date) > ?",
            [cutoff],
        ).fetchall()[0][0]
        assert later_orders > 0 and later_events > 0  # there is a future to leak
        con.execute("delete from marts.fct_orders where ordered_on > ?", [cutoff])
        con.execute(
            "delete from staging.stg_web__events where cast(event_at as date) > ?", [cutoff]
        )
    invoke(settings, ["run", "--select", "customer_features", "customer_category_mix"], cutoff)
    with connect(settings) as con:
        rebuilt = load_features(con, cutoff)
    assert len(expected) > 0
    columns = [*FEATURES, *category_columns(expected)]
    assert len(columns) > len(FEATURES)  # the category mix is checked too
    pd.testing.assert_frame_equal(
        rebuilt.set_index("customer_id")[columns],
        expected.set_index("customer_id")[columns],
        check_exact=False,
        rtol=1e-9,
    )
