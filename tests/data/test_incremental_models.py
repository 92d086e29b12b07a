"""The daily models built a day at a time equal a full refresh, table for table.

One home receives its exports day by day (the last delivery carries an order placed days
earlier, a buyer turned test account, a product moved to another category, a corrected
order line and a late web event) and is built incrementally, re-running the last day once
more; then the same home is rebuilt with --full-refresh over the same days and every table is compared, row for
row. On the way, rows of days nothing touched are marked to prove they were not rebuilt.
"""

from __future__ import annotations

import csv
import gzip
import json
from datetime import date, timedelta

import duckdb
import pytest

from journeys.identity.resolve import resolve_identities
from journeys.landing import land_exports
from journeys.settings import Settings, get_settings
from journeys.transform import invoke
from journeys.warehouse import connect

START = date(2025, 1, 1)
DAYS = 40  # more than the 30-day window: days leave it between two builds
LAST = START + timedelta(days=DAYS - 1)
HISTORY_DAYS = 10
INCREMENTAL_DAYS = 3  # LAST-2 (first build), LAST-1, LAST
LATE_ORDER_DAY = LAST - timedelta(days=6)
TABLES = {
    "intermediate.int_web_cookie_days": ["anonymous_id", "day"],
    "marts.fct_customer_daily": ["customer_id", "day"],
    "marts.customer_lifecycle_history": ["customer_id", "day"],
    "marts.customer_lifecycle": ["customer_id"],
    "marts.customer_features": ["customer_id", "snapshot_date"],
    "marts.customer_category_mix": ["customer_id", "snapshot_date", "category"],
    "marts.customer_rule_segments": ["customer_id", "segment"],
}


def _build(settings: Settings, day: date, full_refresh: bool = False) -> None:
    """What `journeys transform` builds, without the data tests (the test checks the data)."""
    land_exports(settings, up_to=day)
    invoke(settings, ["run", "--select", "staging"], day)
    resolve_identities(settings, day)
    refresh = ["--full-refresh"] if full_refresh else []
    invoke(settings, ["run", "--select", "intermediate", "marts", *refresh], day)


def _late_order(settings: Settings) -> str:
    """Deliver, with the last day's exports, an order placed on LATE_ORDER_DAY."""
    first = settings.exports / "shop" / START.isoformat() / "orders.csv"
    with first.open() as f:
        row = next(r for r in csv.DictReader(f) if r["customer_email"] and r["status"])
    row.update(
        order_id="LATE-0001",
        ordered_at=f"{LATE_ORDER_DAY.isoformat()}T10:00:00Z",
        updated_at=f"{LAST.isoformat()}T06:00:00Z",
        status="completed",
        total_amount="999.00",
        currency="EUR",
    )
    _deliver(settings, "shop", "orders-late.csv", row)
    return row["customer_email"]


def _turn_test_account(settings: Settings, spared_email: str) -> str:
    """Deliver, with the last day's exports, a CRM update flagging a buyer as a test account,
    and return their CRM id.

    Their daily rows built on earlier days have no source left: the incremental run must delete
    them (and their history), as a full refresh never builds them.
    """
    crm = settings.exports / "crm" / START.isoformat() / "customers.csv"
    with crm.open() as f:
        records = {r["email"]: r for r in csv.DictReader(f) if r["email"]}
    for day in range(DAYS - 3):
        delivery = (START + timedelta(days=day)).isoformat()
        with (settings.exports / "shop" / delivery / "orders.csv").open() as f:
            emails = [r["customer_email"] for r in csv.DictReader(f)]
        buyer = next((e for e in emails if e in records and e != spared_email), None)
        if buyer:
            break
    assert buyer, "no CRM customer with an order in the sample"
    record = {**records[buyer], "updated_at": f"{LAST.isoformat()}T07:00:00Z"}
    record["is_test_account"] = "true"
    _deliver(settings, "crm", "customers-flagged.csv", record)
    return record["crm_id"]


