"""Erasure ("right to be forgotten"): `journeys forget` records a request, the next run acts on it.

A request never holds the person's identifiers in plain text: `journeys forget --email x` writes
only a salted SHA-256 of the normalised value to `<erasure_dir>/requests/<id>.json`. The salt is
a secret of this environment (`JOURNEYS_ERASURE_SALT`, else a file created once beside the
requests), so the hashes cannot be reversed by hashing a list of candidate addresses without it.

The next run, before it lands anything (`apply_erasure_requests`):

1. finds the person from the hashes: CRM records with that e-mail or CRM id, customers with that
   customer id, and through `marts.customer_identifiers` every record the identity step linked
   to them; then every identifier they carry (CRM ids, e-mails, phones, loyalty cards, cookies,
   order and receipt ids) and every raw row that carries one of them;
2. rewrites the landed Parquet files that hold such rows without them (aside, then renamed) and
   records per file how many rows were erased (`raw.erased_rows`), so loaded = landed + erased;
3. blanks the raw content of quarantined rows that mention the person (the row count stays);
4. deletes their rows from every table of the warehouse that has an identifier column (marts,
   history tables, model scores, identity state), whatever branch created it, then rewrites the
   warehouse into a fresh file (freed DuckDB blocks keep deleted values);
5. rewrites every output CSV/Parquet file under JOURNEYS_HOME that holds one of their values
   (activation exports included) and republishes the analyst warehouse;
6. keeps only salted hashes of every identifier in `raw.erasure_log`, and deletes the request.

Landing then quarantines any re-delivered row carrying a logged identifier, with the reason and
without its content (`erased_row_reason_sql`), so received = loaded + quarantined still holds.
Delivered export files under `$JOURNEYS_EXPORTS` are the source systems' copies and are not
touched: the erasure summary names those that hold the person, for the source owner to purge.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from journeys.settings import Settings
from journeys.warehouse import connect, table_exists

# Identifier kinds, how a value of each is normalised before hashing, and the columns (of the
# export contract and the warehouse) that carry them.
NORMALISE = {
    "email": "lower(trim({}))",
    "phone": "{phone}",  # E.164 digits: see _phone_sql
    "crm_id": "trim({})",
    "customer_id": "trim({})",
    "loyalty_card": "trim({})",
    "cookie": "trim({})",
    "order": "trim({})",
    "receipt": "trim({})",
}
COLUMN_KINDS = {
    "crm_id": "crm_id",
    "email": "email",
    "customer_email": "email",
    "user_email": "email",
    "phone": "phone",
    "loyalty_card_id": "loyalty_card",
    "anonymous_id": "cookie",
    "order_id": "order",
    "receipt_id": "receipt",
    "customer_id": "customer_id",
}
# Warehouse columns that may hold a person's identifier: rows matching one are deleted.
IDENTIFIER_COLUMN = (
    r"(customer_id|crm_id|email|phone|loyalty_card|anonymous_id|source_key|node_key"
    r"|order_id|receipt_id|cookie)"
)
# Tables the erasure keeps (with content blanked) or owns.
KEPT_TABLES = {
    ("raw", "load_manifest"),
    ("raw", "quarantine"),
    ("raw", "erasure_log"),
    ("raw", "erased_rows"),
}
# Output folders scanned for files to rewrite; exports and the generator's truth are inputs.
NOT_OUTPUTS = ("exports", "truth", "landed")

LOG_DDL = """
create schema if not exists raw;
create table if not exists raw.erasure_log (
    request_id varchar not null,
    requested_at timestamptz not null,
    applied_at timestamptz not null,
    identifier_kind varchar not null,
    identifier_hash varchar not null
);
create table if not exists raw.erased_rows (
    request_id varchar not null,
    file varchar not null,
    source varchar,
    entity varchar,
    landed_path varchar,
    rows_erased bigint not null,
    erased_at timestamptz not null
);
"""
ERASED_REASON = "erased person: identifier on the erasure log"


class ErasureError(ValueError):
    """A request that cannot be recorded (no identifier given)."""


# --------------------------------------------------------------------------- requests


def salt(settings: Settings) -> str:
    """This environment's secret salt: the setting, else a random one created once (mode 600)."""
    if settings.erasure_salt:
        return settings.erasure_salt
    path = settings.erasure_dir / "salt"
    if not path.exists():
        settings.erasure_dir.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".salt.{uuid.uuid4().hex}")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
        try:
            os.link(temporary, path)  # first writer wins; a concurrent one reads its salt
        except FileExistsError:
            pass
        temporary.unlink()
    return path.read_text().strip()


