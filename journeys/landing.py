"""Landing: every export file in, nothing lost.

For each file under the exports folder (layout in `journeys.contract`), in delivery order:

1. checksum it; a checksum already loaded is a re-delivery and is skipped (recorded as such);
2. read it as text (CSV, JSONL, Parquet; gzip too): a file that cannot be read as a whole, or
   lacks a required column, is rejected with the reason and nothing of it lands;
3. validate every row in one set-based DuckDB query: a row that breaks the contract goes to
   `raw.quarantine` with file, line, raw content and reason; the rest is written to
   `<landed>/<source>/<entity>/<delivery-date>__<name>__<checksum>.parquet`, under a temporary
   name renamed into place, exactly as it arrived plus load metadata;
4. record the file in `raw.load_manifest` (received = loaded + quarantined) in the same
   transaction as its quarantined rows.

A crash between (3) and (4) leaves an orphan Parquet file that no view reads; the re-run writes the
same file again and records it. `raw.<source>_<entity>` views read exactly the files the manifest
lists, so a half-landed file is never visible. Every contract entity gets a view, empty when no
export of it exists: the pipeline runs on whatever sources a company has.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import os
import re
import uuid
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from journeys.contract import BY_SOURCE_ENTITY, ENTITIES, FORMATS, Entity
from journeys.erasure import ERASED_REASON, erasure_guard
from journeys.settings import Settings
from journeys.warehouse import connect

LINE = "_line"  # 1-based physical line (CSV, JSONL) or row number (Parquet) in the file
_NAME = re.compile(r"^(?P<entity>[a-z][a-z0-9_]*?)(?:-(?P<part>[A-Za-z0-9_.]+))?$")
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")

MANIFEST_DDL = """
create schema if not exists raw;
create table if not exists raw.load_manifest (
    batch_id varchar not null,
    file varchar not null,
    source varchar,
    entity varchar,
    delivery_date date,
    checksum varchar not null,
    file_format varchar,
    size_bytes bigint,
    status varchar not null,          -- loaded | rejected | duplicate
    rows_received bigint,
    rows_loaded bigint,
    rows_quarantined bigint,
    extra_columns varchar[],
    missing_optional_columns varchar[],
    unknown_values varchar[],
    reason varchar,
    landed_path varchar,
    loaded_at timestamptz not null
);
create table if not exists raw.quarantine (
    batch_id varchar not null,
    file varchar not null,
    source varchar,
    entity varchar,
    checksum varchar not null,
    line bigint,
    raw_content varchar,
    reason varchar not null,
    quarantined_at timestamptz not null
);
"""


class RejectedFile(Exception):
    """A file that cannot be landed as a whole; the message says why."""


@dataclass
class FileResult:
    file: str
    status: str
    received: int = 0
    loaded: int = 0
    quarantined: int = 0
    reason: str | None = None
    extra_columns: list[str] = field(default_factory=list)
    unknown_values: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Delivery:
    path: Path
    relative: str
    entity: Entity
    delivery_date: date
    file_format: str


# --------------------------------------------------------------------------- discovery


def discover(exports: Path, up_to: date | None = None) -> tuple[list[Delivery], list[FileResult]]:
    """Export files in delivery order, and the files that do not fit the layout at all."""
    deliveries: list[Delivery] = []
    misplaced: list[FileResult] = []
    if not exports.exists():
        return deliveries, misplaced
    for path in sorted(p for p in exports.rglob("*") if p.is_file()):
        relative = path.relative_to(exports).as_posix()
        if path.name.startswith("."):
            continue  # editor and transfer droppings (.DS_Store, .part files)
        parts = path.relative_to(exports).parts
        reason = None
        suffix = next((s for s in FORMATS if path.name.endswith(s)), None)
        if len(parts) != 3 or not _DAY.match(parts[1]):
            reason = "not laid out as <source>/<YYYY-MM-DD>/<entity>.<ext>"
        elif suffix is None:
            reason = f"unsupported file type; expected one of {', '.join(FORMATS)}"
        else:
            match = _NAME.match(path.name[: -len(suffix)])
            entity = BY_SOURCE_ENTITY.get((parts[0], match["entity"] if match else ""))
            if entity is None:
                known = ", ".join(f"{e.source}/{e.name}" for e in ENTITIES)
                reason = f"unknown source/entity {parts[0]}/{path.name}; known: {known}"
            else:
                try:
                    day = date.fromisoformat(parts[1])
                except ValueError:
                    reason = f"delivery folder {parts[1]} is not a valid date"
                else:
                    if up_to is None or day <= up_to:
                        deliveries.append(Delivery(path, relative, entity, day, FORMATS[suffix]))
                    continue
        misplaced.append(FileResult(relative, "rejected", reason=reason))
    deliveries.sort(key=lambda d: (d.delivery_date, d.relative))
    return deliveries, misplaced


def checksum(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# --------------------------------------------------------------------------- reading


def _open_text(path: Path) -> io.BufferedIOBase:
    return gzip.open(path, "rb") if path.name.endswith(".gz") else path.open("rb")


def _read_header(path: Path) -> list[str]:
    with _open_text(path) as f:
        first = f.readline()
    if not first.strip():
        raise RejectedFile("empty file: no header row")
    try:
        text = first.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise RejectedFile(f"not UTF-8 encoded ({e.reason} at byte {e.start} of the header)") from e
    header = [h.strip().lower() for h in next(csv.reader([text]))]
    duplicated = sorted({h for h in header if header.count(h) > 1})
    if duplicated:
        raise RejectedFile(f"duplicate column names in header: {', '.join(duplicated)}")
    return header


def _read_lines_as_table(
    path: Path, names: list[str], skip_rows: int, delimiter: str, quote: bool
) -> tuple[pa.Table, list[dict]]:
    """Read delimited text into string columns, keeping malformed lines aside with their number."""
    invalid: list[dict] = []
    blank_lines: list[int] = []

    def on_invalid(row: pacsv.InvalidRow) -> str:
        if not row.text.strip():
            blank_lines.append(row.number)
        else:
            invalid.append(
                {
                    LINE: row.number,
                    "raw_content": row.text,
                    "reason": f"expected {row.expected_columns} fields, found {row.actual_columns}",
                }
            )
        return "skip"

    try:
        table = pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(
                column_names=names, skip_rows=skip_rows, use_threads=False, encoding="utf8"
            ),
            parse_options=pacsv.ParseOptions(
                delimiter=delimiter,
                quote_char='"' if quote else False,
                ignore_empty_lines=False,
                invalid_row_handler=on_invalid,
            ),
            convert_options=pacsv.ConvertOptions(
                column_types={n: pa.string() for n in names},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except (pa.ArrowInvalid, OSError, EOFError, zlib.error, UnicodeDecodeError) as e:
        raise RejectedFile(_explain_read_error(e)) from e
    # Physical line of each good row: the lines that were neither header nor malformed nor blank.
    first_line = skip_rows + 1
    taken = np.array([r[LINE] for r in invalid] + blank_lines, dtype=np.int64)
    candidates = np.arange(first_line, first_line + table.num_rows + len(taken), dtype=np.int64)
    lines = np.setdiff1d(candidates, taken, assume_unique=True)[: table.num_rows]
    return table.append_column(LINE, pa.array(lines)), invalid


def _explain_read_error(e: BaseException) -> str:
    text = str(e)
    if isinstance(e, EOFError) or "Compressed file ended" in text or "truncated" in text.lower():
        return "truncated or corrupt gzip: the file ends before its compressed stream does"
    if isinstance(e, zlib.error) or "gzip" in text.lower() or "decompress" in text.lower():
        return f"corrupt gzip: {text}"
    if "UTF8" in text or "utf-8" in text.lower() or isinstance(e, UnicodeDecodeError):
        return f"not UTF-8 encoded: {text}"
    return f"unreadable: {text}"


def read_export(delivery: Delivery) -> tuple[pa.Table, list[dict], list[str]]:
    """A file as string columns plus `_line`, its malformed lines, and the columns it carries."""
    path = delivery.path
    if path.stat().st_size == 0:
        raise RejectedFile("empty file (0 bytes)")
    if delivery.file_format == "csv":
        header = _read_header(path)
        table, invalid = _read_lines_as_table(path, header, 1, ",", quote=True)
        # pyarrow counts the skipped header as line 1 only for malformed rows; good rows start at 2
        return table, invalid, header
    if delivery.file_format == "jsonl":
        # One string column per line; DuckDB parses the JSON set-wise in `_jsonl_to_columns`.
        table, invalid = _read_lines_as_table(path, ["_raw"], 0, "\x1f", quote=False)
        return table, invalid, []
    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as e:
        raise RejectedFile(f"unreadable Parquet: {e}") from e
    table = table.rename_columns([c.strip().lower() for c in table.column_names])
    # The contract is checked on text, as for CSV: Parquet's own types are rendered as text.
    with duckdb.connect() as con:
        con.execute("set TimeZone = 'UTC'")
        con.register("parquet_file", table)
        as_text = ", ".join(f"{_quote(c)}::varchar as {_quote(c)}" for c in table.column_names)
        table = con.sql(f"select {as_text} from parquet_file").to_arrow_table()
    table = table.append_column(LINE, pa.array(range(1, table.num_rows + 1), pa.int64()))
    return table, [], [c for c in table.column_names if c != LINE]


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _parse_jsonl(work: duckdb.DuckDBPyConnection, lines: pa.Table) -> tuple[dict, dict]:
    """Parse the lines of a batch's JSONL files set-wise into `jsonl_parsed` (in `work`).

    Returns the keys found per file index and, per file index, the lines that are not JSON
    objects (broken JSON, arrays, scalars) for quarantine. Blank lines are not rows.
    """
    work.register("jsonl_lines", lines)
    work.execute(
        f"""create or replace temp table jsonl_parsed as
        select _file_index, {LINE}, _raw,
               case when _raw is null or trim(_raw) = '' then 'blank'
                    when not json_valid(_raw) then 'broken JSON'
                    when json_type(_raw::json) <> 'OBJECT' then 'not a JSON object'
               end as problem
        from jsonl_lines"""
    )
    work.unregister("jsonl_lines")
    keys: dict[int, list[str]] = {}
    for index, key in work.execute(
        "select distinct _file_index, lower(k) from (select _file_index, "
        "unnest(json_keys(_raw::json)) as k from jsonl_parsed where problem is null) order by all"
    ).fetchall():
        keys.setdefault(index, []).append(key)
    bad: dict[int, list[dict]] = {}
    for index, line, raw, problem in work.execute(
        f"select _file_index, {LINE}, _raw, problem from jsonl_parsed "
        "where problem is not null and problem <> 'blank' order by all"
    ).fetchall():
        bad.setdefault(index, []).append({LINE: line, "raw_content": raw, "reason": problem})
    return keys, bad


# --------------------------------------------------------------------------- validation


def _rejection_reason_sql(entity: Entity, present: set[str]) -> str:
    """SQL expression naming every way a row breaks the contract ('' for a good row)."""
    checks: list[str] = []
    for col in entity.columns:
        if col.name not in present:
            continue
        v = f"nullif(trim({_quote(col.name)}), '')"
        if col.required:
            checks.append(f"case when {v} is null then 'missing required {col.name}' end")
        cast = {
            "timestamp": f"try_cast({v} as timestamptz)",
            "date": f"try_cast({v} as date)",
            "integer": f"try_cast({v} as bigint)",
            "boolean": f"try_cast({v} as boolean)",
            "decimal": f"case when isfinite(try_cast({v} as double)) then 1 end",
        }.get(col.kind)
        if cast:
            checks.append(
                f"case when {v} is not null and {cast} is null then "
                f"'{col.name} is not a valid {col.kind}: ' || left({v}, 40) end"
            )
        if col.allowed and col.strict_vocabulary:
            allowed = ", ".join(f"'{a}'" for a in col.allowed)
            checks.append(
                f"case when {v} is not null and lower({v}) not in ({allowed}) then "
                f"'{col.name} ' || left({v}, 40) || ' is not one of {'/'.join(col.allowed)}' end"
            )
    for group in entity.one_of:
        have = [g for g in group if g in present]
        none = " and ".join(f"nullif(trim({_quote(g)}), '') is null" for g in have) or "true"
        checks.append(f"case when {none} then 'needs at least one of {', '.join(group)}' end")
    return f"concat_ws('; ', {', '.join(checks)})" if checks else "''"


def _unknown_vocabulary(good: pa.Table, entity: Entity, present: set[str]) -> list[str]:
    """Values outside an open vocabulary (kept, but reported), e.g. a new web event type."""
    found: list[str] = []
    for col in entity.columns:
        if col.allowed and not col.strict_vocabulary and col.name in present:
            seen = pc.unique(pc.utf8_lower(pc.utf8_trim_whitespace(good[col.name])))
            found += sorted(
                f"{col.name}={v}" for v in seen.to_pylist() if v and v not in col.allowed
            )
    return found


# --------------------------------------------------------------------------- landing


@dataclass
class _Parsed:
    """A readable file of a batch, before validation."""

    index: int
    delivery: Delivery
    digest: str
    table: pa.Table
    malformed: list[dict]
    columns: list[str]


def land_batch(
    con: duckdb.DuckDBPyConnection,
    work: duckdb.DuckDBPyConnection,
    files: list[tuple[Delivery, str]],
    landed_root: Path,
    batch: str,
    erased_guard: Callable[[set[str]], str | None] | None = None,
) -> list[FileResult]:
    """Land files of one entity: one validation query for all, then one commit per file.

    Validation runs on `work`, an in-memory DuckDB, in one set-based query over every file of
    the batch (a query costs milliseconds whatever its size, and a year of daily files arrives
    at once on a first load). `erased_guard` (journeys.erasure) names rows of erased people:
    quarantined without their content. Each file is then written to its own Parquet file and
    recorded in its own short transaction on the warehouse (`con`), so files stay independent.
    """
    entity = files[0][0].entity
    results: list[FileResult] = []
    parsed: list[_Parsed] = []
    for index, (delivery, digest) in enumerate(files):
        try:
            table, malformed, columns = read_export(delivery)
        except RejectedFile as e:
            results.append(_rejected(con, batch, delivery, digest, str(e)))
            continue
        parsed.append(_Parsed(index, delivery, digest, table, malformed, columns))

    as_json = [p for p in parsed if p.delivery.file_format == "jsonl"]
    if as_json:
        keys, not_objects = _parse_jsonl(work, pa.concat_tables(_indexed(p) for p in as_json))
        for p in as_json:
            p.columns = keys.get(p.index, [])
            p.malformed += not_objects.get(p.index, [])

    accepted: list[_Parsed] = []
    for p in parsed:
        missing = [c for c in entity.required if c not in p.columns]
        if not missing:
            accepted.append(p)
            continue
        hint = len(p.columns) == 1 and p.delivery.file_format == "csv"
        reason = (
            f"missing required column(s) {', '.join(missing)}; found columns: "
            f"{', '.join(p.columns) or 'none'}" + (" (is the delimiter a comma?)" if hint else "")
        )
        results.append(_rejected(con, batch, p.delivery, p.digest, reason))
    if not accepted:
        return results

    present = {c for p in accepted for c in p.columns}
    extras = [
        c
        for c in dict.fromkeys(c for p in accepted for c in p.columns)
        if c not in entity.column_names
    ]
    out_columns = entity.column_names + extras
    as_text = [p for p in accepted if p.delivery.file_format != "jsonl"]
    text_columns = {c for p in as_text for c in p.columns}
    json_columns = {c for p in accepted if p.delivery.file_format == "jsonl" for c in p.columns}
    sources = []
    if as_text:
        work.register(
            "text_rows", pa.concat_tables((_indexed(p) for p in as_text), promote_options="default")
        )
        sources.append(
            "select _file_index, {LINE}, "
            + ", ".join(
                f"{_quote(c)}" if c in text_columns else f"null::varchar as {_quote(c)}"
                for c in out_columns
            )
            + " from text_rows"
        )
    if json_columns or any(p.delivery.file_format == "jsonl" for p in accepted):
        sources.append(
            "select _file_index, {LINE}, "
            + ", ".join(
                f"json_extract_string(_raw, {_json_path(c)}) as {_quote(c)}"
                if c in json_columns
                else f"null::varchar as {_quote(c)}"
                for c in out_columns
            )
            + " from jsonl_parsed where problem is null"
        )
    work.register(
        "batch_files",
        pa.table(
            {
                "_file_index": [p.index for p in accepted],
                "_file": [p.delivery.relative for p in accepted],
                "_checksum": [p.digest for p in accepted],
                "_delivery_date": [p.delivery.delivery_date for p in accepted],
            }
        ),
    )
    values = ", ".join(f"nullif({_quote(c)}, '') as {_quote(c)}" for c in out_columns)
    reason = _rejection_reason_sql(entity, present)
    erased = erased_guard(present) if erased_guard else None
    if erased:
        reason = f"coalesce({erased}, {reason})"
    raw_json = (
        "to_json(struct_pack("
        + ", ".join(f"{_quote(c)} := {_quote(c)}" for c in out_columns)
        + "))::varchar"
    )
    checked = work.sql(
        f"""with received as (
            {" union all ".join(s.format(LINE=LINE) for s in sources)}
        ), rows as (
            select _file_index, {LINE}, {values} from received
        ), judged as (
            select *, {reason} as _reason from rows
        )
        select
            {", ".join(_quote(c) for c in out_columns)},
            batch_files._file, {LINE}, batch_files._checksum, batch_files._delivery_date,
            '{batch}' as _batch_id,
            _reason,
            case when _reason <> '' and _reason <> '{ERASED_REASON}' then {raw_json}
            end as _raw_content,
            _file_index
        from judged join batch_files using (_file_index)
        order by _file_index, {LINE}"""
    ).to_arrow_table()
    for name in ("text_rows", "batch_files"):
        if as_text or name == "batch_files":
            work.unregister(name)

    file_index = checked["_file_index"].to_numpy()
    for p in accepted:
        first, last = np.searchsorted(file_index, [p.index, p.index + 1])
        rows = checked.slice(first, last - first)
        file_extras = [c for c in p.columns if c in extras]
        results.append(_commit_file(con, p, rows, file_extras, landed_root, batch))
    return results


def _indexed(p: _Parsed) -> pa.Table:
    return p.table.append_column("_file_index", pa.array([p.index] * p.table.num_rows, pa.int64()))


def _commit_file(
    con, p: _Parsed, rows: pa.Table, extras: list[str], landed_root: Path, batch: str
) -> FileResult:
    """Write one file's good rows to Parquet (aside, then renamed); record it in one transaction."""
    entity, delivery = p.delivery.entity, p.delivery
    is_good = pc.equal(rows["_reason"], "")
    keep = (
        entity.column_names + extras + ["_file", LINE, "_checksum", "_delivery_date", "_batch_id"]
    )
    good = rows.filter(is_good).select(keep)
    bad = rows.filter(pc.invert(is_good))
    unknown = _unknown_vocabulary(good, entity, set(p.columns))
    target_dir = landed_root / entity.source / entity.name
    target_dir.mkdir(parents=True, exist_ok=True)
    stem = delivery.path.name.split(".")[0]
    target = target_dir / f"{delivery.delivery_date}__{stem}__{p.digest[:12]}.parquet"
    temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    pq.write_table(good, temporary, compression="zstd")
    os.replace(temporary, target)

    loaded, quarantined = good.num_rows, bad.num_rows + len(p.malformed)
    now = datetime.now(UTC)
    file_facts = [batch, delivery.relative, entity.source, entity.name, p.digest]
    con.execute("begin transaction")
    try:
        if bad.num_rows:
            con.register("bad_rows", bad)
            con.execute(
                f"insert into raw.quarantine select ?, ?, ?, ?, ?, {LINE}, _raw_content, "
                "_reason, ? from bad_rows",
                [*file_facts, now],
            )
            con.unregister("bad_rows")
        if p.malformed:
            con.executemany(
                "insert into raw.quarantine values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [[*file_facts, m[LINE], m["raw_content"], m["reason"], now] for m in p.malformed],
            )
        missing = [c for c in entity.column_names if c not in p.columns]
        _record(
            con,
            batch,
            delivery,
            p.digest,
            "loaded",
            now,
            received=loaded + quarantined,
            loaded=loaded,
            quarantined=quarantined,
            extra=extras,
            missing=missing,
            unknown=unknown,
            landed_path=str(target),
        )
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    return FileResult(
        delivery.relative,
        "loaded",
        loaded + quarantined,
        loaded,
        quarantined,
        extra_columns=extras,
        unknown_values=unknown,
    )


