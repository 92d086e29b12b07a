"""Landing on small crafted files: every row loaded or quarantined, bad files rejected whole."""

from __future__ import annotations

import gzip
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import duckdb
import pytest

from journeys.contract import ENTITIES
from journeys.landing import land_exports
from journeys.settings import Settings, get_settings
from journeys.warehouse import connect

CUSTOMERS_HEADER = "crm_id,updated_at,first_name,email,birth_date"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return get_settings({"JOURNEYS_HOME": str(tmp_path)})


def deliver(settings: Settings, relative: str, content: str | bytes) -> Path:
    path = settings.exports / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    data = content.encode() if isinstance(content, str) else content
    if relative.endswith(".gz"):
        data = gzip.compress(data, mtime=0)
    path.write_bytes(data)
    return path


def query(settings: Settings, sql: str, params: list | None = None) -> list[tuple]:
    with connect(settings) as con:
        return con.execute(sql, params or []).fetchall()


def by_file(result: dict) -> dict[str, dict]:
    return {f["file"]: f for f in result["files"]}


def test_good_and_bad_rows_reconcile_with_line_and_reason(settings: Settings) -> None:
    deliver(
        settings,
        "crm/2025-01-01/customers.csv",
        "\n".join(
            [
                CUSTOMERS_HEADER,
                "C1,2025-01-01T10:00:00Z,Ann,ann@example.org,1990-01-01",
                "C2,not-a-date,Bob,bob@example.org,1980-02-02",
                ",2025-01-01,Nobody,,",
                "C3,2025-01-01,Cy,cy@example.org,1970-01-01,one-field-too-many",
                "C4,2025-01-01,Di,di@example.org,1999-02-30",
                "C5,2025-01-01 08:00:00,Ed,,",
            ]
        )
        + "\n",
    )
    result = land_exports(settings)
    f = by_file(result)["crm/2025-01-01/customers.csv"]
    assert (f["received"], f["loaded"], f["quarantined"]) == (6, 2, 4)
    reasons = dict(query(settings, "select line, reason from raw.quarantine order by line"))
    assert set(reasons) == {3, 4, 5, 6}
    assert "updated_at is not a valid timestamp" in reasons[3]
    assert "missing required crm_id" in reasons[4]
    assert "expected 5 fields, found 6" in reasons[5]
    assert "birth_date is not a valid date" in reasons[6]
    assert query(settings, "select crm_id, _line from raw.crm_customers order by 1") == [
        ("C1", 2),
        ("C5", 7),
    ]
    raw = query(settings, "select raw_content from raw.quarantine where line = 5")[0][0]
    assert "one-field-too-many" in raw


@pytest.mark.parametrize("name", ["events.jsonl", "events.jsonl.gz"])
def test_jsonl_broken_lines_are_quarantined(settings: Settings, name: str) -> None:
    deliver(
        settings,
        f"web/2025-01-01/{name}",
        "\n".join(
            [
                '{"event_id":"e1","event_at":"2025-01-01T00:00:00Z","event_type":"page_view",'
                '"anonymous_id":"a1"}',
                '{"event_id":"e2","event_at":"2025-01-01T00:00:01Z","event_type":"scroll",'
                '"anonymous_id":"a1","screen":"big"}',
                '{"event_id":"e3","event_at":',
                "[1, 2]",
                "",
                '{"event_id":"e4","event_type":"login","anonymous_id":"a2"}',
            ]
        )
        + "\n",
    )
    f = by_file(land_exports(settings))[f"web/2025-01-01/{name}"]
    assert (f["received"], f["loaded"], f["quarantined"]) == (5, 2, 3)
    assert f["extra_columns"] == ["screen"]
    assert f["unknown_values"] == ["event_type=scroll"]  # kept and reported, not refused
    assert query(settings, "select line, reason from raw.quarantine order by line") == [
        (3, "broken JSON"),
        (4, "not a JSON object"),
        (6, "missing required event_at"),
    ]