def normalise(kind: str, value: str) -> str | None:
    """Python twin of NORMALISE (what the SQL does before hashing)."""
    text = value.strip()
    if kind == "email":
        text = text.lower()
    elif kind == "phone":
        digits = "".join(c for c in text if c.isdigit())
        if text.startswith("+"):
            text = digits
        elif digits.startswith("00"):
            text = digits[2:]
        elif digits.startswith("0"):
            text = default_phone_country_code() + digits[1:]
        else:
            text = digits
    return text or None


def identifier_hash(salt_value: str, kind: str, value: str) -> str | None:
    text = normalise(kind, value)
    if text is None:
        return None
    return hashlib.sha256(f"{salt_value}:{text}".encode()).hexdigest()


def _normalise_sql(kind: str, column: str) -> str:
    """SQL twin of normalise() over a column."""
    if kind == "phone":
        return _phone_sql(column)
    return NORMALISE[kind].format(column)


def _phone_sql(column: str) -> str:
    """A phone number as E.164 digits, as the dbt macro normalize_phone writes it (without +)."""
    digits = f"regexp_replace({column}, '[^0-9]', '', 'g')"
    return (
        f"case when {digits} = '' then null "
        f"when trim({column}) like '+%' then {digits} "
        f"when {digits} like '00%' then substr({digits}, 3) "
        f"when {digits} like '0%' then '{default_phone_country_code()}' || substr({digits}, 2) "
        f"else {digits} end"
    )


@functools.cache
def default_phone_country_code() -> str:
    """The dbt project's default_phone_country_code var: one place decides it."""
    import yaml

    from journeys.settings import DBT_PROJECT_DIR

    project = yaml.safe_load((DBT_PROJECT_DIR / "dbt_project.yml").read_text())
    return str(project["vars"]["default_phone_country_code"])


def _hash_sql(kind: str, column: str, salt_parameter: str = "$salt") -> str:
    """SQL twin of identifier_hash over a column."""
    return f"sha256({salt_parameter} || ':' || {_normalise_sql(kind, column)})"


@dataclass(frozen=True)
class Request:
    request_id: str
    requested_at: datetime
    identifiers: list[dict]  # [{"kind": ..., "hash": ...}]
    path: Path


def record_request(
    settings: Settings,
    *,
    email: str | None = None,
    customer_id: str | None = None,
    crm_id: str | None = None,
) -> Request:
    """Write a request holding salted hashes only; the next run applies it."""
    given = {"email": email, "customer_id": customer_id, "crm_id": crm_id}
    salt_value = salt(settings)
    identifiers = [
        {"kind": kind, "hash": identifier_hash(salt_value, kind, value)}
        for kind, value in given.items()
        if value and normalise(kind, value)
    ]
    if not identifiers:
        raise ErasureError("an erasure request needs --email, --customer-id or --crm-id")
    folder = settings.erasure_dir / "requests"
    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC)
    request_id = f"{now:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
    target = folder / f"{request_id}.json"
    temporary = folder / f".{request_id}.json.tmp"
    temporary.write_text(
        json.dumps(
            {
                "request_id": request_id,
                "requested_at": now.isoformat(),
                "identifiers": identifiers,
            },
            indent=2,
        )
    )
    os.replace(temporary, target)
    return Request(request_id, now, identifiers, target)


