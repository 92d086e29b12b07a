"""The Great Expectations gate: good marts pass, bad rows block publication, warnings don't."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from expectations.gate import QualityGateError, run_checkpoint, validate_warehouse
from journeys.settings import REPO_ROOT, Settings, get_settings

RUN_DATE = date(2024, 3, 31)
OLD_SNAPSHOT = date(2024, 1, 1)

SCHEMA = """
create schema marts;
create table marts.fct_orders (
    order_id varchar, customer_id varchar, channel varchar, ordered_at timestamp,
    status varchar, amount double
);
create table marts.customer_features (
    customer_id varchar, snapshot_date date, recency_days integer, frequency integer,
    monetary double, tenure_days integer, avg_basket double
);
"""

GOOD_ORDERS = """
insert into marts.fct_orders values
    ('o1', 'c1', 'online', timestamp '2024-03-01 10:00:00', 'completed', 120.5),
    ('o2', 'c1', 'store',  timestamp '2024-03-05 12:30:00', 'refunded',  40.0),
    ('o3', null, 'store',  timestamp '2024-03-06 09:15:00', 'completed', 12.0),
    ('o4', 'c2', 'online', timestamp '2024-03-10 18:00:00', 'cancelled', 0.0),
    ('o5', 'c3', 'online', timestamp '2024-03-20 08:00:00', 'completed', 999.99);
"""

GOOD_FEATURES = f"""
insert into marts.customer_features values
    ('c1', date '{RUN_DATE}', 26, 2, 160.5, 400, 80.25),
    ('c2', date '{RUN_DATE}', 21, 1, 0.0,   90,  0.0),
    ('c3', date '{RUN_DATE}', 11, 1, 999.99, 15, 999.99),
    ('c4', date '{RUN_DATE}', null, 0, 0.0, 5,   null),
    ('c1', date '{OLD_SNAPSHOT}', 3, 1, 120.5, 310, 120.5);
