"""The published analyst warehouse: a read-only copy analysts open while the pipeline writes.

DuckDB lets one process write a file and locks everyone else out meanwhile, so analysts do not
query the pipeline's own warehouse. At the end of every successful run the analyst-facing
schemas (marts, ml, identity, and the load manifest and quarantine) are copied into a new file
built aside, in a storage version DuckDB 1.x clients read, then renamed over the published
file in one step (`os.replace`).

Why rename and not overwrite: on Linux a rename swaps the directory entry only. An analyst who
holds the old file open keeps reading the old inode, untouched and consistent, until they
disconnect (its space is freed then); whoever connects after the rename gets the new file. So
the pipeline never waits for analysts, analysts never wait for the pipeline, and nobody ever
sees half a file. To see new data, reconnect.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb

from journeys.settings import Settings
from journeys.warehouse import connect

ALIAS = "analyst_copy"


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def analyst_tables(con: duckdb.DuckDBPyConnection, settings: Settings) -> list[tuple[str, str]]:
    """(schema, table) pairs analysts get: every table and view of the analyst schemas, plus the
    raw tables named in settings (the raw.* entity views read landed files, not copied)."""
    wanted_schemas = list(settings.analyst_schemas)
    rows = con.execute(
        "select table_schema, table_name from information_schema.tables "
        "where table_catalog = current_database() and ("
        "  list_contains(?, table_schema)"
        "  or (table_schema = 'raw' and list_contains(?, table_name))"
        ") and table_name not like '%\\_\\_next' escape '\\' order by 1, 2",
        [wanted_schemas, list(settings.analyst_raw_tables)],
    ).fetchall()
    return [(schema, table) for schema, table in rows]


def publish_analyst_warehouse(settings: Settings, run_date: date) -> dict:
    """Copy the analyst-facing tables into a new file and rename it over the published one."""
    started = time.perf_counter()
    target: Path = settings.analyst_warehouse
    target.parent.mkdir(parents=True, exist_ok=True)
    building = target.with_name(f".{target.name}.{os.getpid()}.building")
    for leftover in (building, building.with_name(building.name + ".wal")):
        leftover.unlink(missing_ok=True)
    copied: dict[str, int] = {}
    try:
        with connect(settings) as con:
            tables = analyst_tables(con, settings)
            con.execute(
                f"attach {_literal(str(building))} as {ALIAS} "
                f"(storage_version {_literal(settings.analyst_storage_version)})"
            )
            try:
                for schema in sorted({s for s, _ in tables}):
                    con.execute(f"create schema {ALIAS}.{_ident(schema)}")
                for schema, table in tables:
                    name = f"{_ident(schema)}.{_ident(table)}"
                    con.execute(f"create table {ALIAS}.{name} as select * from {name}")
                    copied[f"{schema}.{table}"] = con.execute(
                        f"select count(*) from {ALIAS}.{name}"
                    ).fetchall()[0][0]
                con.execute(
                    f"create table {ALIAS}.main.publication as select "
                    "?::date as run_date, ?::timestamptz as published_at, "
                    "?::varchar as source_warehouse, ?::varchar[] as tables",
                    [run_date, datetime.now(UTC), str(settings.warehouse), sorted(copied)],
                )
                con.execute(f"checkpoint {ALIAS}")
            finally:
                con.execute(f"detach {ALIAS}")
        # Read-only on disk too: a client that forgets read_only gets an error, not a write
        # lock and a WAL beside the file (a stale WAL would be replayed onto the next file).
        os.chmod(building, 0o444)
        _fsync(building)
        target.with_name(target.name + ".wal").unlink(missing_ok=True)
        os.replace(building, target)  # atomic: readers see the old file or the new, never half
        _fsync(target.parent)
    except BaseException:
        building.unlink(missing_ok=True)
        raise
    return {
        "analyst_warehouse": str(target),
        "storage_version": settings.analyst_storage_version,
        "tables": len(copied),
        "rows": sum(copied.values()),
        "seconds": round(time.perf_counter() - started, 2),
    }


def _fsync(path: Path) -> None:
    """Flush a file (or a folder's entries) to disk, so a crash cannot publish an empty file."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def published_run_date(settings: Settings) -> date | None:
    """The run the published analyst warehouse holds (None when nothing is published)."""
    if not settings.analyst_warehouse.exists():
        return None
    with duckdb.connect(str(settings.analyst_warehouse), read_only=True) as con:
        return con.execute("select max(run_date) from main.publication").fetchall()[0][0]
