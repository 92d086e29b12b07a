"""A small warehouse that runs the real consent models (compiled by dbt) and the real exporter.

The dbt models int_consent_events_linked and customer_consent are compiled once per session;
each test loads its own upstream rows (staging tables, identity links, golden records, segments)
and runs the compiled SQL on DuckDB, then `journeys.activation.export_audiences`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from journeys.activation import export_audiences
from journeys.settings import Settings, get_settings
from journeys.transform import invoke
from journeys.warehouse import connect

RUN_DATE = date(2025, 6, 30)
CONSENT_MODELS = {
    "intermediate.int_consent_events_linked": "intermediate/int_consent_events_linked.sql",
    "marts.customer_consent": "marts/customer_consent.sql",
}
# The upstream relations the consent models and the exporter read, with the columns they use.
UPSTREAM = {
    "staging.stg_consent__events": {
        "consent_event_id": "varchar",
        "channel": "varchar",
        "status": "varchar",
        "event_at": "timestamp",
        "email": "varchar",
        "crm_id": "varchar",
        "phone": "varchar",
        "consent_source": "varchar",
        "policy_version": "varchar",
    },
    "intermediate.int_identifiers_linked": {
        "customer_id": "varchar",
        "source": "varchar",
        "source_key": "varchar",
        "linked_by": "varchar",
        "first_seen_at": "timestamp",
    },
    "staging.stg_crm__customers": {"crm_id": "varchar", "email": "varchar", "phone": "varchar"},
    "staging.stg_shop__orders": {"order_id": "varchar", "customer_email": "varchar"},
    "marts.dim_customers": {
        "customer_id": "varchar",
        "email": "varchar",
        "phone": "varchar",
        "is_test_account": "boolean",
    },
    "marts.customer_segments": {
        "customer_id": "varchar",
        "snapshot_date": "date",
        "segment_id": "integer",
        "segment_name": "varchar",
    },
}
RULE_SEGMENTS = {
    "customer_id": "varchar",
    "snapshot_date": "date",
    "segment": "varchar",
    "channel": "varchar",
    "priority": "integer",
    "description": "varchar",
}


@dataclass
class ActivationWarehouse:
    settings: Settings
    compiled: dict[str, str]

    def load(self, rows: dict[str, list[dict]], rule_segments: list[dict] | None = None) -> None:
        """Replace every upstream relation by `rows` (missing = empty), then build consent.

        `rule_segments=None` leaves marts.customer_rule_segments out of the warehouse.
        """
        tables = dict(UPSTREAM)
        if rule_segments is not None:
            tables["marts.customer_rule_segments"] = RULE_SEGMENTS
            rows = {**rows, "marts.customer_rule_segments": rule_segments}
        with connect(self.settings) as con:
            con.execute("drop table if exists marts.customer_rule_segments")
            for name, columns in tables.items():
                con.execute(f"create schema if not exists {name.split('.')[0]}")
                ddl = ", ".join(f"{c} {t}" for c, t in columns.items())
                con.execute(f"create or replace table {name} ({ddl})")
                frame = pd.DataFrame(rows.get(name, []), columns=list(columns))
                if len(frame):
                    con.register("incoming", frame)
                    con.execute(f"insert into {name} select * from incoming")
                    con.unregister("incoming")
            for name, sql in self.compiled.items():
                con.execute(f"create or replace table {name} as {sql}")

    def export(self, run_date: date = RUN_DATE, **overrides) -> dict:
        settings = replace(self.settings, **overrides)
        with connect(settings) as con:
            return export_audiences(con, settings, run_date)

    def query(self, sql: str, params: list | None = None) -> list[tuple]:
        with connect(self.settings) as con:
            return con.execute(sql, params or []).fetchall()


@pytest.fixture(scope="session")
def compiled_consent_models(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """The consent models as dbt compiles them against a warehouse file named `warehouse`."""
    home = tmp_path_factory.mktemp("consent-models")
    settings = get_settings({"JOURNEYS_HOME": str(home)})
    invoke(settings, ["compile", "--select", "int_consent_events_linked", "customer_consent"])
    compiled_dir = settings.dbt_target_dir / "compiled" / "customer_journeys" / "models"
    return home, {name: (compiled_dir / path).read_text() for name, path in CONSENT_MODELS.items()}


@pytest.fixture
def activation_warehouse(compiled_consent_models, tmp_path: Path) -> ActivationWarehouse:
    home, compiled = compiled_consent_models
    # Same file name as at compile time: the compiled SQL names the catalog `warehouse`.
    settings = get_settings({"JOURNEYS_HOME": str(tmp_path / "home")})
    assert settings.warehouse.name == "warehouse.duckdb"
    return ActivationWarehouse(settings, compiled)