def pending_requests(settings: Settings) -> list[Request]:
    folder = settings.erasure_dir / "requests"
    requests = []
    for path in sorted(folder.glob("*.json")) if folder.exists() else []:
        body = json.loads(path.read_text())
        requests.append(
            Request(
                body["request_id"],
                datetime.fromisoformat(body["requested_at"]),
                body["identifiers"],
                path,
            )
        )
    return requests


# --------------------------------------------------------------------------- landing guard


def erased_hashes(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Every identifier hash on the erasure log (empty before the first erasure)."""
    if not table_exists(con, "raw", "erasure_log"):
        return []
    return [
        r[0] for r in con.execute("select distinct identifier_hash from raw.erasure_log").fetchall()
    ]


def erasure_guard(
    con: duckdb.DuckDBPyConnection, work: duckdb.DuckDBPyConnection, settings: Settings
):
    """For landing: None without erasures; else a function giving, for a batch's columns, the SQL
    that names a row carrying a logged identifier (hashes copied into `work`)."""
    hashes = erased_hashes(con)
    if not hashes:
        return None
    work.execute("create or replace temp table erased_identifiers (identifier_hash varchar)")
    work.executemany("insert into erased_identifiers values (?)", [[h] for h in hashes])
    salt_value = salt(settings)
    return lambda columns: erased_row_reason_sql(columns, salt_value)


def erased_row_reason_sql(columns: set[str], salt_value: str) -> str | None:
    """SQL naming a row that carries a logged identifier (in a table `erased_identifiers`)."""
    checks = [
        _hash_sql(kind, _ident(column), _literal(salt_value))
        + " in (select identifier_hash from erased_identifiers)"
        for column, kind in COLUMN_KINDS.items()
        if column in columns
    ]
    if not checks:
        return None
    return f"case when {' or '.join(checks)} then '{ERASED_REASON}' end"


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# --------------------------------------------------------------------------- applying


def apply_erasure_requests(settings: Settings) -> dict:
    """Apply every pending request (see the module docstring); nothing to do is cheap."""
    requests = pending_requests(settings)
    if not requests:
        if (settings.erasure_dir / COMPACTION_PENDING).exists():  # deferred by an earlier run
            return {"requests": 0, "warehouse_compacted_seconds": compact_warehouse(settings)}
        return {"requests": 0}
    salt_value = salt(settings)
    now = datetime.now(UTC)
    with connect(settings) as con:
        con.execute(LOG_DDL)
        con.execute("create or replace temp table erase_seed (request_id varchar, hash varchar)")
        con.executemany(
            "insert into erase_seed values (?, ?)",
            [[r.request_id, i["hash"]] for r in requests for i in r.identifiers],
        )
        con.execute(
            "create or replace temp table requests (request_id varchar, requested_at timestamptz)"
        )
        con.executemany(
            "insert into requests values (?, ?)", [[r.request_id, r.requested_at] for r in requests]
        )
        values = _resolve_person(con, salt_value)
        matches = [r[0] for r in con.execute("select value from erase_match").fetchall()]
        landed = _rewrite_landed_files(con, now)
        redacted = _redact_quarantine(con)
        deleted = _delete_from_tables(con)
        con.execute("begin transaction")
        try:
            con.execute(
                "insert into raw.erasure_log "
                "select distinct s.request_id, r.requested_at, ?, s.kind, s.hash "
                "from (select request_id, 'requested' as kind, hash from erase_seed "
                "      union all "
                "      select seed.request_id, v.kind, v.hash from erase_values v "
                "      cross join (select distinct request_id from erase_seed) seed) s "
                "join requests r using (request_id)",
                [now],
            )
            con.execute(
                "insert into raw.erased_rows select request, file, source, entity, landed_path, "
                "rows_erased, ? from erased_files",
                [now],
            )
            con.execute("commit")
        except BaseException:
            con.execute("rollback")
            raise
        exports_holding = _exports_holding(con, settings)
    compacted = compact_warehouse(settings)
    files = _scrub_output_files(settings, matches)
    republished = None
    if settings.analyst_warehouse.exists():
        from journeys.analyst import publish_analyst_warehouse, published_run_date

        # same run's data, minus the person: the publication keeps its run date
        day = published_run_date(settings) or now.date()
        republished = publish_analyst_warehouse(settings, day)["analyst_warehouse"]
    for request in requests:
        request.path.unlink(missing_ok=True)  # the log keeps its hashes; nothing else is kept
    return {
        "requests": len(requests),
        "customers": values["customers"],
        "identifiers": values["identifiers"],
        "landed_rows_erased": landed,
        "quarantine_rows_redacted": redacted,
        "warehouse_rows_deleted": deleted,
        "output_files_rewritten": files,
        "warehouse_compacted_seconds": compacted,
        "analyst_warehouse_republished": republished,
        "exports_still_holding_person": exports_holding,
    }


def _resolve_person(con: duckdb.DuckDBPyConnection, salt_value: str) -> dict:
    """Temp table erase_values(kind, value, hash): every identifier of the requested people."""
    h = {kind: (lambda column, kind=kind: _hash_sql(kind, column)) for kind in NORMALISE}
    params = {"salt": salt_value}
    has_raw = table_exists(con, "raw", "crm_customers")
    has_identifiers = table_exists(con, "marts", "customer_identifiers")
    # 1. the CRM records and customers the request names
    crm_hits = (
        f"select trim(crm_id) as crm_id from raw.crm_customers where "
        f"{h['email']('email')} in (select hash from erase_seed) "
        f"or {h['crm_id']('crm_id')} in (select hash from erase_seed)"
        if has_raw
        else "select null::varchar as crm_id where false"
    )
    con.execute(f"create or replace temp table erase_crm as {crm_hits}", params)
    con.execute("create or replace temp table erase_customers (customer_id varchar)")
    if has_identifiers:
        con.execute(
            "insert into erase_customers select distinct customer_id "
            "from marts.customer_identifiers where "
            f"{h['customer_id']('customer_id')} in (select hash from erase_seed) "
            "or (source = 'crm' and source_key in (select crm_id from erase_crm)) "
            f"or (source = 'shop_email' and {h['email']('source_key')} in "
            "(select hash from erase_seed))",
            params,
        )
        # every CRM record linked to those customers is theirs too
        con.execute(
            "insert into erase_crm select source_key from marts.customer_identifiers "
            "where source = 'crm' and customer_id in (select customer_id from erase_customers)"
        )
    # 2. every identifier those records and customers carry
    parts = ["select 'customer_id' as kind, customer_id as value from erase_customers"]
    if has_identifiers:
        parts.append(
            "select case source when 'crm' then 'crm_id' when 'shop_email' then 'email' "
            "when 'pos_card' then 'loyalty_card' when 'web_cookie' then 'cookie' "
            "else 'source_key' end, source_key from marts.customer_identifiers "
            "where customer_id in (select customer_id from erase_customers)"
        )
    parts.append("select 'crm_id', crm_id from erase_crm")
    if table_exists(con, "marts", "dim_customers"):  # golden-record forms (phone in E.164)
        parts += [
            f"select '{kind}', {kind} from marts.dim_customers "
            "where customer_id in (select customer_id from erase_customers)"
            for kind in ("email", "phone")
        ]
    if table_exists(con, "staging", "stg_crm__customers"):
        parts += [
            f"select '{kind}', {kind} from staging.stg_crm__customers "
            "where crm_id in (select crm_id from erase_crm)"
            for kind in ("email", "phone")
        ]
    if has_raw:
        parts += [
            "select 'email', email from raw.crm_customers "
            "where trim(crm_id) in (select crm_id from erase_crm)",
            "select 'phone', phone from raw.crm_customers "
            "where trim(crm_id) in (select crm_id from erase_crm)",
            "select 'loyalty_card', loyalty_card_id from raw.crm_customers "
            "where trim(crm_id) in (select crm_id from erase_crm)",
        ]
    con.execute(
        "create or replace temp table erase_plain as select distinct kind, value from ("
        + " union all ".join(parts)
        + ") where nullif(trim(value), '') is not null"
    )
    if has_raw:
        # e-mails seen only on orders or web logins of the request (no CRM record at all)
        for view, column in (("shop_orders", "customer_email"), ("web_events", "user_email")):
            con.execute(
                f"insert into erase_plain select distinct 'email', {column} from raw.{view} "
                f"where {h['email'](column)} in (select hash from erase_seed) "
                f"and {column} not in (select value from erase_plain)",
                params,
            )
        emails = "(select lower(trim(value)) from erase_plain where kind = 'email')"
        crm = "(select trim(value) from erase_plain where kind = 'crm_id')"
        cards = "(select trim(value) from erase_plain where kind = 'loyalty_card')"
        con.execute(
            "insert into erase_plain select distinct 'order', order_id from raw.shop_orders "
            f"where trim(crm_id) in {crm} or lower(trim(customer_email)) in {emails}; "
            "insert into erase_plain select distinct 'receipt', receipt_id from raw.pos_receipts "
            f"where trim(loyalty_card_id) in {cards}; "
            "insert into erase_plain select distinct 'cookie', anonymous_id from raw.web_events "
            f"where lower(trim(user_email)) in {emails} or trim(crm_id) in {crm}; "
            "insert into erase_plain select distinct 'phone', phone from raw.consent_events "
            f"where (lower(trim(email)) in {emails} or trim(crm_id) in {crm}) "
            "and phone is not null"
        )
    # normalised forms (what landing compares) and, for e-mail and phone, the unsalted SHA-256
    # of the normalised value: the form ad-platform audiences carry
    con.execute(
        "create or replace temp table erase_values as "
        "select distinct kind, value, "
        + "case kind "
        + " ".join(f"when '{k}' then {_hash_sql(k, 'value')}" for k in NORMALISE)
        + " else sha256($salt || ':' || trim(value)) end as hash from erase_plain",
        params,
    )
    con.execute(
        "create or replace temp table erase_match as select distinct value from ("
        "select value from erase_values union all select trim(value) from erase_values "
        "union all select lower(trim(value)) from erase_values where kind = 'email' "
        "union all select sha256(lower(trim(value))) from erase_values where kind = 'email' "
        f"union all select '+' || {_phone_sql('value')} from erase_values where kind = 'phone' "
        f"union all select sha256('+' || {_phone_sql('value')}) from erase_values "
        "  where kind = 'phone') where value <> ''"
    )
    customers, identifiers = con.execute(
        "select count(*) filter (where kind = 'customer_id'), count(*) from erase_values"
    ).fetchall()[0]
    return {"customers": customers, "identifiers": identifiers}


def _row_condition(columns: set[str]) -> str | None:
    """SQL true for a raw row that carries one of the person's identifiers."""
    checks = [
        f"{_normalise_sql(kind, _ident(column))} in (select {_normalise_sql(kind, 'value')} "
        f"from erase_values where kind = '{kind}')"
        for column, kind in COLUMN_KINDS.items()
        if column in columns and kind != "customer_id"
    ]
    return " or ".join(checks) or None


def _rewrite_landed_files(con: duckdb.DuckDBPyConnection, now: datetime) -> int:
    """Rewrite every landed Parquet file holding the person's rows without them."""
    from journeys.contract import ENTITIES

    con.execute(
        "create or replace temp table erased_files (request varchar, file varchar, "
        "source varchar, entity varchar, landed_path varchar, rows_erased bigint)"
    )
    request = con.execute("select string_agg(distinct request_id, ',') from erase_seed").fetchall()[
        0
    ][0]
    total = 0
    for entity in ENTITIES:
        if not table_exists(con, "raw", entity.table):
            continue
        columns = {
            r[0]
            for r in con.execute(
                "select column_name from information_schema.columns "
                "where table_schema = 'raw' and table_name = ?",
                [entity.table],
            ).fetchall()
        }
        condition = _row_condition(columns)
        if condition is None:
            continue
        hits = con.execute(
            f"select m.file, m.landed_path, count(*) from raw.{entity.table} r "
            "join raw.load_manifest m on m.file = r._file and m.checksum = r._checksum "
            f"and m.status = 'loaded' where {condition} group by all order by 1"
        ).fetchall()
        for file, landed_path, rows in hits:
            target = Path(landed_path)
            temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex}.erasing")
            con.execute(
                f"copy (select * from read_parquet({_literal(landed_path)}) "
                f"where not coalesce({condition}, false)) to {_literal(str(temporary))} "
                "(format parquet, compression zstd)"
            )
            os.replace(temporary, target)
            con.execute(
                "insert into erased_files values (?, ?, ?, ?, ?, ?)",
                [request, file, entity.source, entity.name, landed_path, rows],
            )
            total += rows
    return total


