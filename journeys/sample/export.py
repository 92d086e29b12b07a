"""Writing one entity's rows as per-day export files, planting row defects on the way.

Malformed values and duplicated rows are planted here, uniformly for every text entity, and
recorded (with the record's original key) in the defect log that becomes `defects.parquet`.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from journeys.contract import Entity
from journeys.sample.config import GeneratorConfig
from journeys.sample.textio import (
    Clock,
    FileSink,
    csv_lines,
    day_bounds,
    jsonl_lines,
    jsonl_literal_lines,
    line_slices,
    take,
)

# Values that look plausible in a file but do not parse as their column's kind.
GARBAGE: dict[str, tuple[str, ...]] = {
    "timestamp": (
        "2025-02-30T10:00:00Z",
        "31/12/2024 10:00",
        "yesterday",
        "2025-13-01T00:00:00Z",
        "0000-00-00 00:00:00",
    ),
    "date": ("1985-02-30", "31.12.1985", "unknown", "19851301"),
    "decimal": ("12,50", "N/A", "abc", "1.2.3", "EUR 12.50"),
    "integer": ("two", "1.5", "N/A", "x"),
}
FREE_TEXT = frozenset({"first_name", "last_name", "street", "city", "name", "brand"})


@dataclass
class Table:
    """Rows of one entity, sorted by delivery day, ready for `export.write_entity`."""

    columns: dict[str, pa.Array]
    delivery_day: np.ndarray
    keys: pa.Array  # the record key as one string (composite keys joined with "|")
    person: np.ndarray  # who the row belongs to (truth)
    defects: list[tuple[np.ndarray, str, str | None]]  # (row indices, defect, column)
    json_literals: bool = False  # columns hold JSON literals ("quoted" or null), JSONL only


DEFECT_SCHEMA = pa.schema(
    [
        ("source", pa.string()),
        ("entity", pa.string()),
        ("record_key", pa.string()),
        ("delivery_date", pa.date32()),
        ("defect", pa.string()),
        ("column", pa.string()),
    ]
)


@dataclass
class DefectLog:
    """Every planted defect: which record (original key), in which delivery, what and where.

    Parts may arrive from several threads in any order; `table()` sorts, so the file is the
    same on every run.
    """

    start: np.datetime64
    parts: list[pa.Table] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(
        self,
        entity: Entity,
        keys: pa.Array,
        days: np.ndarray,
        defect: str | pa.Array,
        column: str | None | pa.Array = None,
    ) -> None:
        m = len(keys)
        if m == 0:
            return
        dates = (self.start + np.asarray(days, dtype=np.int64)).astype("datetime64[D]")
        part = pa.table(
            {
                "source": pa.repeat(entity.source, m),
                "entity": pa.repeat(entity.name, m),
                "record_key": keys,
                "delivery_date": pa.array(dates, pa.date32()),
                "defect": defect if isinstance(defect, pa.Array) else pa.repeat(defect, m),
                "column": column
                if isinstance(column, pa.Array)
                else pa.array([column] * m, pa.string())
                if column is None
                else pa.repeat(column, m),
            },
            schema=DEFECT_SCHEMA,
        )
        with self._lock:
            self.parts.append(part)

    def table(self) -> pa.Table:
        if not self.parts:
            return DEFECT_SCHEMA.empty_table()
        return pa.concat_tables(self.parts).sort_by(
            [
                ("source", "ascending"),
                ("entity", "ascending"),
                ("delivery_date", "ascending"),
                ("record_key", "ascending"),
                ("defect", "ascending"),
                ("column", "ascending"),
            ]
        )


@dataclass
class EntityWriter:
    """Turns entity tables into per-day files; encoding runs on a background thread.

    Arrow compute and zlib release the GIL, so encoding and compressing one table overlaps
    with generating the next. Everything random is drawn from the caller's generator, so the
    output does not depend on thread timing.
    """

    sink: FileSink
    root: Path
    clock: Clock
    cfg: GeneratorConfig
    log: DefectLog
    rows: dict[str, int] = field(default_factory=dict)
    _pool: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(1))
    _pending: list[Future] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def write(
        self,
        entity: Entity,
        ext: str,
        table: Table,
        first_day: int,
        n_days: int,
        rng: np.random.Generator,
        malformed: bool = True,
        duplicates: bool = True,
    ) -> None:
        """Queue days [first_day, first_day + n_days) of `table` (sorted by delivery day).

        The table's columns are released once encoded; keys, person and days stay.
        """
        names = entity.column_names
        if list(table.columns) != names:
            raise ValueError(f"{entity.table}: columns {list(table.columns)} != contract")
        day = np.asarray(table.delivery_day, dtype=np.int64)
        if len(day) and (
            np.any(np.diff(day) < 0) or day[0] < first_day or day[-1] >= first_day + n_days
        ):
            raise ValueError(f"{entity.table}: rows not sorted by delivery day within range")
        n = len(day)
        # Random decisions are taken here, in call order, for reproducibility.
        bad = (rng.random(n) < self.cfg.malformed_rate) if malformed else np.zeros(n, bool)
        plan = self._malformed_plan(entity, ext, bad, rng)
        twice = (
            (~bad & (rng.random(n) < self.cfg.duplicate_row_rate))
            if duplicates
            else np.zeros(n, bool)
        )
        while len(self._pending) >= 1:  # at most one table encoding while the next is built
            self._pending.pop(0).result()
        self._pending.append(
            self._pool.submit(
                self._encode_and_write, entity, ext, table, day, first_day, n_days, plan, twice
            )
        )

    def count(self, table: str, rows: int) -> None:
        with self._lock:
            self.rows[table] = self.rows.get(table, 0) + rows

    def close(self) -> None:
        """Wait for queued tables (re-raising their errors); safe to call twice."""
        try:
            for future in self._pending:
                future.result()
        finally:
            self._pending.clear()
            self._pool.shutdown()

    def _encode_and_write(
        self,
        entity: Entity,
        ext: str,
        table: Table,
        day: np.ndarray,
        first_day: int,
        n_days: int,
        plan: list[tuple[str, str | None, np.ndarray]],
        twice: np.ndarray,
    ) -> None:
        names = entity.column_names
        columns = dict(table.columns)
        table.columns = {}
        jsonl = ext.startswith(".jsonl")
        touched: set[str] = set()
        broken = np.zeros(len(day), dtype=bool)
        literal = table.json_literals
        for defect, column, rows in plan:
            if defect == "broken_json":
                broken[rows] = True
            elif defect in ("missing_identifier", "missing_required"):
                for name in column.split("|"):
                    columns[name] = _replace(columns[name], rows, None, literal)
            else:
                garbage = GARBAGE[entity.column(column).kind]
                if literal:
                    garbage = tuple(f'"{g}"' for g in garbage)
                columns[column] = _replace(
                    columns[column],
                    rows,
                    take(garbage, np.arange(len(rows)) % len(garbage)),
                    literal,
                )
                touched.add(column)
            self.log.add(entity, table.keys.take(pa.array(rows)), day[rows], defect, column)
        for rows, defect, column in table.defects:
            self.log.add(
                entity, table.keys.take(pa.array(rows, pa.int64())), day[rows], defect, column
            )

        if table.json_literals:
            lines = jsonl_literal_lines(names, [columns[c] for c in names])
        elif jsonl:
            lines = jsonl_lines(names, [columns[c] for c in names])
        else:
            lines = csv_lines(
                [columns[c] for c in names], [c in FREE_TEXT or c in touched for c in names]
            )
        del columns
        if broken.any():
            rows = np.flatnonzero(broken)
            cut = pc.binary_join_element_wise(
                pc.utf8_slice_codeunits(lines.take(pa.array(rows)), 0, 45), "\n", ""
            )
            lines = pc.replace_with_mask(lines, pa.array(broken), cut)

        # Duplicated rows: re-sent at the end of the same day's file.
        again = np.flatnonzero(twice)
        self.log.add(entity, table.keys.take(pa.array(again)), day[again], "duplicate_row")
        repeated = lines.take(pa.array(again))
        bounds = day_bounds(day, first_day, n_days)
        repeat_bounds = day_bounds(day[again], first_day, n_days)
        header = b"" if jsonl else (",".join(names) + "\n").encode()
        payloads = zip(
            line_slices(lines, bounds), line_slices(repeated, repeat_bounds), strict=True
        )
        for offset, (payload, resent) in enumerate(payloads):
            folder = self.root / entity.source / self.clock.date(first_day + offset).isoformat()
            self.sink.write(
                folder / f"{entity.name}{ext}",
                [header, payload, resent],
                keep_alive=(lines, repeated),
            )
        self.count(entity.table, len(day) + len(again))

    def _malformed_plan(
        self, entity: Entity, ext: str, bad: np.ndarray, rng: np.random.Generator
    ) -> list[tuple[str, str | None, np.ndarray]]:
        """Which defect goes where: (defect, column, rows); one defect per bad row."""
        kinds: list[tuple[str, list[str]]] = []
        dated = [c.name for c in entity.columns if c.kind in ("date", "timestamp")]
        numeric = [c.name for c in entity.columns if c.kind in ("decimal", "integer")]
        if dated:
            kinds.append(("malformed_date", dated))
        if numeric:
            kinds.append(("malformed_amount", numeric))
        kinds.append(("missing_required", entity.required))
        for group in entity.one_of:
            kinds.append(("missing_identifier", ["|".join(group)]))
        if ext.startswith(".jsonl"):
            kinds.append(("broken_json", [None]))
        rows = np.flatnonzero(bad)
        kind = rng.integers(0, len(kinds), size=len(rows))
        pick = rng.random(len(rows))
        plan = []
        for k, (defect, candidates) in enumerate(kinds):
            mine = rows[kind == k]
            which = (pick[kind == k] * len(candidates)).astype(np.int64)
            for j, column in enumerate(candidates):
                target = mine[which == j]
                if len(target):
                    plan.append((defect, column, target))
        return plan


def _replace(
    column: pa.Array, rows: np.ndarray, values: pa.Array | None, literal: bool = False
) -> pa.Array:
    mask = np.zeros(len(column), dtype=bool)
    mask[rows] = True
    if values is None:
        values = pa.repeat("null", len(rows)) if literal else pa.nulls(len(rows), pa.string())
    return pc.replace_with_mask(column, pa.array(mask), values)
