"""The source-export contract, declared once.

Landing validates against it, the sample generator writes it, the README documents it and the
dbt sources mirror it. Change it only on purpose, with CONTRACT.md, the README and the tests.

Layout: `<exports>/<source>/<delivery-date YYYY-MM-DD>/<entity>[-<part>].<ext>`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# File endings landing accepts, longest first so `.csv.gz` wins over `.gz`.
FORMATS: dict[str, str] = {
    ".csv.gz": "csv",
    ".csv": "csv",
    ".jsonl.gz": "jsonl",
    ".jsonl": "jsonl",
    ".parquet": "parquet",
}

# Value kinds and what a valid value looks like. Landing checks them with try_cast in DuckDB.
KINDS = ("string", "timestamp", "date", "decimal", "integer", "boolean")


@dataclass(frozen=True)
class Column:
    name: str
    kind: str = "string"
    required: bool = False
    allowed: tuple[str, ...] = ()  # closed vocabulary; empty means any value of the kind
    strict_vocabulary: bool = True  # False: unknown values are kept and reported, not quarantined

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"column {self.name}: unknown kind {self.kind!r}")


@dataclass(frozen=True)
class Entity:
    source: str
    name: str
    key: tuple[str, ...]
    columns: tuple[Column, ...]
    # Groups of columns of which at least one must be present per row.
    one_of: tuple[tuple[str, ...], ...] = field(default=())
    # Column whose latest value wins when a key is delivered again (else the latest delivery).
    version_column: str | None = "updated_at"

    @property
    def table(self) -> str:
        """Name of the raw relation: `raw.<source>_<entity>`."""
        return f"{self.source}_{self.name}"

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def required(self) -> list[str]:
        return [c.name for c in self.columns if c.required]

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)


def _c(name: str, kind: str = "string", *, req: bool = False, allowed=(), strict=True) -> Column:
    return Column(name, kind, req, tuple(allowed), strict)


CHANNELS = ("email", "sms", "push", "ads")
ORDER_STATUSES = ("completed", "cancelled", "refunded")
EVENT_TYPES = (
    "page_view",
    "product_view",
    "add_to_cart",
    "remove_from_cart",
    "checkout_started",
    "login",
    "email_open",
    "email_click",
)

ENTITIES: tuple[Entity, ...] = (
    Entity(
        "crm",
        "customers",
        ("crm_id",),
        (
            _c("crm_id", req=True),
            _c("updated_at", "timestamp", req=True),
            _c("first_name"),
            _c("last_name"),
            _c("email"),
            _c("phone"),
            _c("birth_date", "date"),
            _c("gender"),
            _c("street"),
            _c("city"),
            _c("postcode"),
            _c("country"),
            _c("loyalty_card_id"),
            _c("created_at", "timestamp"),
            _c("is_test_account", "boolean"),
        ),
    ),
    Entity(
        "shop",
        "orders",
        ("order_id",),
        (
            _c("order_id", req=True),
            _c("ordered_at", "timestamp", req=True),
            _c("status", req=True, allowed=ORDER_STATUSES),
            _c("currency", req=True),
            _c("total_amount", "decimal", req=True),
            _c("customer_email"),
            _c("crm_id"),
            _c("updated_at", "timestamp"),
            _c("shipping_postcode"),
            _c("discount_amount", "decimal"),
        ),
        one_of=(("customer_email", "crm_id"),),
    ),
    Entity(
        "shop",
        "order_lines",
        ("order_id", "line_number"),
        (
            _c("order_id", req=True),
            _c("line_number", "integer", req=True),
            _c("sku", req=True),
            _c("quantity", "integer", req=True),
            _c("unit_price", "decimal", req=True),
            _c("discount_amount", "decimal"),
        ),
        version_column=None,
    ),
    Entity(
        "pos",
        "receipts",
        ("receipt_id",),
        (
            _c("receipt_id", req=True),
            _c("store_id", req=True),
            _c("purchased_at", "timestamp", req=True),
            _c("currency", req=True),
            _c("total_amount", "decimal", req=True),
            _c("loyalty_card_id"),
            _c("status", allowed=ORDER_STATUSES),
            _c("updated_at", "timestamp"),
        ),
    ),
    Entity(
        "pos",
        "receipt_lines",
        ("receipt_id", "line_number"),
        (
            _c("receipt_id", req=True),
            _c("line_number", "integer", req=True),
            _c("sku", req=True),
            _c("quantity", "integer", req=True),
            _c("unit_price", "decimal", req=True),
        ),
        version_column=None,
    ),
    Entity(
        "web",
        "events",
        ("event_id",),
        (
            _c("event_id", req=True),
            _c("event_at", "timestamp", req=True),
            _c("event_type", req=True, allowed=EVENT_TYPES, strict=False),
            _c("anonymous_id", req=True),
            _c("user_email"),
            _c("crm_id"),
            _c("session_id"),
            _c("sku"),
            _c("url"),
            _c("device"),
            _c("utm_source"),
            _c("utm_medium"),
            _c("utm_campaign"),
        ),
        version_column=None,
    ),
    Entity(
        "consent",
        "events",
        ("consent_event_id",),
        (
            _c("consent_event_id", req=True),
            _c("channel", req=True, allowed=CHANNELS),
            _c("status", req=True, allowed=("opt_in", "opt_out")),
            _c("event_at", "timestamp", req=True),
            _c("email"),
            _c("crm_id"),
            _c("phone"),
            _c("source"),
            _c("policy_version"),
        ),
        one_of=(("email", "crm_id", "phone"),),
        version_column=None,
    ),
    Entity(
        "catalog",
        "products",
        ("sku",),
        (
            _c("sku", req=True),
            _c("category", req=True),
            _c("name"),
            _c("brand"),
            _c("list_price", "decimal"),
            _c("currency"),
            _c("is_active", "boolean"),
        ),
        version_column=None,
    ),
    Entity(
        "fx",
        "rates",
        ("rate_date", "currency"),
        (
            _c("rate_date", "date", req=True),
            _c("currency", req=True),
            _c("rate", "decimal", req=True),
        ),
        version_column=None,
    ),
)

BY_TABLE: dict[str, Entity] = {e.table: e for e in ENTITIES}
BY_SOURCE_ENTITY: dict[tuple[str, str], Entity] = {(e.source, e.name): e for e in ENTITIES}