def _redact_quarantine(con: duckdb.DuckDBPyConnection) -> int:
    """Quarantined rows that mention the person keep their line and reason, not their content."""
    if not table_exists(con, "raw", "quarantine"):
        return 0
    return con.execute(
        "update raw.quarantine set raw_content = null, "
        "reason = reason || ' (content erased on request)' "
        "where raw_content is not null and exists (select 1 from erase_match "
        "where length(value) >= 4 and contains(lower(raw_content), lower(value)))"
    ).fetchall()[0][0]


def _delete_from_tables(con: duckdb.DuckDBPyConnection) -> int:
    """Delete the person's rows from every warehouse table with an identifier column."""
    columns = con.execute(
        "select table_schema, table_name, list(column_name order by ordinal_position) "
        "from information_schema.columns join information_schema.tables "
        "using (table_catalog, table_schema, table_name) "
        "where table_catalog = current_database() and table_type = 'BASE TABLE' "
        "and data_type = 'VARCHAR' and regexp_matches(column_name, ?) "
        "and table_schema not like 'pg_%' group by all order by 1, 2",
        [IDENTIFIER_COLUMN],
    ).fetchall()
    deleted = 0
    for schema, table, names in columns:
        if (schema, table) in KEPT_TABLES:
            continue
        condition = " or ".join(f"{_ident(c)} in (select value from erase_match)" for c in names)
        deleted += con.execute(
            f"delete from {_ident(schema)}.{_ident(table)} where {condition}"
        ).fetchall()[0][0]
    return deleted