def _move_product_and_correct_a_line(settings: Settings) -> None:
    """Deliver, with the last day's exports, a bought product moved to another category and a
    corrected line of an early order (another product): the features and category mix of
    whoever bought them must change, though none of their days did."""
    with gzip.open(settings.exports / "shop" / START.isoformat() / "order_lines.csv.gz", "rt") as f:
        first_line, *others = list(csv.DictReader(f))[:50]
    catalog = settings.exports / "catalog" / START.isoformat() / "products.parquet"
    products = duckdb.sql(
        f"select sku, category, name, brand, cast(list_price as varchar) as list_price, currency, "
        f"lower(cast(is_active as varchar)) as is_active from '{catalog}' order by sku"
    ).fetchdf()
    bought = products[products["sku"] == first_line["sku"]].iloc[0].to_dict()
    other = products[products["category"] != bought["category"]].iloc[0].to_dict()
    _deliver(settings, "catalog", "products-moved.csv", {**bought, "category": other["category"]})
    line = next(
        r for r in others if r["order_id"] != first_line["order_id"] and r["sku"] != other["sku"]
    )
    _deliver(settings, "shop", "order_lines-corrected.csv", {**line, "sku": other["sku"]})


def _late_web_event(settings: Settings) -> None:
    """Deliver, with the last day's exports, a cart add in a new session on a day and cookie
    delivered days earlier: that cookie's day is summed again from all its events."""
    day = LAST - timedelta(days=5)
    with gzip.open(settings.exports / "web" / day.isoformat() / "events.jsonl.gz", "rt") as f:
        event = next(e for e in map(json.loads, f) if e["sku"] and e["anonymous_id"])
    event.update(
        event_id="LATE-EV-0001",
        event_type="add_to_cart",
        session_id="LATE-SESSION",
        event_at=event["event_at"].replace("Z", "").split(".")[0][:-2] + "59Z",
    )
    _deliver(settings, "web", "events-late.csv", {k: v or "" for k, v in event.items()})


def _deliver(settings: Settings, source: str, name: str, row: dict[str, str]) -> None:
    """One more file of one row in the last day's delivery of `source`."""
    path = settings.exports / source / LAST.isoformat() / name
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(row))
        writer.writeheader()
        writer.writerow(row)


def _rows(settings: Settings, table: str, key: list[str]) -> list[tuple]:
    """The table's rows, but for when they were built (built_at)."""
    with connect(settings) as con:
        schema, name = table.split(".")
        columns = [
            row[0]
            for row in con.execute(
                "select column_name from information_schema.columns "
                "where table_schema = ? and table_name = ? and column_name <> 'built_at' "
                "order by ordinal_position",
                [schema, name],
            ).fetchall()
        ]
        rows = con.execute(
            f"select {', '.join(columns)} from {table} order by {', '.join(key)}"
        ).fetchall()
    # Lists (int_web_cookie_days) as tuples, so rows can be compared as sets.
    return [tuple(tuple(v) if isinstance(v, list) else v for v in row) for row in rows]


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    from journeys.sample import generate

    path = tmp_path_factory.mktemp("incremental")
    settings = get_settings(
        {"JOURNEYS_HOME": str(path), "JOURNEYS_HISTORY_DAYS": str(HISTORY_DAYS)}
    )
    generate(
        customers=300,
        days=DAYS,
        start=START,
        seed=11,
        exports_dir=settings.exports,
        truth_dir=settings.truth,
        progress=False,
    )
    return settings