def _rejected(con, batch: str, delivery: Delivery, digest: str, reason: str) -> FileResult:
    """Record a rejected file once per (file, checksum): re-runs do not repeat the record."""
    seen = con.execute(
        "select count(*) from raw.load_manifest where status = 'rejected' and file = ? "
        "and checksum = ?",
        [delivery.relative, digest],
    ).fetchall()[0][0]
    if not seen:
        _record(con, batch, delivery, digest, "rejected", datetime.now(UTC), reason=reason)
    return FileResult(delivery.relative, "rejected", reason=reason)


def _sql_text(value: str) -> str:
    return value.replace("'", "''")


def _json_path(column: str) -> str:
    return "'$.\"" + column.replace("'", "''").replace('"', '\\"') + "\"'"


def _record(
    con,
    batch,
    delivery: Delivery,
    digest,
    status,
    now,
    *,
    received=0,
    loaded=0,
    quarantined=0,
    extra=(),
    missing=(),
    unknown=(),
    reason=None,
    landed_path=None,
):
    con.execute(
        f"insert into raw.load_manifest values ({', '.join(['?'] * 18)})",
        [
            batch,
            delivery.relative,
            delivery.entity.source,
            delivery.entity.name,
            delivery.delivery_date,
            digest,
            delivery.file_format,
            delivery.path.stat().st_size,
            status,
            received,
            loaded,
            quarantined,
            list(extra),
            list(missing),
            list(unknown),
            reason,
            landed_path,
            now,
        ],
    )