COMPACTION_PENDING = "compaction-pending"


def _open_elsewhere_in_process(path: Path) -> bool:
    """True when this process still holds the file through another DuckDB instance (a library
    that kept a connection): DuckDB refuses a second instance with another configuration."""
    try:
        probe = duckdb.connect(str(path), config={"custom_user_agent": "journeys-probe"})
    except duckdb.ConnectionException:
        return True
    probe.close()
    return False


def compact_warehouse(settings: Settings) -> float | None:
    """Rewrite the warehouse into a fresh file and rename it into place.

    DuckDB marks deleted rows' blocks free but does not overwrite them, so the erased values
    would stay readable in the file's bytes until reused. A copy holds live rows only. dbt-duckdb
    keeps its own handle on the file in a process that ran dbt: it is closed first, so the next
    dbt invocation opens the new file. If something else in this process still holds the file
    (renaming under it would leave it on the old file), compaction waits for the next run, which
    starts in a fresh process (a marker file says so); None then.
    """
    import gc
    import sys
    import time

    started = time.perf_counter()
    dbt_connections = sys.modules.get("dbt.adapters.duckdb.connections")
    if dbt_connections is not None:
        manager = dbt_connections.DuckDBConnectionManager
        environment = manager._ENV
        manager.close_all_connections()
        if environment is not None:
            environment.close()
        gc.collect()
    target = settings.warehouse
    marker = settings.erasure_dir / COMPACTION_PENDING
    if _open_elsewhere_in_process(target):
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()
        return None
    building = target.with_name(f".{target.name}.{uuid.uuid4().hex}.compacting")
    try:
        with connect(settings) as con:
            database = con.execute("select current_database()").fetchall()[0][0]
            con.execute(f"attach {_literal(str(building))} as compacted")
            try:
                con.execute(f"copy from database {_ident(database)} to compacted")
                con.execute("checkpoint compacted")
            finally:
                con.execute("detach compacted")
        wal = target.with_name(target.name + ".wal")
        if wal.exists():
            raise RuntimeError(f"{wal} remains after closing the warehouse: not compacting")
        os.replace(building, target)
        marker.unlink(missing_ok=True)
    finally:
        building.unlink(missing_ok=True)
    return round(time.perf_counter() - started, 2)


