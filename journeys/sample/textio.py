"""Fast, deterministic text and file output for the sample generator.

Whole columns are formatted with Arrow compute (no per-row Python); a file's content is then a
zero-copy slice of one Arrow string buffer in which every element is a complete line. Gzip is
written with a zero modification time, so the same input always gives the same bytes, and it
is compressed on a small thread pool (zlib releases the GIL) while the next data is built.
"""

from __future__ import annotations

import shutil
import threading
import zlib
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

SECONDS_PER_DAY = 86_400
_DIGITS = np.frombuffer(b"0123456789", dtype=np.uint8)
_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def _from_byte_matrix(matrix: np.ndarray) -> pa.StringArray:
    """An Arrow string array whose i-th value is row i of a (n, width) uint8 matrix."""
    n, width = matrix.shape
    offsets = np.arange(n + 1, dtype=np.int32) * np.int32(width)
    data = np.ascontiguousarray(matrix).tobytes()
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets.tobytes()), pa.py_buffer(data))


def _digit_matrix(values: np.ndarray, width: int, base: int, alphabet: np.ndarray) -> np.ndarray:
    """The last `width` digits of unsigned `values` in `base`, as ASCII bytes (n, width)."""
    x = np.asarray(values).astype(np.uint64)
    out = np.empty((len(x), width), dtype=np.uint8)
    b = np.uint64(base)
    for j in range(width - 1, -1, -1):  # a loop over digit positions, not rows
        q = x // b
        out[:, j] = alphabet[(x - q * b).astype(np.intp)]
        x = q
    return out


def _with_prefix(prefix: str, digits: np.ndarray, suffix: str = "") -> pa.StringArray:
    head = np.frombuffer(prefix.encode(), dtype=np.uint8)
    tail = np.frombuffer(suffix.encode(), dtype=np.uint8)
    if len(head) == 0 and len(tail) == 0:
        return _from_byte_matrix(digits)
    n = len(digits)
    return _from_byte_matrix(
        np.hstack(
            [np.broadcast_to(head, (n, len(head))), digits, np.broadcast_to(tail, (n, len(tail)))]
        )
    )


def fixed_ids(
    prefix: str, values: np.ndarray, width: int, wrap: bool = False, suffix: str = ""
) -> pa.StringArray:
    """`prefix` + zero-padded decimal `values`: sortable, readable record keys.

    Values that do not fit raise, unless `wrap` keeps their last `width` digits.
    """
    values = np.asarray(values, dtype=np.int64)
    if not wrap and len(values) and values.max() >= 10**width:
        raise ValueError(f"{prefix}: id {values.max()} does not fit {width} digits")
    return _with_prefix(prefix, _digit_matrix(values, width, 10, _DIGITS), suffix)