def refresh_raw_views(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """(Re)create one `raw.<source>_<entity>` view per contract entity over its landed files."""
    files = dict(
        con.execute(
            "select source || '_' || entity, list(landed_path order by delivery_date, file) "
            "from raw.load_manifest where status = 'loaded' group by 1"
        ).fetchall()
    )
    counts: dict[str, int] = {}
    for entity in ENTITIES:
        paths = files.get(entity.table)
        if paths:
            listed = ", ".join("'" + p.replace("'", "''") + "'" for p in paths)
            body = f"select * from read_parquet([{listed}], union_by_name = true)"
        else:  # no export yet: an empty relation with the contract's columns
            cols = ", ".join(f"null::varchar as {_quote(c)}" for c in entity.column_names)
            body = (
                f"select {cols}, null::varchar as _file, null::bigint as {LINE}, "
                "null::varchar as _checksum, null::date as _delivery_date, "
                "null::varchar as _batch_id where false"
            )
        con.execute(f"create or replace view raw.{entity.table} as {body}")
        counts[entity.table] = len(paths or [])
    return counts


def land_exports(settings: Settings, up_to: date | None = None) -> dict:
    """Land every not-yet-loaded export delivered on or before `up_to`; see the module doc."""
    deliveries, misplaced = discover(settings.exports, up_to)
    batch = f"land-{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
    results: list[FileResult] = list(misplaced)
    with connect(settings) as con, duckdb.connect() as work:
        work.execute("set TimeZone = 'UTC'")
        con.execute(MANIFEST_DDL)
        erased_guard = erasure_guard(con, work, settings)
        loaded = dict(
            con.execute(
                "select checksum, any_value(file) from raw.load_manifest "
                "where status = 'loaded' group by 1"
            ).fetchall()
        )
        recorded_duplicates = set(
            con.execute(
                "select file, checksum from raw.load_manifest where status = 'duplicate'"
            ).fetchall()
        )
        pending: dict[str, list[tuple[Delivery, str]]] = {}
        for delivery in deliveries:
            digest = checksum(delivery.path)
            first = loaded.get(digest)
            if first is None:  # new content; a second copy in this same run is a duplicate
                loaded[digest] = delivery.relative
                pending.setdefault(delivery.entity.table, []).append((delivery, digest))
            elif first != delivery.relative:
                reason = f"same content as {first}, already loaded"
                if (delivery.relative, digest) not in recorded_duplicates:  # once, not every run
                    _record(
                        con, batch, delivery, digest, "duplicate", datetime.now(UTC), reason=reason
                    )
                    results.append(FileResult(delivery.relative, "duplicate", reason=reason))
        batches = [chunk for files in pending.values() for chunk in _chunks(files)]
        for chunk in _progress(batches, sum(len(c) for c in batches)):
            results += land_batch(con, work, chunk, settings.landed, batch, erased_guard)
        views = refresh_raw_views(con)
    landed = [r for r in results if r.status == "loaded"]
    return {
        "batch_id": batch,
        "files_seen": len(deliveries) + len(misplaced),
        "files_loaded": len(landed),
        "files_rejected": sum(r.status == "rejected" for r in results),
        "files_duplicate": sum(r.status == "duplicate" for r in results),
        "rows_received": sum(r.received for r in landed),
        "rows_loaded": sum(r.loaded for r in landed),
        "rows_quarantined": sum(r.quarantined for r in landed),
        "raw_files_per_table": views,
        "files": [r.__dict__ for r in results],
    }


BATCH_FILES = 64
BATCH_BYTES = 64 << 20  # on disk; bounds the memory one validation query needs


def _chunks(files: list[tuple[Delivery, str]]) -> Iterator[list[tuple[Delivery, str]]]:
    chunk: list[tuple[Delivery, str]] = []
    size = 0
    for item in files:
        item_size = item[0].path.stat().st_size
        if chunk and (len(chunk) == BATCH_FILES or size + item_size > BATCH_BYTES):
            yield chunk
            chunk, size = [], 0
        chunk.append(item)
        size += item_size
    if chunk:
        yield chunk


def _progress(batches: list, files: int) -> Iterator:
    if not batches or not os.isatty(2):
        yield from batches
        return
    from rich.progress import Progress

    with Progress(transient=True) as progress:
        task = progress.add_task("landing exports", total=files)
        for chunk in batches:
            yield chunk
            progress.advance(task, len(chunk))
