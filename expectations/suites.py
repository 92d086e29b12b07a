"""Expectation suites for the publication gate, declared as code: one suite per table.

Every expectation carries `meta={"severity": ...}`:

- ``critical``: a failure blocks publication (the gate raises `QualityGateError`);
- ``warning``: a failure is reported (report JSON, Data Docs) but publication goes ahead.

Great Expectations is imported inside the functions: importing this module stays cheap.
Extra columns never fail a suite: columns are checked one by one (`ExpectColumnToExist`),
not as an exact set.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from great_expectations.core.expectation_suite import ExpectationSuite

CRITICAL = "critical"
WARNING = "warning"
SEVERITIES = (CRITICAL, WARNING)

FCT_ORDERS = "marts.fct_orders"
CUSTOMER_FEATURES = "marts.customer_features"
TABLES = (FCT_ORDERS, CUSTOMER_FEATURES)

ORDER_CHANNELS = ("online", "store")
ORDER_STATUSES = ("completed", "cancelled", "refunded")
# Amounts are in the reporting currency. Above the hard bound the value is surely an error
# (a unit or currency mix-up); above the soft bound it is unusual enough to look at.
AMOUNT_HARD_MAX = 1_000_000.0
AMOUNT_SOFT_MAX = 50_000.0
# A column is "mostly null" when fewer than this share of its values are present.
MOSTLY_PRESENT = 0.5

FCT_ORDERS_COLUMNS = ("order_id", "customer_id", "channel", "ordered_at", "status", "amount")
CUSTOMER_FEATURES_COLUMNS = (
    "customer_id",
    "snapshot_date",
    "recency_days",
    "frequency",
    "monetary",
    "tenure_days",
)
# Columns of customer_features that critical expectations already require to be non-null.
_FEATURES_NOT_NULL = ("customer_id", "snapshot_date", "frequency", "monetary")

_NOTES = {
    CRITICAL: "Critical: a failure blocks publication.",
    WARNING: "Warning: a failure is reported, publication goes ahead.",
}


def import_gx() -> tuple[Any, Any]:
    """`great_expectations` and `great_expectations.expectations`, imported on first use."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    import great_expectations as gx
    import great_expectations.expectations as gxe

    return gx, gxe


def _tag(severity: str) -> dict[str, Any]:
    # A fresh dict per expectation: GX owns (and may mutate) what it is given.
    return {"meta": {"severity": severity}, "notes": _NOTES[severity]}


def critical() -> dict[str, Any]:
    return _tag(CRITICAL)


def warning() -> dict[str, Any]:
    return _tag(WARNING)


def fct_orders_suite() -> ExpectationSuite:
    """`marts.fct_orders`: every row of the table is validated."""
    gx, gxe = import_gx()
    expectations = [gxe.ExpectColumnToExist(column=c, **critical()) for c in FCT_ORDERS_COLUMNS]
    expectations += [
        gxe.ExpectTableRowCountToBeBetween(min_value=1, **critical()),
        gxe.ExpectColumnValuesToNotBeNull(column="order_id", **critical()),
        gxe.ExpectColumnValuesToBeUnique(column="order_id", **critical()),
        # customer_id may be null: anonymous store receipts.
        gxe.ExpectColumnValuesToNotBeNull(column="channel", **critical()),
        gxe.ExpectColumnValuesToBeInSet(
            column="channel", value_set=list(ORDER_CHANNELS), **critical()
        ),
        gxe.ExpectColumnValuesToNotBeNull(column="ordered_at", **critical()),
        gxe.ExpectColumnValuesToNotBeNull(column="status", **critical()),
        gxe.ExpectColumnValuesToBeInSet(
            column="status", value_set=list(ORDER_STATUSES), **critical()
        ),
        gxe.ExpectColumnValuesToNotBeNull(column="amount", **critical()),
        gxe.ExpectColumnValuesToBeBetween(
            column="amount", min_value=0, max_value=AMOUNT_HARD_MAX, **critical()
        ),
        gxe.ExpectColumnValuesToBeBetween(column="amount", max_value=AMOUNT_SOFT_MAX, **warning()),
    ]
    return gx.ExpectationSuite(name=FCT_ORDERS, expectations=expectations)


def customer_features_suite(columns: Iterable[str] = ()) -> ExpectationSuite:
    """`marts.customer_features`: the rows of the snapshot being published.

    `columns` are the frame's columns: every column that critical expectations do not already
    require to be non-null gets a mostly-null warning, extra columns included.
    """
    gx, gxe = import_gx()
    expectations = [
        gxe.ExpectColumnToExist(column=c, **critical()) for c in CUSTOMER_FEATURES_COLUMNS
    ]
    expectations += [
        gxe.ExpectTableRowCountToBeBetween(min_value=1, **critical()),
        gxe.ExpectColumnValuesToNotBeNull(column="customer_id", **critical()),
        gxe.ExpectColumnValuesToNotBeNull(column="snapshot_date", **critical()),
        gxe.ExpectCompoundColumnsToBeUnique(
            column_list=["customer_id", "snapshot_date"], **critical()
        ),
        gxe.ExpectColumnValuesToNotBeNull(column="frequency", **critical()),
        gxe.ExpectColumnValuesToBeBetween(column="frequency", min_value=0, **critical()),
        gxe.ExpectColumnValuesToNotBeNull(column="monetary", **critical()),
        gxe.ExpectColumnValuesToBeBetween(column="monetary", min_value=0, **critical()),
        # recency_days is null when the customer never purchased; nulls are not checked here.
        gxe.ExpectColumnValuesToBeBetween(column="recency_days", min_value=0, **critical()),
        gxe.ExpectColumnValuesToBeBetween(column="tenure_days", min_value=0, **critical()),
    ]
    optional = [c for c in CUSTOMER_FEATURES_COLUMNS if c not in _FEATURES_NOT_NULL]
    optional += [c for c in columns if c not in CUSTOMER_FEATURES_COLUMNS]
    expectations += [
        gxe.ExpectColumnValuesToNotBeNull(column=c, mostly=MOSTLY_PRESENT, **warning())
        for c in optional
    ]
    return gx.ExpectationSuite(name=CUSTOMER_FEATURES, expectations=expectations)


def build_suite(table: str, columns: Iterable[str] = ()) -> ExpectationSuite:
    """The suite of `table` (qualified name, e.g. ``marts.fct_orders``)."""
    if table == FCT_ORDERS:
        return fct_orders_suite()
    if table == CUSTOMER_FEATURES:
        return customer_features_suite(columns)
    raise ValueError(f"no expectation suite for table {table!r}; known: {', '.join(TABLES)}")


def build_suites(
    columns: Mapping[str, Iterable[str]] | None = None,
) -> dict[str, ExpectationSuite]:
    """Every suite, by table; `columns` optionally maps a table to its frame's columns."""
    columns = columns or {}
    return {t: build_suite(t, columns.get(t, ())) for t in TABLES}


def qualified(table: str) -> str:
    """``fct_orders`` -> ``marts.fct_orders``; an already qualified known name is unchanged."""
    name = table if "." in table else f"marts.{table}"
    if name not in TABLES:
        raise ValueError(f"no expectation suite for table {table!r}; known: {', '.join(TABLES)}")
    return name