def scramble(values: np.ndarray) -> np.ndarray:
    """A bijective 64-bit mix, so sequential counters become random-looking unique tokens."""
    x = np.asarray(values, dtype=np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def hex_ids(prefix: str, values: np.ndarray, width: int = 16, suffix: str = "") -> pa.StringArray:
    """`prefix` + the low `width` (<= 16) hex digits of scramble(values): cookie-like tokens."""
    return _with_prefix(prefix, _digit_matrix(scramble(values), width, 16, _HEX), suffix)


def int_strings(values: np.ndarray) -> pa.Array:
    return pc.cast(pa.array(np.asarray(values, dtype=np.int64)), pa.string())


def money(cents: np.ndarray) -> pa.Array:
    """Non-negative integer cents as `123.45`."""
    cents = np.asarray(cents, dtype=np.int64)
    whole = int_strings(cents // 100)
    frac = fixed_ids("", cents % 100, 2)
    return pc.binary_join_element_wise(whole, frac, ".")


def decimal6(micros: np.ndarray) -> pa.Array:
    """Non-negative integer millionths as `0.921345`."""
    micros = np.asarray(micros, dtype=np.int64)
    return pc.binary_join_element_wise(
        int_strings(micros // 1_000_000), fixed_ids("", micros % 1_000_000, 6), "."
    )


def take(vocabulary: Sequence[str] | pa.Array, index: np.ndarray) -> pa.Array:
    """Vocabulary lookup by integer index; a negative index gives null."""
    vocab = (
        vocabulary if isinstance(vocabulary, pa.Array) else pa.array(list(vocabulary), pa.string())
    )
    index = np.asarray(index, dtype=np.int64)
    mask = index < 0
    indices = pa.array(np.where(mask, 0, index), mask=mask if mask.any() else None)
    return vocab.take(indices)


class Clock:
    """Times are int64 seconds since `start` 00:00 UTC; this turns them into ISO strings.

    Formatting is two lookups (day, second of day) in precomputed tables and one join.
    """

    def __init__(self, start: date, first_day: int, last_day: int) -> None:
        self.start = start
        self.first_day = first_day  # may be negative (history)
        self.last_day = last_day
        days = [start + timedelta(days=d) for d in range(first_day, last_day + 1)]
        self._dates = pa.array([d.isoformat() for d in days], pa.string())
        self._date_t = pa.array([d.isoformat() + "T" for d in days], pa.string())
        tod = np.arange(SECONDS_PER_DAY)
        hms = np.stack([tod // 3600, tod // 60 % 60, tod % 60], axis=1)
        digits = _DIGITS[np.stack([hms // 10, hms % 10], axis=2).reshape(-1, 6)]
        colon = np.full((SECONDS_PER_DAY, 1), ord(":"), dtype=np.uint8)
        zulu = np.full((SECONDS_PER_DAY, 1), ord("Z"), dtype=np.uint8)
        self._times = _from_byte_matrix(
            np.hstack([digits[:, 0:2], colon, digits[:, 2:4], colon, digits[:, 4:6], zulu])
        )
        # The same, as JSON string literals: '"2025-03-04T' and '10:15:00Z"'.
        self._date_tq = pc.binary_join_element_wise('"', self._date_t, "")
        self._times_q = pc.binary_join_element_wise(self._times, '"', "")

    def date(self, day: int) -> date:
        return self.start + timedelta(days=int(day))

    def dates(self, days: np.ndarray) -> pa.Array:
        return take(self._dates, np.asarray(days, dtype=np.int64) - self.first_day)

    def timestamps(self, seconds: np.ndarray, quoted: bool = False) -> pa.Array:
        """ISO 8601 UTC timestamps such as `2025-03-04T10:15:00Z` (in quotes if `quoted`)."""
        seconds = np.asarray(seconds, dtype=np.int64)
        day = seconds // SECONDS_PER_DAY
        dates, times = (self._date_tq, self._times_q) if quoted else (self._date_t, self._times)
        return pc.binary_join_element_wise(
            take(dates, day - self.first_day), take(times, seconds - day * SECONDS_PER_DAY), ""
        )


def csv_escape(column: pa.Array) -> pa.Array:
    """Quote the values that need it (comma, quote, line break), RFC 4180 style."""
    needs = pc.fill_null(pc.match_substring_regex(column, '[,"\r\n]'), False)
    if not pc.any(needs).as_py():
        return column
    quoted = pc.binary_join_element_wise(
        '"', pc.replace_substring(pc.filter(column, needs), '"', '""'), '"', ""
    )
    return pc.replace_with_mask(column, needs, quoted)


def csv_lines(columns: Sequence[pa.Array], free_text: Sequence[bool]) -> pa.StringArray:
    """One CSV line (with its newline) per row; nulls become empty strings.

    Only free-text columns are scanned for characters that need quoting: every other column is
    produced by this package in a form that never does (values planted as defects included).
    """
    cells = []
    for column, scan in zip(columns, free_text, strict=True):
        column = pc.fill_null(column, "")
        cells.append(csv_escape(column) if scan else column)
    cells[-1] = pc.binary_join_element_wise(cells[-1], "\n", "")
    return _as_array(pc.binary_join_element_wise(*cells, ","))


def jsonl_lines(names: Sequence[str], columns: Sequence[pa.Array]) -> pa.StringArray:
    """One JSON object per row (string values, nulls as null) with its newline.

    Values are generated by this package and contain no quote, backslash or control character,
    so no JSON escaping is needed (a unit test checks that every line parses). Columns without
    nulls get their quotes from the neighbouring literal pieces: one pass less over the data.
    """
    pieces: list = []
    literal = "{"
    for i, (name, column) in enumerate(zip(names, columns, strict=True)):
        literal += ("" if i == 0 else ",") + f'"{name}":'
        if column.null_count == 0:
            pieces += [literal + '"', column]
            literal = '"'
        else:
            pieces += [
                literal,
                pc.fill_null(pc.binary_join_element_wise('"', column, '"', ""), "null"),
            ]
            literal = ""
    pieces.append(literal + "}\n")
    return _as_array(pc.binary_join_element_wise(*pieces, ""))


def jsonl_literal_lines(names: Sequence[str], columns: Sequence[pa.Array]) -> pa.StringArray:
    """One JSON object per row from columns that already hold JSON literals."""
    pieces: list = []
    for i, (name, column) in enumerate(zip(names, columns, strict=True)):
        pieces += [("{" if i == 0 else ",") + f'"{name}":', column]
    pieces.append("}\n")
    return _as_array(pc.binary_join_element_wise(*pieces, ""))


def _as_array(values: pa.Array | pa.ChunkedArray) -> pa.StringArray:
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    return values


def line_slices(lines: pa.StringArray, bounds: np.ndarray) -> list[memoryview]:
    """The bytes of lines[bounds[i]:bounds[i+1]] for each i, without copying."""
    _, offsets_buf, data_buf = lines.buffers()
    offsets = np.frombuffer(offsets_buf, dtype=np.int32)[
        lines.offset : lines.offset + len(lines) + 1
    ]
    data = memoryview(data_buf) if data_buf is not None else memoryview(b"")
    return [data[offsets[lo] : offsets[hi]] for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)]


def day_bounds(sorted_days: np.ndarray, first_day: int, n_days: int) -> np.ndarray:
    """Row boundaries of each day 0..n_days-1 in an array sorted by delivery day."""
    return np.searchsorted(sorted_days, np.arange(first_day, first_day + n_days + 1))


class FileSink:
    """Writes files on a small thread pool, keeping at most a few pending writes in memory."""

    def __init__(self, gzip_level: int, workers: int = 2, max_pending: int = 7) -> None:
        self.gzip_level = gzip_level
        self._pool = ThreadPoolExecutor(max_workers=workers)
        self._pending: list[Future] = []
        self._max_pending = max_pending
        self.files = 0
        self.bytes = 0
        self._lock = threading.Lock()

    def write(
        self,
        path: Path,
        parts: Sequence[bytes | memoryview],
        keep_alive: object = None,
    ) -> None:
        """Queue `parts` (header, payload...) to `path`; gzip when the name ends in `.gz`.

        `keep_alive` holds the Arrow buffers the memoryviews point into until written.
        """
        while len(self._pending) >= self._max_pending:
            self._pending.pop(0).result()
        self._pending.append(self._pool.submit(self._write, path, parts, keep_alive))

    def _write(self, path: Path, parts: Sequence[bytes | memoryview], _keep: object) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.name.endswith(".gz"):
            # wbits=31: gzip container with modification time 0 -> byte-identical reruns.
            compressor = zlib.compressobj(self.gzip_level, zlib.DEFLATED, 31)
            blob = b"".join(compressor.compress(p) for p in parts) + compressor.flush()
        else:
            blob = b"".join(parts)
        path.write_bytes(blob)
        with self._lock:
            self.files += 1
            self.bytes += len(blob)

    def close(self) -> None:
        """Wait for queued writes (re-raising their errors); safe to call twice."""
        try:
            for future in self._pending:
                future.result()
        finally:
            self._pending.clear()
            self._pool.shutdown()


def reset_dir(path: Path) -> None:
    """Remove a previous run's output so a rerun replaces it cleanly."""
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