def _exports_holding(con: duckdb.DuckDBPyConnection, settings: Settings) -> list[str]:
    """Delivered export files whose landed rows were erased: the source owner should purge them."""
    rows = con.execute("select distinct file from erased_files order by 1").fetchall()
    return [r[0] for r in rows if (settings.exports / r[0]).exists()]


def output_files(settings: Settings) -> list[Path]:
    """CSV and Parquet files the pipeline wrote under JOURNEYS_HOME (not its inputs)."""
    skip = {settings.home / name for name in NOT_OUTPUTS} | {settings.exports, settings.landed}
    found = []
    for pattern in ("*.csv", "*.parquet"):
        for path in settings.home.rglob(pattern):
            if path.name.startswith(".") or any(p in path.parents for p in skip):
                continue
            found.append(path)
    return sorted(found)


def _scrub_output_files(settings: Settings, matches: list[str]) -> list[str]:
    """Rewrite output files holding one of the person's values without those rows."""
    if not matches:
        return []
    rewritten = []
    with duckdb.connect() as con:
        con.execute("create table erase_match (value varchar)")
        con.executemany("insert into erase_match values (?)", [[v] for v in matches])
        for path in output_files(settings):
            is_csv = path.suffix == ".csv"
            reader = (
                f"read_csv({_literal(str(path))}, all_varchar = true, header = true)"
                if is_csv
                else f"read_parquet({_literal(str(path))})"
            )
            try:
                con.execute(
                    "create or replace temp table scanned as "
                    f"select row_number() over () as _row_number, * from {reader}"
                )
            except duckdb.Error:
                continue  # not a table-shaped file (an empty CSV, a plot's data): nothing to scrub
            text_columns = [
                r[0]
                for r in con.execute(
                    "select column_name from information_schema.columns "
                    "where table_name = 'scanned' and data_type = 'VARCHAR'"
                ).fetchall()
            ]
            if not text_columns:
                continue
            hit = " or ".join(
                f"{_ident(c)} in (select value from erase_match)" for c in text_columns
            )
            if not con.execute(f"select count(*) from scanned where {hit}").fetchall()[0][0]:
                continue
            temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.erasing")
            options = "(header, delimiter ',')" if is_csv else "(format parquet)"
            con.execute(
                f"copy (select * exclude (_row_number) from scanned where not ({hit}) "
                f"order by _row_number) to {_literal(str(temporary))} {options}"
            )
            os.replace(temporary, path)
            rewritten.append(str(path.relative_to(settings.home)))
    return rewritten
