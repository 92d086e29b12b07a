"""The published analyst warehouse: built aside, renamed into place, readable by DuckDB 1.x."""

from __future__ import annotations

import struct
import subprocess
import sys
from datetime import date
from pathlib import Path

import duckdb
import pytest

from journeys.analyst import publish_analyst_warehouse
from journeys.settings import get_settings
from journeys.warehouse import connect

# An analyst's session in its own process: one connection held open; "again" re-queries it,
# "reconnect" opens the published file anew.
ANALYST = """
import sys, duckdb
path = sys.argv[1]
query = (
    "select (select max(run_date) from publication)::varchar, "
    "(select sum(score) from marts.customer_segments)"
)
con = duckdb.connect(path, read_only=True)
print(con.execute(query).fetchall()[0], flush=True)
for line in sys.stdin:
    if line.strip() == "reconnect":
        con.close()
        con = duckdb.connect(path, read_only=True)
    print(con.execute(query).fetchall()[0], flush=True)
"""
# DuckDB's file header: 8-byte checksum, "DUCK", then the storage version number. 64 is the
# format DuckDB 0.10 and every 1.x release read (DuckDB 2.0 writes a newer one by default).
STORAGE_V1_0 = 64


def storage_version(path: Path) -> int:
    header = path.read_bytes()[:20]
    assert header[8:12] == b"DUCK"
    return struct.unpack("<Q", header[12:20])[0]


@pytest.fixture
def settings(tmp_path: Path):
    settings = get_settings({"JOURNEYS_HOME": str(tmp_path)})
    with connect(settings) as con:
        con.execute(
            "create schema marts; create schema raw; create schema staging;"
            "create table marts.customer_segments as select 'c1' as customer_id, 1 as score;"
            "create table raw.load_manifest as select 'crm/2025-01-01/customers.csv' as file;"
            "create view raw.crm_customers as select * from raw.load_manifest;"
            "create table staging.stg_crm__customers as select 1 as internal;"
        )
    return settings


def test_copies_analyst_schemas_only_in_a_format_duckdb_1_reads(settings) -> None:
    summary = publish_analyst_warehouse(settings, date(2025, 1, 1))
    published = settings.analyst_warehouse
    assert published == settings.home / "published" / "analytics.duckdb"
    assert storage_version(published) == STORAGE_V1_0
    assert storage_version(settings.warehouse) != STORAGE_V1_0  # the pipeline's own, newer format
    with duckdb.connect(str(published), read_only=True) as con:
        tables = con.execute(
            "select table_schema || '.' || table_name from information_schema.tables order by 1"
        ).fetchall()
    assert [t[0] for t in tables] == [
        "main.publication",
        "marts.customer_segments",
        "raw.load_manifest",
    ]
    assert summary["tables"] == 2 and summary["rows"] == 2
    assert sorted(p.name for p in published.parent.iterdir()) == ["analytics.duckdb"]


def test_open_analyst_connection_neither_blocks_nor_sees_half_a_publication(settings) -> None:
    publish_analyst_warehouse(settings, date(2025, 1, 1))
    analyst = subprocess.Popen(
        [sys.executable, "-c", ANALYST, str(settings.analyst_warehouse)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert analyst.stdout.readline().strip() == "('2025-01-01', 1)"
        with connect(settings) as con:
            con.execute("insert into marts.customer_segments values ('c2', 41)")
        publish_analyst_warehouse(settings, date(2025, 1, 2))  # while the analyst holds it open

        analyst.stdin.write("again\n")
        analyst.stdin.flush()
        assert analyst.stdout.readline().strip() == "('2025-01-01', 1)"  # their snapshot
        analyst.stdin.write("reconnect\n")
        analyst.stdin.flush()
        assert analyst.stdout.readline().strip() == "('2025-01-02', 42)"
    finally:
        analyst.stdin.close()
        assert analyst.wait(timeout=30) == 0


def test_failed_publication_leaves_the_previous_file(settings) -> None:
    publish_analyst_warehouse(settings, date(2025, 1, 1))
    before = settings.analyst_warehouse.read_bytes()
    with connect(settings) as con:
        # a view that fails when read: the copy stops half-way through the schemas
        con.execute("create view marts.zz_broken as select cast('not a number' as integer) as x")
    with pytest.raises(duckdb.ConversionException):
        publish_analyst_warehouse(settings, date(2025, 1, 2))
    assert settings.analyst_warehouse.read_bytes() == before
    assert sorted(p.name for p in settings.analyst_warehouse.parent.iterdir()) == [
        "analytics.duckdb"
    ]


def test_tables_built_aside_by_publish_are_not_copied(settings) -> None:
    with connect(settings) as con:
        con.execute("create table marts.customer_segments__next as select 1 as half_built")
    publish_analyst_warehouse(settings, date(2025, 1, 1))
    with duckdb.connect(str(settings.analyst_warehouse), read_only=True) as con:
        names = con.execute("select table_name from information_schema.tables").fetchall()
    assert ("customer_segments__next",) not in names
