"""Features, lifecycle stages and rule segments after a nightly run on the sample (#9)."""

from __future__ import annotations

import yaml

from journeys.segments import check_segments
from journeys.settings import DBT_PROJECT_DIR
from journeys.warehouse import connect

DOCUMENTED = {
    "marts.customer_features": ("models/marts/_marts__models.yml", "customer_features"),
    "marts.fct_customer_daily": ("models/marts/_marts__models.yml", "fct_customer_daily"),
    "marts.customer_lifecycle_history": (
        "models/marts/_marts__models.yml",
        "customer_lifecycle_history",
    ),
    "marts.customer_lifecycle": ("models/marts/_marts__models.yml", "customer_lifecycle"),
    "marts.customer_rule_segments": (
        "models/marts/rule_segments/_rule_segments__models.yml",
        "customer_rule_segments",
    ),
}


def test_every_column_is_documented(nightly_run) -> None:
    home, _ = nightly_run
    with connect(home.settings) as con:
        for table, (docs, model) in DOCUMENTED.items():
            schema, name = table.split(".")
            actual = [
                r[0]
                for r in con.execute(
                    "select column_name from information_schema.columns "
                    "where table_schema = ? and table_name = ? order by ordinal_position",
                    [schema, name],
                ).fetchall()
            ]
            spec = yaml.safe_load((DBT_PROJECT_DIR / docs).read_text())
            [entry] = [m for m in spec["models"] if m["name"] == model]
            documented = [c["name"] for c in entry["columns"]]
            assert sorted(actual) == sorted(documented), (table, actual)


def test_lifecycle_agrees_between_features_history_and_daily_fact(nightly_run) -> None:
    home, _ = nightly_run
    with connect(home.settings) as con:
        stages = con.execute(
            "select count(*), count(*) filter (where f.lifecycle_stage = l.lifecycle_stage) "
            "from marts.customer_features as f inner join marts.customer_lifecycle as l "
            "on f.customer_id = l.customer_id and f.snapshot_date = l.snapshot_date"
        ).fetchall()[0]
        unmatched = con.execute(
            "select count(*) from marts.customer_lifecycle as l where not exists (select 1 from "
            "marts.customer_features as f where f.customer_id = l.customer_id "
            "and f.snapshot_date = l.snapshot_date)"
        ).fetchall()[0][0]
        spend = con.execute(
            "select count(*) from marts.customer_features as f left join ("
            "  select customer_id, sum(completed_amount) as amount, sum(completed_orders) as n"
            "  from marts.fct_customer_daily where day <= ? group by customer_id"
            ") as d on f.customer_id = d.customer_id where f.snapshot_date = ? "
            "and (abs(f.monetary - coalesce(d.amount, 0)) > 0.01 "
            "or f.frequency <> coalesce(d.n, 0))",
            [home.run_date, home.run_date],
        ).fetchall()[0][0]
        present = {
            r[0]
            for r in con.execute(
                "select distinct lifecycle_stage from marts.customer_lifecycle_history"
            ).fetchall()
        }
    assert stages[0] > 0 and stages[0] == stages[1]
    assert unmatched == 0
    assert spend == 0
    assert {"prospect", "active", "lapsed"} <= present


def test_rule_segments_hold_exactly_the_customers_matching_each_condition(nightly_run) -> None:
    home, _ = nightly_run
    segments = check_segments(home.settings)
    with connect(home.settings) as con:
        for s in segments:
            expected = {
                r[0]
                for r in con.execute(
                    f"select customer_id from marts.customer_features "
                    f"where snapshot_date = ? and ({s.condition})",
                    [home.run_date],
                ).fetchall()
            }
            rows = con.execute(
                "select customer_id, channel, priority from marts.customer_rule_segments "
                "where segment = ?",
                [s.name],
            ).fetchall()
            assert {r[0] for r in rows} == expected, s.name
            assert {(r[1], r[2]) for r in rows} <= {(s.channel, s.priority)}
        top = con.execute(
            "select count(distinct customer_id), count(*) filter (where is_top_priority) "
            "from marts.customer_rule_segments"
        ).fetchall()[0]
        sizes = dict(
            con.execute(
                "select segment, count(*) from marts.customer_rule_segments group by 1"
            ).fetchall()
        )
    assert top[0] == top[1]  # one top-priority segment per customer
    assert sizes.get("vip", 0) > 0 and sizes.get("win_back", 0) > 0, sizes
