"""Connections to the warehouse file.

DuckDB lets one process write a file at a time, and a process may hold a file open in one
configuration only. Every pipeline stage opens the warehouse read-write through `connect()` and
closes it before returning; dbt-duckdb's own handle is released after each dbt command
(`journeys.transform.release_warehouse`), so between stages no handle stays open.
`read_only=True` is for other processes (an analyst, `journeys evaluate`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from journeys.settings import Settings


@contextmanager
def connect(settings: Settings, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the warehouse (creating its folder when writing), in UTC, closed on exit."""
    path: Path = settings.warehouse
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path), read_only=read_only)
    try:
        con.execute("set TimeZone = 'UTC'")
        yield con
    finally:
        con.close()


def table_exists(con: duckdb.DuckDBPyConnection, schema: str, name: str) -> bool:
    return bool(
        con.execute(
            "select count(*) from information_schema.tables "
            "where table_schema = ? and table_name = ?",
            [schema, name],
        ).fetchall()[0][0]
    )
