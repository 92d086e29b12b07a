"""Orchestration: people -> purchases -> every source's exports, then the ground truth."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from journeys.contract import BY_SOURCE_ENTITY, ENTITIES
from journeys.sample.commerce import (
    Baskets,
    Fx,
    SalesExport,
    build_catalog,
    build_fx,
    build_pos,
    build_shop,
    make_baskets,
    simulate_purchases,
)
from journeys.sample.config import GeneratorConfig
from journeys.sample.consent import build_consent
from journeys.sample.crm import RECORD_KINDS, CrmRecords, assign_crm_records, build_crm_table
from journeys.sample.export import DefectLog, EntityWriter, Table
from journeys.sample.people import (
    CITIES,
    COUNTRY_CODES,
    CURRENCIES,
    FIRST_NAMES,
    NEVER,
    People,
    build_people,
    street_strings,
)
from journeys.sample.textio import SECONDS_PER_DAY, Clock, FileSink, money, take
from journeys.sample.vocab import COUNTRIES, LAST_NAMES
from journeys.sample.web import OnlineOrders, WebSimulator

# File format per entity: every reader path (csv, csv.gz, jsonl, jsonl.gz, parquet) is used.
FORMATS: dict[tuple[str, str], str] = {
    ("crm", "customers"): ".csv",
    ("shop", "orders"): ".csv",
    ("shop", "order_lines"): ".csv.gz",
    ("pos", "receipts"): ".csv",
    ("pos", "receipt_lines"): ".csv.gz",
    ("web", "events"): ".jsonl.gz",
    ("consent", "events"): ".jsonl",
    ("catalog", "products"): ".parquet",
    ("fx", "rates"): ".csv",
}
TRUTH_FILES = (
    "persons.parquet",
    "purchases.parquet",
    "record_map.parquet",
    "defects.parquet",
    "relations.parquet",
    "generator.json",
)
# Independent random streams: changing how one part draws never shifts another part.
STREAMS = {
    name: i
    for i, name in enumerate(
        (
            "people",
            "catalog",
            "fx",
            "purchases",
            "baskets",
            "crm",
            "shop",
            "pos",
            "consent",
            "write_crm",
            "write_orders",
            "write_order_lines",
            "write_receipts",
            "write_receipt_lines",
            "write_consent",
            "write_fx",
            "web",
        )
    )
}
RECORD_MAP_SCHEMA = pa.schema(
    [
        ("source", pa.string()),
        ("source_key", pa.string()),
        ("person_id", pa.int64()),
        ("role", pa.string()),
    ]
)


def generate(
    customers: int,
    days: int,
    start: date,
    seed: int,
    exports_dir: Path,
    truth_dir: Path,
    progress: bool = True,
    config: GeneratorConfig | None = None,
) -> dict:
    """Write `days` daily deliveries of every source for `customers` people, plus the truth.

    Same arguments give byte-identical files. Returns a JSON-serialisable summary.
    """
    if customers < 10 or days < 1:
        raise ValueError("need at least 10 customers and 1 day")
    cfg = config or GeneratorConfig()
    began = time.perf_counter()
    exports_dir, truth_dir = Path(exports_dir), Path(truth_dir)
    _clear(exports_dir, truth_dir)

    def rng(name: str, *more: int) -> np.random.Generator:
        return np.random.default_rng([seed, STREAMS[name], *more])

    n_chunks = -(-days // cfg.web_chunk_days)
    clock = Clock(start, -cfg.history_days - 2, days + cfg.future_days + 2)
    sink = FileSink(cfg.gzip_level)
    log = DefectLog(np.datetime64(start, "D"))
    writer = EntityWriter(sink, exports_dir, clock, cfg, log)
    entity = {key: BY_SOURCE_ENTITY[key] for key in FORMATS}

    def write(key: tuple[str, str], table: Table, stream: str, **kw) -> None:
        writer.write(entity[key], FORMATS[key], table, 0, days, rng(stream), **kw)

    try:
        with _progress(progress, 9 + n_chunks) as step:
            step("people")
            people = build_people(customers, days, start.year, cfg, rng("people"))
            records = assign_crm_records(people)
            catalog = build_catalog(cfg, rng("catalog"), days)
            fx = build_fx(cfg, rng("fx"), clock.first_day, days + cfg.future_days + 1)

            step("purchases")
            who, sec, online = simulate_purchases(people, cfg, rng("purchases"), days)
            purchases, purchase_lines = make_baskets(
                people, catalog, fx, cfg, who, sec, online, rng("baskets")
            )

            step("crm")
            crm = build_crm_table(people, records, cfg, clock, days, rng("crm"))
            write(("crm", "customers"), crm, "write_crm")

            step("shop")
            shop = build_shop(
                people,
                purchases,
                purchase_lines,
                catalog,
                fx,
                cfg,
                records.crm_ids,
                clock,
                days,
                rng("shop"),
            )
            write(("shop", "orders"), shop.headers, "write_orders")
            write(("shop", "order_lines"), shop.lines, "write_order_lines")

            step("pos")
            pos = build_pos(
                people, purchases, purchase_lines, catalog, fx, cfg, clock, days, rng("pos")
            )
            del purchase_lines
            write(("pos", "receipts"), pos.headers, "write_receipts")
            write(("pos", "receipt_lines"), pos.lines, "write_receipt_lines")

            step("consent, catalog, fx")
            consent, email_consent = build_consent(
                people, records.crm_ids, cfg, clock, days, rng("consent")
            )
            write(("consent", "events"), consent, "write_consent")
            unchanged = _parquet_bytes(catalog.delivery(-1))  # days without catalog changes
            for day in range(days):
                content = (
                    _parquet_bytes(catalog.delivery(day)) if day in catalog.changes else unchanged
                )
                sink.write(_path(exports_dir, clock, ("catalog", "products"), day), [content])
            writer.count("catalog_products", sum(len(v) for v in catalog.changes.values()))
            write(("fx", "rates"), _fx_table(fx, clock, days), "write_fx")

            record_map = pq.ParquetWriter(
                truth_dir / "record_map.parquet",
                RECORD_MAP_SCHEMA,
                compression="zstd",
                use_dictionary=["source", "role"],
            )
            for part in _record_map(people, records, shop, pos, consent):
                record_map.write_table(part)

            first_known = _first_identified(people, crm, shop, pos, consent)
            online_orders = OnlineOrders(
                shop.baskets,
                shop.basket_lines,
                np.where(shop.logged_in, shop.crm_rec, -1),
                shop.email_ver,
            )
            web = WebSimulator(
                people,
                online_orders,
                email_consent,
                catalog,
                records.crm_ids,
                cfg,
                clock,
                seed_salt=int(rng("web").integers(0, 2**40)),
            )
            for c in range(n_chunks):  # a loop over weeks; everything inside is vectorised
                step(f"web {c + 1}/{n_chunks}")
                d0 = c * cfg.web_chunk_days
                n = min(cfg.web_chunk_days, days - d0)
                chunk = web.chunk(d0, n, rng("web", 1, c))
                writer.write(
                    entity[("web", "events")],
                    FORMATS[("web", "events")],
                    chunk.table,
                    d0,
                    n,
                    rng("web", 2, c),
                )
                login_day, login_person = chunk.login_day_person
                np.minimum.at(first_known, login_person, login_day)
                record_map.write_table(
                    _map_part("web_event", chunk.table.keys, chunk.event_person, "event")
                )
            record_map.close()

            step("truth")
            writer.close()  # all rows encoded: the defect log is complete
            pq.write_table(
                _persons(people, cfg, first_known, days, start),
                truth_dir / "persons.parquet",
                compression="zstd",
            )
            pq.write_table(
                _purchases(people, purchases, shop, pos, clock, days),
                truth_dir / "purchases.parquet",
                compression="zstd",
            )
            defects = log.table()
            pq.write_table(defects, truth_dir / "defects.parquet", compression="zstd")
            pq.write_table(_relations(people), truth_dir / "relations.parquet", compression="zstd")
            (truth_dir / "generator.json").write_text(
                json.dumps(
                    {
                        "customers": customers,
                        "days": days,
                        "start": start.isoformat(),
                        "seed": seed,
                        "config": cfg.to_dict(),
                    },
                    indent=2,
                    sort_keys=True,
                    default=str,
                )
                + "\n"
            )
    finally:
        writer.close()
        sink.close()

    return {
        "customers": customers,
        "days": days,
        "start": start.isoformat(),
        "seed": seed,
        "rows": dict(sorted(writer.rows.items())),
        "files": sink.files,
        "bytes": sink.bytes,
        "truth": {
            "persons": people.n,
            "true_purchases": int(len(purchases.person)),
            "defects": defects.num_rows,
        },
        "seconds": round(time.perf_counter() - began, 2),
    }


def _clear(exports_dir: Path, truth_dir: Path) -> None:
    """Remove what a previous run wrote (only this generator's folders and files)."""
    for source in sorted({e.source for e in ENTITIES}):
        if (exports_dir / source).exists():
            shutil.rmtree(exports_dir / source)
    exports_dir.mkdir(parents=True, exist_ok=True)
    truth_dir.mkdir(parents=True, exist_ok=True)
    for name in TRUTH_FILES:
        (truth_dir / name).unlink(missing_ok=True)


def _parquet_bytes(table: pa.Table) -> bytes:
    buffer = pa.BufferOutputStream()
    pq.write_table(table, buffer, compression="zstd")
    return buffer.getvalue().to_pybytes()


def _path(root: Path, clock: Clock, key: tuple[str, str], day: int) -> Path:
    return root / key[0] / clock.date(day).isoformat() / f"{key[1]}{FORMATS[key]}"


@contextmanager
def _progress(enabled: bool, total: int) -> Iterator:
    if not enabled:
        yield lambda _name: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    # On stderr: stdout stays clean for the JSON summary the CLI prints.
    columns = (TextColumn("{task.description:<22}"), BarColumn(), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True)) as bar:
        task = bar.add_task("generating", total=total)
        seen = [False]

        def step(name: str) -> None:
            if seen[0]:
                bar.advance(task)
            seen[0] = True
            bar.update(task, description=name)

        yield step
        bar.update(task, completed=total, description="done")