"""

# name -> (SQL injecting the bad rows, the line the gate's message must contain)
BAD_ROWS = {
    "duplicate order_id": (
        "insert into marts.fct_orders values "
        "('o1', 'c2', 'online', timestamp '2024-03-11 10:00:00', 'completed', 5.0)",
        "marts.fct_orders.order_id: expect_column_values_to_be_unique",
    ),
    "negative amount": (
        "insert into marts.fct_orders values "
        "('o6', 'c2', 'store', timestamp '2024-03-12 10:00:00', 'refunded', -30.0)",
        "marts.fct_orders.amount: expect_column_values_to_be_between",
    ),
    "unknown channel": (
        "insert into marts.fct_orders values "
        "('o7', 'c3', 'marketplace', timestamp '2024-03-13 10:00:00', 'completed', 8.0)",
        "marts.fct_orders.channel: expect_column_values_to_be_in_set",
    ),
    "null customer_id in features": (
        f"insert into marts.customer_features values "
        f"(null, date '{RUN_DATE}', 4, 1, 10.0, 30, 10.0)",
        "marts.customer_features.customer_id: expect_column_values_to_not_be_null",
    ),
    "duplicate (customer_id, snapshot_date)": (
        f"insert into marts.customer_features values "
        f"('c2', date '{RUN_DATE}', 21, 1, 0.0, 90, 0.0)",
        "marts.customer_features.(customer_id, snapshot_date): "
        "expect_compound_columns_to_be_unique",
    ),
}


def _execute(settings: Settings, sql: str) -> None:
    con = duckdb.connect(str(settings.warehouse))
    try:
        con.execute(sql)
    finally:
        con.close()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """A home in tmp_path whose warehouse holds good marts."""
    settings = get_settings({"JOURNEYS_HOME": str(tmp_path)})
    _execute(settings, SCHEMA + GOOD_ORDERS + GOOD_FEATURES)
    return settings


def _report(settings: Settings) -> dict:
    path = settings.home / "gx" / "reports" / f"{RUN_DATE}.json"
    return json.loads(path.read_text(encoding="utf-8"))


def test_good_marts_pass_and_write_report_and_data_docs(settings: Settings) -> None:
    summary = validate_warehouse(settings, RUN_DATE)

    assert summary["tables"] == {"marts.fct_orders": 5, "marts.customer_features": 4}
    assert summary["expectations_evaluated"] > 20
    assert summary["warnings"] == []
    report = _report(settings)
    assert report["success"] is True
    assert report["run_date"] == RUN_DATE.isoformat()
    for outcome in report["tables"].values():
        assert outcome["success"] is True
        assert outcome["failed"] == []
    index = settings.home / "gx" / "data_docs" / "index.html"
    assert report["data_docs"] == str(index) == summary["data_docs"]
    assert index.is_file()
    assert "marts.fct_orders" in index.read_text(encoding="utf-8")


@pytest.mark.parametrize("case", sorted(BAD_ROWS))
def test_bad_rows_fail_the_gate(settings: Settings, case: str) -> None:
    sql, expected = BAD_ROWS[case]
    _execute(settings, sql)

    with pytest.raises(QualityGateError) as failure:
        validate_warehouse(settings, RUN_DATE)

    message = str(failure.value)
    assert expected in message
    assert "(observed " in message
    assert failure.value.report["success"] is False
    assert _report(settings) == failure.value.report  # written before raising
    assert (settings.home / "gx" / "data_docs" / "index.html").is_file()


def test_every_failed_critical_expectation_is_listed(settings: Settings) -> None:
    for sql, _ in BAD_ROWS.values():
        _execute(settings, sql)

    with pytest.raises(QualityGateError) as failure:
        validate_warehouse(settings, RUN_DATE)

    message = str(failure.value)
    for _, expected in BAD_ROWS.values():
        assert expected in message
    tables = failure.value.report["tables"]
    assert tables["marts.fct_orders"]["success"] is False
    assert tables["marts.customer_features"]["success"] is False
    observed = {
        (f["column"], f["expectation"]): f["observed"] for f in tables["marts.fct_orders"]["failed"]
    }
    assert "'o1'" in observed[("order_id", "expect_column_values_to_be_unique")]
    assert "-30" in observed[("amount", "expect_column_values_to_be_between")]
    assert "'marketplace'" in observed[("channel", "expect_column_values_to_be_in_set")]


def test_warning_only_problems_do_not_fail_the_gate(settings: Settings) -> None:
    # An unusually large order (> 50 000, < 1e6) and a mostly-null extra column: warnings.
    _execute(
        settings,
        "insert into marts.fct_orders values "
        "('o9', 'c3', 'online', timestamp '2024-03-21 08:00:00', 'completed', 75000.0);"
        "update marts.customer_features set avg_basket = null where customer_id <> 'c1';",
    )

    summary = validate_warehouse(settings, RUN_DATE)

    warnings = "\n".join(summary["warnings"])
    assert "marts.fct_orders.amount: expect_column_values_to_be_between" in warnings
    assert "75000" in warnings
    assert "marts.customer_features.avg_basket: expect_column_values_to_not_be_null" in warnings
    report = _report(settings)
    assert report["success"] is True
    severities = {f["severity"] for o in report["tables"].values() for f in o["failed"]}
    assert severities == {"warning"}


def test_only_the_published_snapshot_of_customer_features_is_validated(
    settings: Settings,
) -> None:
    _execute(
        settings,
        f"insert into marts.customer_features values "
        f"('c1', date '{OLD_SNAPSHOT}', -1, -2, -5.0, 310, 1.0),"
        f"(null, date '{OLD_SNAPSHOT}', 3, 1, 1.0, 1, 1.0)",
    )

    summary = validate_warehouse(settings, RUN_DATE)

    assert summary["tables"]["marts.customer_features"] == 4


def test_empty_snapshot_fails_the_gate(settings: Settings) -> None:
    with pytest.raises(QualityGateError, match="expect_table_row_count_to_be_between"):
        validate_warehouse(settings, date(2030, 1, 1))


def test_missing_required_column_fails_the_gate(settings: Settings) -> None:
    _execute(settings, "alter table marts.customer_features drop column tenure_days")

    with pytest.raises(QualityGateError) as failure:
        validate_warehouse(settings, RUN_DATE)

    assert "marts.customer_features.tenure_days: expect_column_to_exist" in str(failure.value)


def test_rerun_in_the_same_folder_is_idempotent(settings: Settings) -> None:
    validate_warehouse(settings, RUN_DATE)
    validate_warehouse(settings, RUN_DATE)

    docs = settings.home / "gx" / "data_docs"
    assert (docs / "index.html").is_file()
    # One validation page per table: the site holds the latest run, not an ever-growing pile.
    assert len(list((docs / "validations").rglob("*.html"))) == 2
    assert sorted(p.name for p in (settings.home / "gx" / "reports").iterdir()) == [
        f"{RUN_DATE}.json"
    ]


def test_gate_leaves_the_warehouse_unchanged_and_closed(settings: Settings) -> None:
    before = settings.warehouse.stat().st_mtime_ns
    validate_warehouse(settings, RUN_DATE)
    assert settings.warehouse.stat().st_mtime_ns == before
    # A read-write connection in the same process fails if the gate's connection is still open.
    _execute(settings, "select 1")


def test_missing_warehouse_is_an_error(tmp_path: Path) -> None:
    settings = get_settings({"JOURNEYS_HOME": str(tmp_path)})
    with pytest.raises(FileNotFoundError):
        validate_warehouse(settings, RUN_DATE)


def test_run_checkpoint_on_frames_without_data_docs() -> None:
    orders = pd.DataFrame(
        {
            "order_id": ["a", "b"],
            "customer_id": ["x", None],
            "channel": ["online", "store"],
            "ordered_at": pd.to_datetime(["2024-03-01", "2024-03-02"]),
            "status": ["completed", "completed"],
            "amount": [1.0, 2.0],
        }
    )

    report = run_checkpoint({"fct_orders": orders}, docs_dir=None)

    assert report["success"] is True
    assert report["data_docs"] is None
    assert list(report["tables"]) == ["marts.fct_orders"]
    assert report["tables"]["marts.fct_orders"]["evaluated"] > 10
    json.dumps(report)
    with pytest.raises(ValueError, match="no expectation suite"):
        run_checkpoint({"marts.unknown": orders}, docs_dir=None)


def test_importing_the_gate_is_cheap() -> None:
    code = (
        "import sys, expectations, expectations.gate, expectations.suites\n"
        "heavy = {'great_expectations', 'pandas', 'duckdb'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, check=True)