def test_csv_gzip_and_parquet_land_alike(settings: Settings) -> None:
    deliver(
        settings,
        "crm/2025-01-01/customers.csv.gz",
        CUSTOMERS_HEADER + "\nC1,2025-01-01,Ann,ann@example.org,1990-01-01\n",
    )
    parquet = settings.exports / "catalog/2025-01-02/products.parquet"
    parquet.parent.mkdir(parents=True)
    duckdb.sql(
        f"copy (select 'S1' as SKU, 'shoes' as category, 9.5 as list_price, true as "
        f"is_active) to '{parquet}'"
    )
    result = land_exports(settings)
    assert result["files_loaded"] == 2 and result["rows_quarantined"] == 0
    assert query(settings, "select sku, list_price, is_active from raw.catalog_products") == [
        ("S1", "9.5", "true")
    ]


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "empty file"),
        (b"\n\n", "empty file"),
        ("crm_id,updated_at\nC1,M\xfcller\n".encode("latin-1"), "not UTF-8"),
        (b"crm_id;updated_at;first_name\nC1;2025-01-01;Ann\n", "is the delimiter a comma?"),
        (b"first_name,email\nAnn,a@example.org\n", "missing required column(s) crm_id, updated_at"),
    ],
)
def test_unreadable_files_are_rejected_whole(settings: Settings, content: bytes, reason: str):
    deliver(settings, "crm/2025-01-01/customers.csv", content)
    result = land_exports(settings)
    f = by_file(result)["crm/2025-01-01/customers.csv"]
    assert f["status"] == "rejected" and reason in f["reason"]
    assert query(settings, "select count(*) from raw.crm_customers") == [(0,)]
    assert query(settings, "select status, reason from raw.load_manifest")[0][0] == "rejected"