def _fx_table(fx: Fx, clock: Clock, days: int) -> Table:
    """A first delivery with the whole history, then one row per currency per day."""
    columns, day = fx.table(clock.first_day + 1, days - 1)
    currency = take(CURRENCIES, columns["currency"])
    dates = clock.dates(day)
    table = {"rate_date": dates, "currency": currency, "rate": columns["rate"]}
    keys = pc.binary_join_element_wise(dates, currency, "|")
    return Table(table, np.maximum(day, 0), keys, np.zeros(0, np.int64), [])


def _map_part(source: str, keys: pa.Array, person: np.ndarray, role: str | pa.Array) -> pa.Table:
    m = len(keys)
    return pa.table(
        {
            "source": pa.repeat(source, m),
            "source_key": keys,
            "person_id": pa.array(np.asarray(person, dtype=np.int64)),
            "role": role if isinstance(role, pa.Array) else pa.repeat(role, m),
        },
        schema=RECORD_MAP_SCHEMA,
    )


def _record_map(
    people: People, records: CrmRecords, shop: SalesExport, pos: SalesExport, consent: Table
) -> Iterator[pa.Table]:
    """Every source record key -> the person behind it (web events are added per week)."""
    kind = take(RECORD_KINDS, records.kind)
    kind = pc.if_else(pa.array(people.is_test[records.person]), "test_account", kind)
    yield _map_part("crm", records.crm_ids, records.person, kind)
    yield _map_part(
        "shop_order",
        shop.keys,
        shop.person,
        take(("purchase", "not_a_purchase"), (shop.purchase_row < 0).astype(int)),
    )
    yield _map_part(
        "pos_receipt",
        pos.keys,
        pos.person,
        take(("anonymous", "loyalty_card"), pos.identifies.astype(int)),
    )
    holders = np.flatnonzero(people.has_card)
    yield _map_part("loyalty_card", people.card_ids.take(pa.array(holders)), holders, "holder")
    # A family computer's cookie is listed once per person using it, both rows marked shared.
    family = np.flatnonzero(
        people.couple_computer & (people.cookie_a[np.maximum(people.partner, 0)] >= 0)
    )
    shared_cookie = people.cookie_a[people.partner[family]]
    n_a = int((people.cookie_a >= 0).sum())
    role = np.where(np.arange(people.n_cookies_total) < n_a, 0, 1)
    role[shared_cookie] = 2
    roles = ("primary_device", "second_device", "shared_family_computer")
    yield _map_part("web_cookie", people.cookie_ids, people.cookie_owner, take(roles, role))
    yield _map_part(
        "web_cookie",
        people.cookie_ids.take(pa.array(shared_cookie)),
        family,
        "shared_family_computer",
    )
    yield _map_part("consent_event", consent.keys, consent.person, "event")


