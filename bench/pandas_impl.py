"""The work of the compared dbt models, written the way a pandas user would: the bench's
second yardstick (see journeys/bench.py COMPARED_MODELS and bench/hand_sql.sql).

Reads the same inputs as dbt (the raw.* views over the landed Parquet, and
identity.record_links from the identity step) out of the warehouse, read-only; does cleaning,
dedup, attribution through the record links, FX conversion, the golden record and the
RFM/engagement features per snapshot date in pandas; and writes the same tables to a scratch
DuckDB file (schemas pandas_staging / pandas_marts), so the work compared is the same.
Amounts are float64 (pandas has no decimal type); everything else follows the SQL models.

Run: python bench/pandas_impl.py WAREHOUSE OUT.duckdb --snapshot 2025-12-31 [--snapshot ...]
Prints one JSON object: the row count of every table written.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

KNOWN_EVENT_TYPES = {
    "page_view",
    "product_view",
    "add_to_cart",
    "remove_from_cart",
    "checkout_started",
    "login",
    "email_open",
    "email_click",
}


def txt(s: pd.Series) -> pd.Series:
    s = s.astype("string").str.strip(" ")  # DuckDB's trim() removes spaces only
    return s.mask(s == "")


def ts(s: pd.Series) -> pd.Series:
    # ISO 8601; text without a zone is UTC; stored as naive UTC like the SQL models.
    return pd.to_datetime(txt(s), utc=True, format="ISO8601").dt.tz_localize(None)


def num(s: pd.Series) -> pd.Series:
    return pd.to_numeric(txt(s)).astype("float64")


def integer(s: pd.Series) -> pd.Series:
    # DuckDB casts text like '1.5' to an integer by rounding half away from zero.
    x = pd.to_numeric(txt(s)).astype("Float64")
    return (np.sign(x) * np.floor(np.abs(x) + 0.5)).astype("Int64")


def boolean(s: pd.Series) -> pd.Series:
    v = txt(s).str.lower()
    return v.map({"true": True, "t": True, "1": True, "false": False, "f": False, "0": False})


def email(s: pd.Series) -> pd.Series:
    return txt(s.astype("string").str.lower())


def phone(s: pd.Series, country_code: str) -> pd.Series:
    raw = txt(s)
    digits = raw.str.replace(r"[^0-9]", "", regex=True)
    out = pd.Series(pd.NA, index=s.index, dtype="string")
    ok = raw.notna() & (digits != "")
    plus = ok & raw.str.startswith("+")
    intl = ok & ~plus & digits.str.startswith("00")
    national = ok & ~plus & ~intl & digits.str.startswith("0")
    other = ok & ~plus & ~intl & ~national
    out[plus | other] = "+" + digits[plus | other]
    out[intl] = "+" + digits[intl].str[2:]
    out[national] = "+" + country_code + digits[national].str[1:]
    return out


def latest(df: pd.DataFrame, keys: list[str], version: str | None = None) -> pd.DataFrame:
    """The latest row per key: by the version column (nulls last), then the latest delivery."""
    order = ([version] if version else []) + ["_delivery_date", "_file", "_line"]
    ranked = df.sort_values(order, ascending=False, na_position="last", kind="stable")
    return ranked.drop_duplicates(keys, keep="first")


def stage(raw: dict[str, pd.DataFrame], country_code: str) -> dict[str, pd.DataFrame]:
    meta = ["_delivery_date", "_file", "_line"]
    r = raw["crm_customers"]
    crm = pd.DataFrame(
        {
            "crm_id": txt(r["crm_id"]),
            "updated_at": ts(r["updated_at"]),
            "first_name": txt(r["first_name"]),
            "last_name": txt(r["last_name"]),
            "email_raw": txt(r["email"]),
            "email": email(r["email"]),
            "phone": phone(r["phone"], country_code),
            "birth_date": pd.to_datetime(txt(r["birth_date"])).dt.date,
            "gender": txt(r["gender"]).str.lower(),
            "street": txt(r["street"]),
            "city": txt(r["city"]),
            "postcode": txt(r["postcode"]),
            "country": txt(r["country"]).str.upper(),
            "loyalty_card_id": txt(r["loyalty_card_id"]),
            "created_at": ts(r["created_at"]),
            "is_test_account": boolean(r["is_test_account"]).fillna(False).astype(bool),
            **{m: r[m] for m in meta},
        }
    )
    crm = latest(crm, ["crm_id"], "updated_at").rename(columns={"_delivery_date": "delivered_on"})
    crm = crm.drop(columns=["_file", "_line"])

    r = raw["shop_orders"]
    orders = pd.DataFrame(
        {
            "order_id": txt(r["order_id"]),
            "ordered_at": ts(r["ordered_at"]),
            "status": txt(r["status"]).str.lower(),
            "currency": txt(r["currency"]).str.upper(),
            "total_amount": num(r["total_amount"]),
            "discount_amount": num(r["discount_amount"]).fillna(0.0),
            "customer_email_raw": txt(r["customer_email"]),
            "customer_email": email(r["customer_email"]),
            "crm_id": txt(r["crm_id"]),
            "updated_at": ts(r["updated_at"]),
            "shipping_postcode": txt(r["shipping_postcode"]),
            **{m: r[m] for m in meta},
        }
    )
    orders = latest(orders, ["order_id"], "updated_at")
    orders = orders.rename(columns={"_delivery_date": "delivered_on"}).drop(
        columns=["_file", "_line"]
    )

    r = raw["shop_order_lines"]
    lines = pd.DataFrame(
        {
            "order_id": txt(r["order_id"]),
            "line_number": integer(r["line_number"]),
            "sku": txt(r["sku"]),
            "quantity": integer(r["quantity"]),
            "unit_price": num(r["unit_price"]),
            "discount_amount": num(r["discount_amount"]).fillna(0.0),
            **{m: r[m] for m in meta},
        }
    )
    lines = latest(lines, ["order_id", "line_number"]).drop(columns=meta)
    lines.insert(0, "order_line_id", lines["order_id"] + "-" + lines["line_number"].astype(str))
    lines["line_amount"] = lines["quantity"] * lines["unit_price"] - lines["discount_amount"]

    r = raw["pos_receipts"]
    receipts = pd.DataFrame(
        {
            "receipt_id": txt(r["receipt_id"]),
            "store_id": txt(r["store_id"]),
            "purchased_at": ts(r["purchased_at"]),
            "currency": txt(r["currency"]).str.upper(),
            "total_amount": num(r["total_amount"]),
            "loyalty_card_id": txt(r["loyalty_card_id"]),
            "status": txt(r["status"]).str.lower().fillna("completed"),
            "updated_at": ts(r["updated_at"]),
            **{m: r[m] for m in meta},
        }
    )
    receipts = latest(receipts, ["receipt_id"], "updated_at")
    receipts = receipts.rename(columns={"_delivery_date": "delivered_on"}).drop(
        columns=["_file", "_line"]
    )

    r = raw["pos_receipt_lines"]
    receipt_lines = pd.DataFrame(
        {
            "receipt_id": txt(r["receipt_id"]),
            "line_number": integer(r["line_number"]),
            "sku": txt(r["sku"]),
            "quantity": integer(r["quantity"]),
            "unit_price": num(r["unit_price"]),
            **{m: r[m] for m in meta},
        }
    )
    receipt_lines = latest(receipt_lines, ["receipt_id", "line_number"]).drop(columns=meta)
    receipt_lines.insert(
        0,
        "receipt_line_id",
        receipt_lines["receipt_id"] + "-" + receipt_lines["line_number"].astype(str),
    )
    receipt_lines["line_amount"] = receipt_lines["quantity"] * receipt_lines["unit_price"]

    r = raw["web_events"]
    event_type = txt(r["event_type"]).str.lower()
    events = pd.DataFrame(
        {
            "event_id": txt(r["event_id"]),
            "event_at": ts(r["event_at"]),
            "event_type": event_type,
            "is_known_event_type": event_type.isin(KNOWN_EVENT_TYPES),
            "anonymous_id": txt(r["anonymous_id"]),
            "user_email": email(r["user_email"]),
            "crm_id": txt(r["crm_id"]),
            "session_id": txt(r["session_id"]),
            "sku": txt(r["sku"]),
            "url": txt(r["url"]),
            "device": txt(r["device"]).str.lower(),
            "utm_source": txt(r["utm_source"]),
            "utm_medium": txt(r["utm_medium"]),
            "utm_campaign": txt(r["utm_campaign"]),
            **{m: r[m] for m in meta},
        }
    )
    events = latest(events, ["event_id"]).drop(columns=meta)

    r = raw["consent_events"]
    consent = pd.DataFrame(
        {
            "consent_event_id": txt(r["consent_event_id"]),
            "channel": txt(r["channel"]).str.lower(),
            "status": txt(r["status"]).str.lower(),
            "event_at": ts(r["event_at"]),
            "email": email(r["email"]),
            "crm_id": txt(r["crm_id"]),
            "phone": phone(r["phone"], country_code),
            "consent_source": txt(r["source"]),
            "policy_version": txt(r["policy_version"]),
            **{m: r[m] for m in meta},
        }
    )
    consent = latest(consent, ["consent_event_id"]).drop(columns=meta)

    r = raw["catalog_products"]
    products = pd.DataFrame(
        {
            "sku": txt(r["sku"]),
            "category": txt(r["category"]).str.lower(),
            "product_name": txt(r["name"]),
            "brand": txt(r["brand"]),
            "list_price": num(r["list_price"]),
            "currency": txt(r["currency"]).str.upper(),
            "is_active": boolean(r["is_active"]).fillna(True).astype(bool),
            **{m: r[m] for m in meta},
        }
    )
    products = latest(products, ["sku"]).drop(columns=meta)

    r = raw["fx_rates"]
    fx = pd.DataFrame(
        {
            "rate_date": pd.to_datetime(txt(r["rate_date"])),
            "currency": txt(r["currency"]).str.upper(),
            "rate": num(r["rate"]),
            **{m: r[m] for m in meta},
        }
    )
    fx = latest(fx, ["rate_date", "currency"]).drop(columns=meta)
    fx.insert(0, "fx_rate_id", fx["currency"] + "@" + fx["rate_date"].dt.strftime("%Y-%m-%d"))
    return {
        "crm_customers": crm,
        "shop_orders": orders,
        "shop_order_lines": lines,
        "pos_receipts": receipts,
        "pos_receipt_lines": receipt_lines,
        "web_events": events,
        "consent_events": consent,
        "catalog_products": products,
        "fx_rates": fx,
    }


def orders_unified(st: dict[str, pd.DataFrame], links: pd.DataFrame, currency: str):
    def attributed(source: str) -> pd.DataFrame:
        picked = links.loc[links["source"] == source, ["source_key", "customer_id", "linked_by"]]
        return picked.rename(columns={"linked_by": "attributed_by"})

    o = st["shop_orders"]
    online = pd.DataFrame(
        {
            "order_id": o["order_id"],
            "channel": "online",
            "ordered_at": o["ordered_at"],
            "status": o["status"],
            "currency": o["currency"],
            "amount_in_currency": o["total_amount"] - o["discount_amount"],
        }
    ).merge(attributed("shop_order"), left_on="order_id", right_on="source_key", how="left")
    r = st["pos_receipts"]
    store = pd.DataFrame(
        {
            "order_id": r["receipt_id"],
            "channel": "store",
            "ordered_at": r["purchased_at"],
            "status": r["status"],
            "currency": r["currency"],
            "amount_in_currency": r["total_amount"],
        }
    ).merge(attributed("pos_receipt"), left_on="order_id", right_on="source_key", how="left")
    unioned = pd.concat([online, store], ignore_index=True).drop(columns="source_key")

    # The latest rate on or before the order date: an as-of join per currency.
    rates = st["fx_rates"][["currency", "rate_date", "rate"]].sort_values("rate_date")
    unioned["ordered_on_ts"] = unioned["ordered_at"].dt.normalize()
    with_date = unioned[unioned["ordered_on_ts"].notna()].sort_values("ordered_on_ts")
    matched = pd.merge_asof(
        with_date,
        rates,
        left_on="ordered_on_ts",
        right_on="rate_date",
        by="currency",
        direction="backward",
    )
    unioned = pd.concat(
        [matched, unioned[unioned["ordered_on_ts"].isna()].assign(rate=np.nan)],
        ignore_index=True,
    )
    unioned["amount"] = np.where(
        unioned["currency"] == currency,
        unioned["amount_in_currency"],
        unioned["amount_in_currency"] * unioned["rate"],
    )
    unioned["is_missing_fx_rate"] = unioned["amount"].isna()
    return unioned.drop(columns=["ordered_on_ts", "rate_date", "rate"])


def dim_customers(crm: pd.DataFrame, links: pd.DataFrame) -> pd.DataFrame:
    records = links.loc[links["source"] == "crm", ["customer_id", "source_key"]].merge(
        crm, left_on="source_key", right_on="crm_id"
    )

    def pick(column: str, fields: list[str]) -> pd.DataFrame:
        ranked = records.assign(_missing=records[column].isna()).sort_values(
            ["customer_id", "_missing", "updated_at", "crm_id"],
            ascending=[True, True, False, True],
            na_position="last",
        )
        return ranked.drop_duplicates("customer_id")[["customer_id", *fields]]

    customers = links.groupby("customer_id", as_index=False).agg(
        first_seen_at=("first_seen_at", "min"), source_records=("source", "size")
    )
    votes = (
        records.dropna(subset=["birth_date"])
        .groupby(["customer_id", "birth_date"], as_index=False)
        .agg(n=("crm_id", "size"), last=("updated_at", "max"))
        .sort_values(["customer_id", "n", "last"], ascending=[True, False, False])
        .drop_duplicates("customer_id")[["customer_id", "birth_date"]]
    )
    summary = records.groupby("customer_id", as_index=False).agg(
        crm_records=("crm_id", "size"), is_test_account=("is_test_account", "max")
    )
    guests = (
        links[links["source"] == "shop_email"]
        .groupby("customer_id", as_index=False)["source_key"]
        .min()
        .rename(columns={"source_key": "guest_email"})
    )
    out = (
        customers.merge(pick("last_name", ["first_name", "last_name", "gender"]), how="left")
        .merge(pick("email", ["email"]), how="left")
        .merge(pick("phone", ["phone"]), how="left")
        .merge(votes, how="left")
        .merge(pick("street", ["street", "postcode", "city", "country"]), how="left")
        .merge(pick("loyalty_card_id", ["loyalty_card_id"]), how="left")
        .merge(summary, how="left")
        .merge(guests, how="left")
    )
    out["email"] = out["email"].fillna(out["guest_email"])
    out["crm_records"] = out["crm_records"].fillna(0).astype("int64")
    out["has_crm_record"] = out["crm_records"] > 0
    out["is_test_account"] = out["is_test_account"].fillna(False).astype(bool)
    return out.drop(columns="guest_email")


def customer_features(
    st: dict[str, pd.DataFrame],
    dim: pd.DataFrame,
    fct: pd.DataFrame,
    links: pd.DataFrame,
    snapshots: list[pd.Timestamp],
) -> pd.DataFrame:
    lines = pd.concat(
        [
            st["shop_order_lines"][["order_id", "sku"]].assign(
                is_discounted=st["shop_order_lines"]["discount_amount"] > 0
            ),
            st["pos_receipt_lines"][["receipt_id", "sku"]]
            .rename(columns={"receipt_id": "order_id"})
            .assign(is_discounted=False),
        ],
        ignore_index=True,
    )
    purchases = fct.loc[
        (fct["status"] == "completed") & fct["customer_id"].notna(),
        ["customer_id", "order_id", "ordered_on", "channel", "amount"],
    ]
    purchase_lines = purchases.merge(lines, on="order_id")
    baskets = purchase_lines.groupby("order_id", as_index=False).agg(
        basket_lines=("sku", "size"), discounted_lines=("is_discounted", "sum")
    )
    categories = (
        purchase_lines.merge(st["catalog_products"][["sku", "category"]], on="sku")
        .groupby(["customer_id", "category"], as_index=False)["ordered_on"]
        .min()
    )
    purchases = purchases.merge(baskets, on="order_id", how="left")
    purchases["is_online"] = purchases["channel"] == "online"
    cookies = links.loc[links["source"] == "web_cookie", ["source_key", "customer_id"]]
    web = st["web_events"]
    events = web[["anonymous_id", "event_at", "event_type", "session_id"]].merge(
        cookies, left_on="anonymous_id", right_on="source_key"
    )
    events["event_on"] = events["event_at"].dt.normalize()
    candidates = dim.loc[~dim["is_test_account"], ["customer_id", "first_seen_at"]].assign(
        first_seen_on=lambda d: d["first_seen_at"].dt.normalize()
    )

    frames = []
    for snapshot in snapshots:
        cs = candidates.loc[candidates["first_seen_on"] <= snapshot, ["customer_id"]].copy()
        cs["snapshot_date"] = snapshot
        cs["tenure_days"] = (snapshot - candidates["first_seen_on"]).dt.days

        p = purchases[purchases["ordered_on"] <= snapshot]
        since = {d: p["ordered_on"] > snapshot - pd.Timedelta(days=d) for d in (90, 365)}
        pf = (
            p.assign(
                amount_90d=p["amount"].where(since[90]),
                in_90d=since[90],
                amount_365d=p["amount"].where(since[365]),
                in_365d=since[365],
                online_lines=p["basket_lines"].where(p["is_online"]),
                has_lines=p["basket_lines"].notna(),
            )
            .groupby("customer_id")
            .agg(
                frequency=("order_id", "size"),
                monetary=("amount", "sum"),
                last_purchase_on=("ordered_on", "max"),
                first_purchase_on=("ordered_on", "min"),
                frequency_90d=("in_90d", "sum"),
                monetary_90d=("amount_90d", "sum"),
                frequency_365d=("in_365d", "sum"),
                monetary_365d=("amount_365d", "sum"),
                online_orders=("is_online", "sum"),
                orders_with_lines=("has_lines", "sum"),
                basket_lines=("basket_lines", "sum"),
                online_lines=("online_lines", "sum"),
                discounted_lines=("discounted_lines", "sum"),
            )
        )
        cf = (
            categories[categories["ordered_on"] <= snapshot]
            .groupby("customer_id")
            .size()
            .rename("distinct_categories")
        )
        e = events[events["event_on"] <= snapshot]
        age = (snapshot - e["event_on"]).dt.days
        browse = e["event_type"] != "email_open"
        opens = e["event_type"] == "email_open"

        def sessions(mask: pd.Series, name: str, e: pd.DataFrame = e) -> pd.Series:
            return e[mask].groupby("customer_id")["session_id"].nunique().rename(name)

        def count(mask: pd.Series, name: str, e: pd.DataFrame = e) -> pd.Series:
            return e[mask].groupby("customer_id").size().rename(name)

        wf = pd.concat(
            [
                sessions(age < 30, "web_sessions_30d"),
                count((e["event_type"] == "product_view") & (age < 30), "product_views_30d"),
                count((e["event_type"] == "add_to_cart") & (age < 30), "cart_adds_30d"),
                count(opens & (age < 90), "email_opens_90d"),
                count((e["event_type"] == "email_click") & (age < 90), "email_clicks_90d"),
                e.groupby("customer_id")["event_on"].max().rename("last_web_event_on"),
                sessions(browse & (age < 90), "browse_sessions_90d"),
                sessions(browse & (age < 365), "browse_sessions_365d"),
                count(opens & (age < 30), "email_opens_30d"),
                count(opens & (age < 365), "email_opens_365d"),
                e[browse].groupby("customer_id")["event_on"].max().rename("last_browse_on"),
                e[opens].groupby("customer_id")["event_on"].max().rename("last_email_open_on"),
            ],
            axis=1,
        )
        f = cs.join(pf, on="customer_id").join(cf, on="customer_id").join(wf, on="customer_id")
        frequency = f["frequency"].fillna(0)
        out = pd.DataFrame(
            {
                "customer_id": f["customer_id"],
                "snapshot_date": f["snapshot_date"],
                "recency_days": (snapshot - f["last_purchase_on"]).dt.days.astype("Int32"),
                "frequency": frequency.astype("int32"),
                "monetary": f["monetary"].fillna(0.0),
                "tenure_days": f["tenure_days"].astype("int32"),
                "avg_order_value": (f["monetary"] / frequency).where(frequency > 0),
                "frequency_90d": f["frequency_90d"].fillna(0).astype("int32"),
                "monetary_90d": f["monetary_90d"].fillna(0.0),
                "online_share": (f["online_orders"] / frequency).where(frequency > 0),
            }
        )
        for column in (
            "web_sessions_30d",
            "product_views_30d",
            "cart_adds_30d",
            "email_opens_90d",
            "email_clicks_90d",
        ):
            out[column] = f[column].fillna(0).astype("int32")
        out["days_since_last_web_event"] = (snapshot - f["last_web_event_on"]).dt.days.astype(
            "Int32"
        )
        out["days_since_first_purchase"] = (snapshot - f["first_purchase_on"]).dt.days.astype(
            "Int32"
        )
        span = (f["last_purchase_on"] - f["first_purchase_on"]).dt.days
        out["avg_days_between_purchases"] = (span / (frequency - 1)).where(frequency > 1)
        out["frequency_365d"] = f["frequency_365d"].fillna(0).astype("int32")
        out["monetary_365d"] = f["monetary_365d"].fillna(0.0)
        out["avg_basket_lines"] = (f["basket_lines"] / f["orders_with_lines"]).where(
            f["orders_with_lines"] > 0
        )
        out["discount_share"] = (f["discounted_lines"] / f["online_lines"]).where(
            f["online_lines"] > 0
        )
        out["distinct_categories"] = f["distinct_categories"].fillna(0).astype("int32")
        for column in (
            "browse_sessions_90d",
            "browse_sessions_365d",
            "email_opens_30d",
            "email_opens_365d",
        ):
            out[column] = f[column].fillna(0).astype("int32")
        out["days_since_last_browse"] = (snapshot - f["last_browse_on"]).dt.days.astype("Int32")
        out["days_since_last_email_open"] = (snapshot - f["last_email_open_on"]).dt.days.astype(
            "Int32"
        )
        frames.append(out)
    return pd.concat(frames, ignore_index=True)


RAW_TABLES = (
    "crm_customers",
    "shop_orders",
    "shop_order_lines",
    "pos_receipts",
    "pos_receipt_lines",
    "web_events",
    "consent_events",
    "catalog_products",
    "fx_rates",
)


def run(
    warehouse: Path, out: Path, snapshots: list[str], currency: str, country_code: str
) -> dict[str, int]:
    with duckdb.connect(str(warehouse), read_only=True) as wh:
        wh.execute("set TimeZone = 'UTC'")
        raw = {t: wh.sql(f"select * from raw.{t}").df() for t in RAW_TABLES}
        links = wh.sql("select * from identity.record_links").df()
    st = stage(raw, country_code)
    del raw
    unified = orders_unified(st, links, currency)
    fct = unified[~unified["is_missing_fx_rate"]].copy()
    fct["ordered_on"] = fct["ordered_at"].dt.normalize()
    quarantined = unified[unified["is_missing_fx_rate"]].copy()
    quarantined["reason"] = (
        "no exchange rate for "
        + quarantined["currency"]
        + " on or before "
        + quarantined["ordered_at"].dt.strftime("%Y-%m-%d")
    )
    dim = dim_customers(st["crm_customers"], links)
    features = customer_features(
        st, dim, fct, links, [pd.Timestamp(d) for d in dict.fromkeys(snapshots)]
    )
    tables = {
        **{f"pandas_staging.{name}": frame for name, frame in st.items()},
        "pandas_marts.identifiers_linked": links,
        "pandas_marts.customer_identifiers": links[
            ~links["source"].isin(["shop_order", "pos_receipt"])
        ],
        "pandas_marts.orders_unified": unified,
        "pandas_marts.fct_orders": fct,
        "pandas_marts.quarantined_orders": quarantined,
        "pandas_marts.dim_customers": dim,
        "pandas_marts.customer_features": features,
    }
    with duckdb.connect(str(out)) as sink:
        sink.execute("create schema if not exists pandas_staging")
        sink.execute("create schema if not exists pandas_marts")
        for name, frame in tables.items():
            sink.register("frame", frame)
            sink.execute(f"create or replace table {name} as select * from frame")
            sink.unregister("frame")
    return {name.split(".", 1)[1]: len(frame) for name, frame in tables.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("warehouse", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--snapshot", action="append", required=True)
    parser.add_argument("--currency", default="EUR")
    parser.add_argument("--phone-country-code", default="49")
    args = parser.parse_args()
    counts = run(args.warehouse, args.out, args.snapshot, args.currency, args.phone_country_code)
    print(json.dumps(counts))


if __name__ == "__main__":
    main()