def test_incremental_days_equal_a_full_refresh(home: Settings) -> None:
    late_email = _late_order(home)
    flagged_crm_id = _turn_test_account(home, spared_email=late_email)
    _move_product_and_correct_a_line(home)
    _late_web_event(home)
    first_day = LAST - timedelta(days=INCREMENTAL_DAYS - 1)
    for day in [first_day + timedelta(days=i) for i in range(INCREMENTAL_DAYS - 1)]:
        _build(home, day)

    # Mark rows of old days no new delivery touches: an incremental run must leave them alone.
    untouched_day = first_day - timedelta(days=8)
    with connect(home) as con:
        history_mark = con.execute(
            "select customer_id, orders_to_date from marts.customer_lifecycle_history "
            "where day = ? order by customer_id limit 1",
            [untouched_day],
        ).fetchall()[0]
        daily_mark = con.execute(
            "select customer_id, day, web_sessions from marts.fct_customer_daily "
            "order by day, customer_id limit 1"
        ).fetchall()[0]
        con.execute(
            "update marts.customer_lifecycle_history set orders_to_date = -1 "
            "where customer_id = ? and day = ?",
            [history_mark[0], untouched_day],
        )
        con.execute(
            "update marts.fct_customer_daily set web_sessions = -1 "
            "where customer_id = ? and day = ?",
            daily_mark[:2],
        )

    with connect(home) as con:
        flagged = con.execute(
            "select customer_id from marts.customer_identifiers "
            "where source = 'crm' and source_key = ?",
            [flagged_crm_id],
        ).fetchall()[0][0]
        assert con.execute(
            "select count(*) from marts.fct_customer_daily where customer_id = ?", [flagged]
        ).fetchall()[0][0]
    _build(home, LAST)
    _build(home, LAST)  # re-running a day replaces it: no duplicates, same tables

    with connect(home) as con:
        # Days nothing touched were not rebuilt: the marks are still there ...
        assert con.execute(
            "select count(*) from marts.customer_lifecycle_history where orders_to_date = -1"
        ).fetchall() == [(1,)]
        assert con.execute(
            "select count(*) from marts.fct_customer_daily where web_sessions = -1"
        ).fetchall() == [(1,)]
        # The customer turned test account lost every row the earlier runs built for them.
        for table in ("fct_customer_daily", "customer_lifecycle_history", "customer_features"):
            assert not con.execute(
                f"select count(*) from marts.{table} where customer_id = ?", [flagged]
            ).fetchall()[0][0], table
        # Feature snapshots: customers nothing touched were carried over, the others computed.
        carried, computed = con.execute(
            "select count(carried_from), count(*) - count(carried_from) "
            "from intermediate.int_customer_features_aggregated where snapshot_date = ?",
            [LAST],
        ).fetchall()[0]
        assert carried > 0 and computed > 0, (carried, computed)
        # ... and the late order was picked up, on the day it was placed, from then on.
        late = con.execute(
            "select daily.completed_amount, daily.day from marts.fct_customer_daily as daily "
            "inner join marts.fct_orders as orders on orders.customer_id = daily.customer_id "
            "and orders.ordered_on = daily.day where orders.order_id = 'LATE-0001'"
        ).fetchall()
        assert late and late[0][1] == LATE_ORDER_DAY and late[0][0] >= 999.0, (late_email, late)
        assert (
            con.execute(
                "select min(history.orders_to_date) "
                "from marts.customer_lifecycle_history as history "
                "inner join marts.fct_orders as orders on orders.customer_id = history.customer_id "
                "where orders.order_id = 'LATE-0001' and history.day >= ?",
                [LATE_ORDER_DAY],
            ).fetchall()[0][0]
            >= 1
        )
        # Take the marks out again, so the comparison checks everything else.
        con.execute(
            "update marts.customer_lifecycle_history set orders_to_date = ? "
            "where customer_id = ? and day = ?",
            [history_mark[1], history_mark[0], untouched_day],
        )
        con.execute(
            "update marts.fct_customer_daily set web_sessions = ? "
            "where customer_id = ? and day = ?",
            [daily_mark[2], *daily_mark[:2]],
        )

    incremental = {table: _rows(home, table, key) for table, key in TABLES.items()}
    full = get_settings(
        {
            "JOURNEYS_HOME": str(home.home),
            "JOURNEYS_HISTORY_DAYS": str(HISTORY_DAYS + INCREMENTAL_DAYS - 1),
        }
    )
    _build(full, LAST, full_refresh=True)
    for table, key in TABLES.items():
        rebuilt = _rows(full, table, key)
        assert rebuilt, f"{table} is empty"
        assert len(set(rebuilt)) == len(rebuilt), f"{table} has duplicate rows"
        assert incremental[table] == rebuilt, f"{table}: incremental days != full refresh"

    with connect(full) as con:
        # The daily fact holds every completed order of a real customer exactly once.
        daily, orders = con.execute(
            "select (select sum(completed_orders) from marts.fct_customer_daily), "
            "(select count(*) from marts.fct_orders as o inner join marts.dim_customers as c "
            "on o.customer_id = c.customer_id where o.status = 'completed' "
            "and not c.is_test_account and o.ordered_on <= ?)",
            [LAST],
        ).fetchall()[0]
    assert daily == orders > 0
    history_days = {r[1] for r in incremental["marts.customer_lifecycle_history"]}
    assert min(history_days) == first_day - timedelta(days=HISTORY_DAYS - 1)
    assert max(history_days) == LAST
