"""`journeys evaluate`'s supervised archetype ceiling on small hand-made warehouses."""

from __future__ import annotations

from datetime import date

import duckdb
import numpy as np
import pandas as pd
import pytest

from journeys.evaluate import archetype_ceiling

PUBLISHED = date(2025, 12, 30)


@pytest.fixture
def con() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("create schema marts")
    con.execute(
        "create table marts.customer_features "
        "(customer_id varchar, snapshot_date date, frequency double, monetary double)"
    )
    return con


def _customers(n: int) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "customer_id": [f"c{i}" for i in range(n)],
            "snapshot_date": PUBLISHED,
            "archetype": rng.choice(["loyal", "occasional"], n),
            "segment_id": rng.integers(1, 4, n),
        }
    )


def _features(con, customers: pd.DataFrame, day: date) -> None:
    rows = [
        (c, day, float(a == "loyal") * 5 + i % 2, 10.0 * (a == "loyal"))
        for i, (c, a) in enumerate(
            zip(customers["customer_id"], customers["archetype"], strict=True)
        )
    ]
    con.executemany("insert into marts.customer_features values (?, ?, ?, ?)", rows)


def test_no_ceiling_when_the_features_are_for_a_day_not_yet_published(con) -> None:
    """Between transform and publish the features are a day ahead of the published segments:
    nothing to judge, and evaluate must still answer (it crashed on an empty frame)."""
    customers = _customers(60)
    _features(con, customers, date(2025, 12, 31))
    assert archetype_ceiling(con, customers) == {}


def test_the_ceiling_finds_archetypes_the_features_show(con) -> None:
    customers = _customers(90)
    _features(con, customers, PUBLISHED)
    ceiling = archetype_ceiling(con, customers)
    assert ceiling["archetype_ceiling_ari"] == pytest.approx(1.0)