def test_truncated_gzip_is_rejected_and_a_fixed_redelivery_lands(settings: Settings) -> None:
    good = gzip.compress(
        (
            CUSTOMERS_HEADER
            + "\n"
            + "\n".join(f"C{i},2025-01-01,Ann,a{i}@example.org,1990-01-01" for i in range(2000))
            + "\n"
        ).encode()
    )
    path = settings.exports / "crm/2025-01-01/customers.csv.gz"
    path.parent.mkdir(parents=True)
    path.write_bytes(good[: len(good) // 2])
    f = by_file(land_exports(settings))["crm/2025-01-01/customers.csv.gz"]
    assert f["status"] == "rejected" and "gzip" in f["reason"]
    assert query(settings, "select count(*) from raw.crm_customers") == [(0,)]

    path.write_bytes(good)  # the sender fixes the file
    f = by_file(land_exports(settings))["crm/2025-01-01/customers.csv.gz"]
    assert (f["status"], f["loaded"]) == ("loaded", 2000)


def test_header_only_file_is_a_delivery_of_nothing(settings: Settings) -> None:
    deliver(settings, "crm/2025-01-01/customers.csv", CUSTOMERS_HEADER + "\n")
    f = by_file(land_exports(settings))["crm/2025-01-01/customers.csv"]
    assert (f["status"], f["received"]) == ("loaded", 0)


def test_same_file_twice_loads_once_and_reruns_change_nothing(settings: Settings) -> None:
    body = CUSTOMERS_HEADER + "\nC1,2025-01-01,Ann,ann@example.org,1990-01-01\n"
    deliver(settings, "crm/2025-01-01/customers.csv", body)
    deliver(settings, "crm/2025-01-02/customers.csv", body)  # re-sent the next day
    first = land_exports(settings)
    assert (first["files_loaded"], first["files_duplicate"]) == (1, 1)
    snapshot = query(settings, "select * from raw.crm_customers")
    second = land_exports(settings)
    assert (second["files_loaded"], second["files_duplicate"], second["files_rejected"]) == (
        0,
        0,
        0,
    )
    assert query(settings, "select * from raw.crm_customers") == snapshot
    assert query(
        settings, "select status, count(*) from raw.load_manifest group by 1 order by 1"
    ) == [("duplicate", 1), ("loaded", 1)]


def test_late_file_for_an_earlier_day_is_picked_up(settings: Settings) -> None:
    deliver(
        settings,
        "crm/2025-01-02/customers.csv",
        CUSTOMERS_HEADER + "\nC2,2025-01-02,Bo,bo@example.org,1990-01-01\n",
    )
    assert land_exports(settings, up_to=date(2025, 1, 2))["files_loaded"] == 1
    deliver(
        settings,
        "crm/2025-01-01/customers.csv",
        CUSTOMERS_HEADER + "\nC1,2025-01-01,Ann,ann@example.org,1990-01-01\n",
    )
    deliver(
        settings,
        "crm/2025-01-03/customers.csv",
        CUSTOMERS_HEADER + "\nC3,2025-01-03,Cy,cy@example.org,1990-01-01\n",
    )
    result = land_exports(settings, up_to=date(2025, 1, 2))
    assert [f["file"] for f in result["files"]] == ["crm/2025-01-01/customers.csv"]
    assert query(settings, "select crm_id from raw.crm_customers order by 1") == [("C1",), ("C2",)]


def test_schema_drift_extra_kept_missing_optional_null(settings: Settings) -> None:
    deliver(
        settings,
        "crm/2025-01-01/customers.csv",
        "CRM_ID,Updated_At,favourite_colour\nC1,2025-01-01,green\n",
    )
    f = by_file(land_exports(settings))["crm/2025-01-01/customers.csv"]
    assert f["extra_columns"] == ["favourite_colour"]
    assert query(settings, "select crm_id, email, favourite_colour from raw.crm_customers") == [
        ("C1", None, "green")
    ]
    missing = query(settings, "select missing_optional_columns from raw.load_manifest")[0][0]
    assert "email" in missing and "crm_id" not in missing


def test_sources_without_exports_still_have_empty_relations(settings: Settings) -> None:
    deliver(
        settings,
        "shop/2025-01-01/orders.csv",
        "order_id,ordered_at,status,currency,total_amount,crm_id\n"
        "O1,2025-01-01,completed,EUR,10.00,C1\n"
        "O2,2025-01-01,shipped,EUR,10.00,C1\n"
        "O3,2025-01-01,completed,EUR,ten,C1\n"
        "O4,2025-01-01,completed,EUR,10.00,\n",
    )
    result = land_exports(settings)
    assert result["rows_loaded"] == 1
    reasons = [r for (r,) in query(settings, "select reason from raw.quarantine order by line")]
    assert reasons == [
        "status shipped is not one of completed/cancelled/refunded",
        "total_amount is not a valid decimal: ten",
        "needs at least one of customer_email, crm_id",
    ]
    for entity in ENTITIES:  # every contract entity is queryable, with its columns
        columns = [
            c
            for (c,) in query(
                settings,
                "select column_name from information_schema.columns "
                "where table_schema = 'raw' and table_name = ?",
                [entity.table],
            )
        ]
        assert set(entity.column_names) <= set(columns), entity.table


def test_misplaced_files_are_reported_not_loaded(settings: Settings) -> None:
    deliver(settings, "crm/customers.csv", CUSTOMERS_HEADER + "\n")
    deliver(settings, "crm/2025-01-01/customers.xlsx", b"PK")
    deliver(settings, "billing/2025-01-01/invoices.csv", "id\n1\n")
    result = land_exports(settings)
    reasons = {f["file"]: f["reason"] for f in result["files"]}
    assert "not laid out" in reasons["crm/customers.csv"]
    assert "unsupported file type" in reasons["crm/2025-01-01/customers.xlsx"]
    assert "unknown source/entity" in reasons["billing/2025-01-01/invoices.csv"]
    assert result["files_loaded"] == 0


def test_killed_mid_landing_then_rerun_leaves_no_partial_rows(settings: Settings) -> None:
    for day in range(1, 29):
        rows = "\n".join(
            f"C{day}-{i},2025-02-{day:02d},N{i},n{i}@example.org,1990-01-01" for i in range(3000)
        )
        deliver(settings, f"crm/2025-02-{day:02d}/customers.csv", CUSTOMERS_HEADER + "\n" + rows)
    code = (
        "from journeys.landing import land_exports; from journeys.settings import "
        f"get_settings; land_exports(get_settings({{'JOURNEYS_HOME': r'{settings.home}'}}))"
    )
    child = subprocess.Popen([sys.executable, "-c", code])
    deadline = time.monotonic() + 60
    landed_dir = settings.landed / "crm" / "customers"
    while time.monotonic() < deadline and len(list(landed_dir.glob("*.parquet"))) < 3:
        time.sleep(0.02)
    child.send_signal(signal.SIGKILL)
    child.wait()

    result = land_exports(settings)
    loaded = query(
        settings,
        "select count(*), count(distinct file) from raw.load_manifest where status = 'loaded'",
    )[0]
    assert loaded == (28, 28)
    assert query(settings, "select count(*), count(distinct crm_id) from raw.crm_customers") == [
        (28 * 3000, 28 * 3000)
    ]
    assert result["rows_received"] == result["rows_loaded"] + result["rows_quarantined"]