def _first_identified(
    people: People, crm: Table, shop: SalesExport, pos: SalesExport, consent: Table
) -> np.ndarray:
    """Per person: the first delivery day with a record that names them (NEVER if none)."""
    first = np.full(people.n, NEVER, dtype=np.int64)
    np.minimum.at(first, crm.person, crm.delivery_day)
    np.minimum.at(first, shop.person, shop.first_delivery)
    card = pos.identifies
    np.minimum.at(first, pos.person[card], pos.first_delivery[card])
    np.minimum.at(first, consent.person, consent.delivery_day)
    return first


def _dates(start: date, days: np.ndarray, valid: np.ndarray) -> pa.Array:
    values = np.datetime64(start, "D") + np.asarray(days, dtype=np.int64)
    return pa.array(values.astype("datetime64[D]"), pa.date32(), mask=~valid)


def _timestamps(start: date, sec: np.ndarray, valid: np.ndarray) -> pa.Array:
    values = np.datetime64(start, "s") + np.where(valid, sec, 0).astype("timedelta64[s]")
    return pa.array(values, pa.timestamp("s", tz="UTC"), mask=~valid)


def _persons(
    people: People, cfg: GeneratorConfig, first_known: np.ndarray, days: int, start: date
) -> pa.Table:
    p = people
    dropped = p.dropout_sec < days * SECONDS_PER_DAY
    every = np.ones(p.n, bool)
    calling = take([COUNTRIES[c]["cc"] for c in COUNTRY_CODES], p.country)
    phone = pc.binary_join_element_wise(
        "+", calling, p.phone_prefix, pc.cast(pa.array(p.phone_sub), pa.string()), ""
    )
    phone = pc.if_else(pa.array(p.has_phone), phone, pa.scalar(None, pa.string()))
    known = first_known < NEVER
    return pa.table(
        {
            "person_id": pa.array(np.arange(p.n, dtype=np.int64)),
            "archetype": take([a.name for a in cfg.archetypes], p.archetype),
            "is_test_account": pa.array(p.is_test),
            "lambda_per_day": pa.array(p.lam),
            "p_dropout": pa.array(p.p),
            "joined_at": _timestamps(start, p.join_sec, every),
            "joined_date": _dates(start, p.join_sec // SECONDS_PER_DAY, every),
            "dropout_at": _timestamps(start, p.dropout_sec, dropped),
            "dropout_date": _dates(start, p.dropout_sec // SECONDS_PER_DAY, dropped),
            "alive_at_end": pa.array(~dropped),
            "first_name": take(FIRST_NAMES, p.first),
            "last_name": take(LAST_NAMES, p.last),
            "last_name_after_marriage": take(LAST_NAMES, np.where(p.married, p.last_marr, -1)),
            "married_at": _timestamps(start, p.t_marr, p.married),
            "gender": take(("f", "m", "d"), p.gender),
            "birth_date": _dates(start, p.birth_day, every),
            "email": take(p.emails, p.email0),
            "phone": phone,
            "street": street_strings(p.street, p.house),
            "postcode": p.postcode,
            "city": take([c[1] for c in CITIES], p.city),
            "country": take(COUNTRY_CODES, p.country),
            "has_crm_record": pa.array(p.has_crm),
            "loyalty_card_id": p.card_ids,
            "n_cookies": pa.array(
                (p.cookie_a >= 0).astype(np.int64) + (p.cookie_b >= 0).astype(np.int64)
            ),
            "online_share": pa.array(p.online_share),
            "web_sessions_per_day": pa.array(p.web_rate),
            "email_open_probability": pa.array(p.open_prob),
            "partner_id": pa.array(p.partner, mask=p.partner < 0),
            "business_id": pa.array(p.business, mask=p.business < 0),
            "first_identified_date": _dates(start, np.where(known, first_known, 0), known),
        }
    )


def _purchases(
    people: People, purchases: Baskets, shop: SalesExport, pos: SalesExport, clock: Clock, days: int
) -> pa.Table:
    """True completed purchases (test accounts excluded), including the unexported future."""
    n = len(purchases.person)
    order_of = np.full(n, -1, dtype=np.int64)
    is_order = shop.purchase_row >= 0
    order_of[shop.purchase_row[is_order]] = np.flatnonzero(is_order)
    receipt_of = np.full(n, -1, dtype=np.int64)
    is_receipt = pos.purchase_row >= 0
    receipt_of[pos.purchase_row[is_receipt]] = np.flatnonzero(is_receipt)
    key = pc.if_else(pa.array(order_of >= 0), take(shop.keys, order_of), take(pos.keys, receipt_of))
    every = np.ones(n, bool)
    table = pa.table(
        {
            "person_id": pa.array(purchases.person.astype(np.int64)),
            "purchased_at": _timestamps(clock.start, purchases.sec, every),
            "purchase_date": _dates(clock.start, purchases.sec // SECONDS_PER_DAY, every),
            "channel": take(("store", "online"), purchases.online.astype(np.int64)),
            "currency": take(CURRENCIES, purchases.currency),
            "amount": money(purchases.total - purchases.discount).cast(pa.decimal128(14, 2)),
            "amount_eur": money(purchases.amount_eur).cast(pa.decimal128(14, 2)),
            "exported": pa.array(purchases.sec < days * SECONDS_PER_DAY),
            "record_key": key,
        }
    )
    return table.filter(pa.array(~people.is_test[purchases.person]))


def _relations(people: People) -> pa.Table:
    """Couples and small businesses: who shares which identifier."""
    p = people
    couple = np.flatnonzero(p.couple_id >= 0)
    business = np.flatnonzero(p.business >= 0)
    person = np.concatenate([couple, business])
    return pa.table(
        {
            "relation": take(
                ("couple", "business"),
                np.r_[np.zeros(len(couple), int), np.ones(len(business), int)],
            ),
            "group_id": pa.array(np.concatenate([p.couple_id[couple], p.business[business]])),
            "person_id": pa.array(person.astype(np.int64)),
            "shares_email": pa.array(
                np.concatenate([p.couple_email[couple], np.ones(len(business), bool)])
            ),
            "shares_phone": pa.array(
                np.concatenate([p.couple_landline[couple], np.ones(len(business), bool)])
            ),
            "shares_computer": pa.array(
                np.concatenate(
                    [
                        p.couple_computer[couple]
                        | p.couple_computer[np.maximum(p.partner[couple], 0)],
                        np.zeros(len(business), bool),
                    ]
                )
            ),
        }
    )
