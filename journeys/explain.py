"""`journeys explain <customer_id>`: why a person is where they are.

Gathers, for one customer, their source records, the evidence that tied those records together,
their features, lifecycle stage, segment, churn score with its reasons, and consent per
channel. It only reads: the warehouse read-only when no run holds it, else the published
analyst warehouse (`journeys.analyst`), so it answers while the pipeline runs. Source rows
come from the landed Parquet files the load manifest lists, which landing never rewrites in
place. A table another part of the pipeline has not built yet is reported as such.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from journeys.settings import Settings

# Source entities shown as records: (source, entity, columns shown, how a row is the person's).
SOURCE_RECORDS = (
    (
        "crm",
        "customers",
        "crm_id, first_name, last_name, email, phone, birth_date, postcode, loyalty_card_id, "
        "updated_at",
        "trim(crm_id) in (select key from person_keys where source = 'crm')",
    ),
    (
        "shop",
        "orders",
        "order_id, ordered_at, status, total_amount, currency, customer_email, crm_id",
        "trim(order_id) in (select order_id from person_orders where channel = 'online')",
    ),
    (
        "pos",
        "receipts",
        "receipt_id, purchased_at, status, total_amount, currency, loyalty_card_id, store_id",
        "trim(receipt_id) in (select order_id from person_orders where channel = 'store')",
    ),
    (
        "consent",
        "events",
        "channel, status, event_at, source, email, crm_id, phone",
        "trim(crm_id) in (select key from person_keys where source = 'crm') "
        "or lower(trim(email)) in (select lower(email) from person_emails)",
    ),
    (
        "web",
        "events",
        "anonymous_id, event_type, count(*) as events, min(event_at) as first_at, "
        "max(event_at) as last_at",
        "trim(anonymous_id) in (select key from person_keys where source = 'web_cookie')",
    ),
)
MAX_ROWS = 10


class CustomerNotFound(LookupError):
    """No such customer in the warehouse (the message says where it looked)."""


@dataclass
class Section:
    """One part of the explanation: a table, or a note saying why there is none."""

    title: str
    columns: list[str] = field(default_factory=list)
    rows: list[tuple] = field(default_factory=list)
    note: str | None = None
    total: int | None = None  # rows that exist when only the first MAX_ROWS are shown


@dataclass
class Explanation:
    customer_id: str
    source: str  # which file was read, and why
    sections: list[Section]


def open_readable(settings: Settings) -> tuple[duckdb.DuckDBPyConnection, str]:
    """The warehouse read-only; while a run holds it, the published analyst warehouse."""
    problem = f"{settings.warehouse} does not exist"
    if settings.warehouse.exists():
        try:
            con = duckdb.connect(str(settings.warehouse), read_only=True)
            return con, f"warehouse {settings.warehouse} (read-only)"
        except duckdb.IOException as e:  # the pipeline is writing it
            problem = f"the warehouse is in use ({str(e).splitlines()[0]})"
    if settings.analyst_warehouse.exists():
        con = duckdb.connect(str(settings.analyst_warehouse), read_only=True)
        published = _scalar(con, "select max(published_at) from main.publication")
        return con, (
            f"published analyst warehouse {settings.analyst_warehouse} "
            f"(as of {published}; {problem})"
        )
    raise CustomerNotFound(f"nothing to read: {problem}, and no analyst warehouse is published")


def _scalar(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> Any:
    rows = con.execute(sql, params or []).fetchall()
    return rows[0][0] if rows else None


def _exists(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    return bool(
        _scalar(
            con,
            "select count(*) from information_schema.tables "
            "where table_schema = ? and table_name = ?",
            [schema, table],
        )
    )


def _table(con, title: str, sql: str, params: list | None = None, limit: int = MAX_ROWS):
    result = con.execute(sql, params or [])
    columns = [d[0] for d in result.description]
    rows = result.fetchall()
    return Section(title, columns, rows[:limit], total=len(rows) if len(rows) > limit else None)


def _missing(title: str, schema: str, table: str, why: str) -> Section:
    return Section(title, note=f"{schema}.{table} is not in this warehouse yet ({why}).")


def explain(settings: Settings, customer_id: str) -> Explanation:
    con, source = open_readable(settings)
    try:
        return Explanation(customer_id, source, _gather(con, customer_id))
    finally:
        con.close()


def _gather(con: duckdb.DuckDBPyConnection, customer_id: str) -> list[Section]:
    con.execute("set TimeZone = 'UTC'")
    if not _exists(con, "marts", "dim_customers"):
        raise CustomerNotFound("marts.dim_customers does not exist: run the pipeline first")
    if not _scalar(
        con, "select count(*) from marts.dim_customers where customer_id = ?", [customer_id]
    ):
        raise CustomerNotFound(_not_found(con, customer_id))
    sections = [
        _transposed(
            con,
            "Golden record (marts.dim_customers)",
            "select * from marts.dim_customers where customer_id = ?",
            [customer_id],
        ),
        _table(
            con,
            "Orders and receipts (marts.fct_orders)",
            "select channel, status, count(*) as orders, round(sum(amount), 2) as amount, "
            "min(ordered_at) as first_at, max(ordered_at) as last_at from marts.fct_orders "
            "where customer_id = ? group by all order by channel, status",
            [customer_id],
        ),
    ]
    sections += _source_records(con, customer_id)
    sections += _match_evidence(con, customer_id)
    sections += _features_and_scores(con, customer_id)
    sections.append(_consent(con, customer_id))
    return sections


def _not_found(con, customer_id: str) -> str:
    """Say where an unknown id went: merged into another customer, or never existed."""
    if _exists(con, "identity", "customer_id_history"):
        merged = con.execute(
            "select customer_id, run_date from identity.customer_id_history "
            "where other_customer_id = ? and event = 'merge' order by run_date desc limit 1",
            [customer_id],
        ).fetchall()
        if merged:
            return (
                f"{customer_id} was merged into {merged[0][0]} on {merged[0][1]}: "
                f"run `journeys explain {merged[0][0]}`"
            )
    return f"no customer {customer_id} in marts.dim_customers (erased, or never existed)"


def _source_records(con, customer_id: str) -> list[Section]:
    con.execute(
        "create or replace temp table person_keys as select source, trim(source_key) as key "
        "from marts.customer_identifiers where customer_id = ?",
        [customer_id],
    )
    con.execute(
        "create or replace temp table person_orders as select order_id, channel "
        "from marts.fct_orders where customer_id = ?",
        [customer_id],
    )
    con.execute(
        "create or replace temp table person_emails as select email from marts.dim_customers "
        "where customer_id = ? and email is not null "
        "union select key from person_keys where source = 'shop_email'",
        [customer_id],
    )
    if not _exists(con, "raw", "load_manifest"):
        return [Section("Source records", note="raw.load_manifest is missing: nothing landed")]
    sections = []
    for source, entity, columns, belongs in SOURCE_RECORDS:
        paths = [
            r[0]
            for r in con.execute(
                "select landed_path from raw.load_manifest where status = 'loaded' "
                "and source = ? and entity = ? order by delivery_date, file",
                [source, entity],
            ).fetchall()
            if Path(r[0]).exists()
        ]
        title = f"Source records: {source}/{entity}"
        if not paths:
            sections.append(Section(title, note="no landed files"))
            continue
        listed = ", ".join("'" + p.replace("'", "''") + "'" for p in paths)
        files = f"read_parquet([{listed}], union_by_name = true)"
        if entity == "events" and source == "web":  # too many to list: a count per event type
            sections.append(
                _table(
                    con,
                    title + " (count per type, by cookie)",
                    f"select {columns} from {files} where {belongs} "
                    "group by all order by anonymous_id, events desc",
                    limit=20,
                )
            )
            continue
        sections.append(
            _table(
                con,
                title,
                f"select {columns}, _file as delivered_in from {files} where {belongs} "
                "order by _delivery_date desc, _file, _line",
            )
        )
    return sections


def _match_evidence(con, customer_id: str) -> list[Section]:
    sections = [
        _table(
            con,
            "Identifiers and how each was linked (marts.customer_identifiers)",
            "select source, source_key, linked_by, first_seen_at from marts.customer_identifiers "
            "where customer_id = ? order by source, first_seen_at",
            [customer_id],
            limit=50,
        )
    ]
    crm = "(select key from person_keys where source = 'crm')"
    for table, title in (
        ("match_evidence", "Why these records are one person (identity.match_evidence)"),
        ("refused_merges", "Records kept apart, and why (identity.refused_merges)"),
    ):
        if _exists(con, "identity", table):
            sections.append(
                _table(
                    con,
                    title,
                    f"select * from identity.{table} "
                    f"where left_crm_id in {crm} or right_crm_id in {crm}",
                    limit=20,
                )
            )
        else:
            sections.append(_missing(title, "identity", table, "identity step not run"))
    if _exists(con, "identity", "customer_id_history"):
        sections.append(
            _table(
                con,
                "Id history (identity.customer_id_history)",
                "select * from identity.customer_id_history "
                "where ? in (customer_id, other_customer_id) order by run_date",
                [customer_id],
            )
        )
    return sections


def _latest(schema: str, table: str, customer_id: str, order: str = "snapshot_date"):
    return (
        f"select * from {schema}.{table} where customer_id = ? order by {order} desc limit 1",
        [customer_id],
    )


def _transposed(con, title: str, sql: str, params: list) -> Section:
    """One wide row shown as (field, value) pairs: features read better that way."""
    result = con.execute(sql, params)
    columns = [d[0] for d in result.description]
    rows = result.fetchall()
    if not rows:
        return Section(title, note="no row for this customer")
    return Section(
        title, ["field", "value"], [(c, v) for c, v in zip(columns, rows[0], strict=True)]
    )


def _features_and_scores(con, customer_id: str) -> list[Section]:
    sections = []
    if _exists(con, "marts", "customer_features"):
        sections.append(
            _transposed(
                con,
                "Features at the latest snapshot (marts.customer_features)",
                *_latest("marts", "customer_features", customer_id),
            )
        )
    else:
        sections.append(_missing("Features", "marts", "customer_features", "dbt marts not built"))
    if _exists(con, "marts", "customer_lifecycle"):
        sections.append(
            _transposed(
                con,
                "Lifecycle stage (marts.customer_lifecycle)",
                *_latest("marts", "customer_lifecycle", customer_id),
            )
        )
    else:
        sections.append(
            _missing(
                "Lifecycle stage", "marts", "customer_lifecycle", "lifecycle stages come with #9"
            )
        )
    if _exists(con, "marts", "customer_segments"):
        sections.append(
            _transposed(
                con,
                "Segment, churn score and its reasons (marts.customer_segments)",
                "select * from marts.customer_segments where customer_id = ?",
                [customer_id],
            )
        )
    else:
        sections.append(_missing("Segment", "marts", "customer_segments", "nothing published yet"))
    if _exists(con, "marts", "customer_rule_segments"):
        sections.append(
            _table(
                con,
                "Rule segments matched (marts.customer_rule_segments)",
                "select segment, channel, priority, description, snapshot_date "
                "from marts.customer_rule_segments where customer_id = ? order by priority",
                [customer_id],
            )
        )
    else:
        sections.append(
            _missing(
                "Rule segments", "marts", "customer_rule_segments", "rule segments come with #9"
            )
        )
    if _exists(con, "marts", "customer_segments_history"):
        sections.append(
            _table(
                con,
                "Segment history (marts.customer_segments_history)",
                "select snapshot_date, segment_name, round(churn_probability, 4) as churn, "
                "model_version from marts.customer_segments_history where customer_id = ? "
                "order by snapshot_date desc",
                [customer_id],
            )
        )
    if _exists(con, "ml", "customer_scores"):
        sections.append(
            _table(
                con,
                "Model scores per run (ml.customer_scores)",
                "select snapshot_date, segment_name, round(churn_probability, 4) as churn, "
                "churn_reason_1, churn_reason_2, churn_reason_3, "
                "round(high_value_probability, 4) as high_value, churn_model_version "
                "from ml.customer_scores where customer_id = ? order by snapshot_date desc",
                [customer_id],
                limit=5,
            )
        )
    return sections


def _consent(con, customer_id: str) -> Section:
    title = "Consent per channel (marts.customer_consent)"
    if not _exists(con, "marts", "customer_consent"):
        return _missing(title, "marts", "customer_consent", "consent comes with #11 activation")
    section = _table(
        con,
        title,
        "select * exclude (customer_id) from marts.customer_consent where customer_id = ? "
        "order by channel",
        [customer_id],
    )
    if not section.rows:
        section.note = "no consent record: no marketing consent on any channel"
    return section
