"""Analysts and the nightly run side by side; a person erased everywhere; `journeys explain`.

One module fixture runs the whole pipeline twice on the sample: a first night, then an erasure
request, then a second night while an analyst holds the published warehouse open.
"""

from __future__ import annotations

import csv
import hashlib
import shutil
import subprocess
import sys
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pytest

from journeys import pipeline
from journeys.contract import BY_SOURCE_ENTITY
from journeys.erasure import ERASED_REASON
from journeys.settings import Settings, get_settings
from journeys.warehouse import connect

pytestmark = pytest.mark.e2e


@dataclass(frozen=True)
class SampleHome:
    home: Path
    settings: Settings
    run_date: date
    env: dict[str, str]  # what the `journeys` processes of this home run with


ANALYST = """
import sys, duckdb
path = sys.argv[1]
query = "select max(run_date)::varchar from publication"
con = duckdb.connect(path, read_only=True)
print(con.execute(query).fetchall()[0][0], flush=True)
for line in sys.stdin:
    if line.strip() == "reconnect":
        con.close()
        con = duckdb.connect(path, read_only=True)
    print(con.execute(query).fetchall()[0][0], flush=True)
"""
# Inputs, not outputs: the delivered exports are the source systems' copies, and truth/ is the
# sample generator's answer key (neither is written by the pipeline).
INPUTS = ("exports", "truth")


def _person(con: duckdb.DuckDBPyConnection) -> dict:
    """A customer with a CRM record, e-mail, phone, orders and a web cookie, and every value
    that identifies them (what the search must not find afterwards)."""
    customer_id = con.execute(
        """select d.customer_id from marts.dim_customers d
        where d.email is not null and d.phone is not null and not d.is_test_account
          and (select count(*) from marts.dim_customers o where o.email = d.email) = 1
          and exists (select 1 from marts.customer_identifiers i
                      where i.customer_id = d.customer_id and i.source = 'web_cookie')
          and exists (select 1 from marts.fct_orders f where f.customer_id = d.customer_id
                      and f.channel = 'online')
        order by d.customer_id limit 1"""
    ).fetchall()[0][0]
    keys = con.execute(
        "select source, source_key from marts.customer_identifiers where customer_id = ?",
        [customer_id],
    ).fetchall()
    crm_ids = [k for s, k in keys if s == "crm"]
    crm_rows = con.execute(
        "select * exclude (_file, _line, _checksum, _delivery_date, _batch_id) "
        "from raw.crm_customers where crm_id in (select unnest(?))",
        [crm_ids],
    ).df()
    orders = [
        r[0]
        for r in con.execute(
            "select order_id from marts.fct_orders where customer_id = ?", [customer_id]
        ).fetchall()
    ]
    order_rows = con.execute(
        "select * exclude (_file, _line, _checksum, _delivery_date, _batch_id) "
        "from raw.shop_orders where order_id in (select unnest(?))",
        [orders],
    ).df()
    emails = {e.strip().lower() for e in crm_rows["email"].dropna()}
    phones = {p.strip() for p in crm_rows["phone"].dropna()}
    normalised_phones = {
        r[0]
        for r in con.execute(
            "select phone from staging.stg_crm__customers where crm_id in (select unnest(?)) "
            "and phone is not null",
            [crm_ids],
        ).fetchall()
    }
    values = (
        {customer_id, *(k for _, k in keys), *orders, *emails, *phones, *normalised_phones}
        | {c for c in crm_rows["loyalty_card_id"].dropna()}
        | {hashlib.sha256(e.encode()).hexdigest() for e in emails}  # ad-platform form
    )
    return {
        "customer_id": customer_id,
        "email": sorted(emails)[0],
        "values": sorted(v.lower() for v in values if v and len(v) >= 6),
        "crm_rows": crm_rows,
        "order_rows": order_rows,
    }


def _mentions(needles: list[str]) -> str:
    """SQL: the row `t`, as text, contains one of the (lower-case) needles."""
    quoted = (n.replace("'", "''") for n in needles)
    return " or ".join(f"contains(lower(t::varchar), '{n}')" for n in quoted)


def _traces_in_database(con: duckdb.DuckDBPyConnection, needles: list[str]) -> list[str]:
    """Every base table of every schema whose rows mention one of the needles."""
    found = []
    tables = con.execute(
        "select table_schema, table_name from information_schema.tables "
        "where table_type = 'BASE TABLE'"
    ).fetchall()
    condition = _mentions(needles)
    for schema, table in tables:
        rows = con.execute(
            f'select count(*) from "{schema}"."{table}" as t where {condition}'
        ).fetchall()[0][0]
        if rows:
            found.append(f"{schema}.{table} ({rows} rows)")
    return found


def _traces_in_files(home: Path, needles: list[str]) -> list[str]:
    """Every file the pipeline wrote under JOURNEYS_HOME that mentions one of the needles:
    Parquet read as rows, everything else (CSV, JSON, HTML, logs, MLflow artifacts, SQLite,
    DuckDB files) as bytes."""
    found = []
    condition = _mentions(needles)
    with duckdb.connect() as con:
        for path in sorted(p for p in home.rglob("*") if p.is_file()):
            if path.relative_to(home).parts[0] in INPUTS:
                continue
            if path.suffix == ".parquet":
                rows = con.execute(
                    f"select count(*) from read_parquet('{path}') as t where {condition}"
                ).fetchall()[0][0]
                if rows:
                    found.append(f"{path.relative_to(home)} ({rows} rows)")
                continue
            data = path.read_bytes().lower()
            found += [f"{path.relative_to(home)}: {n}" for n in needles if n.encode() in data]
    return found


@pytest.fixture(scope="module")
def two_nights(tmp_path_factory, sample_exports, process_env):
    """Night 1; a `forget` request; night 2 with an analyst connection held open throughout."""
    folder = tmp_path_factory.mktemp("analyst")
    home = SampleHome(
        folder,
        get_settings({"JOURNEYS_HOME": str(folder)}),
        sample_exports.run_date,
        process_env(JOURNEYS_HOME=str(folder), COLUMNS="200"),
    )
    shutil.copytree(sample_exports.settings.exports, home.settings.exports)
    first_night = home.run_date - timedelta(days=1)
    # Each night in its own process, as the nightly job runs (and as the analyst's is).
    night = _journeys(home, "run", "--date", first_night.isoformat())
    assert night.returncode == 0, night.stdout + night.stderr
    with connect(home.settings) as con:
        person = _person(con)
    forget = _journeys(home, "forget", "--email", person["email"].upper())
    assert forget.returncode == 0, forget.stderr

    analyst = subprocess.Popen(
        [sys.executable, "-c", ANALYST, str(home.settings.analyst_warehouse)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    seen = [analyst.stdout.readline().strip()]
    try:
        results = _journeys(home, "run", "--date", home.run_date.isoformat())  # never waits
        for command in ("again", "reconnect"):
            analyst.stdin.write(command + "\n")
            analyst.stdin.flush()
            seen.append(analyst.stdout.readline().strip())
    finally:
        analyst.stdin.close()
        analyst.wait(timeout=60)
    return home, person, results, seen, first_night


def _journeys(home, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "journeys.cli", *args],
        env=home.env,
        capture_output=True,
        text=True,
        timeout=1800,
    )


def test_run_succeeds_under_an_open_analyst_connection_which_sees_new_data_on_reconnect(
    two_nights,
) -> None:
    home, _, results, seen, first_night = two_nights
    assert results.returncode == 0, results.stdout + results.stderr
    assert f"Analyst warehouse: {home.settings.analyst_warehouse}" in results.stdout
    assert seen == [
        first_night.isoformat(),  # opened after night 1
        first_night.isoformat(),  # the held connection keeps its file through night 2
        home.run_date.isoformat(),  # reconnecting shows night 2
    ]
    with duckdb.connect(str(home.settings.analyst_warehouse), read_only=True) as con:
        published_rows = con.execute("select count(*) from marts.customer_segments").fetchall()
    with connect(home.settings) as con:
        live_rows = con.execute("select count(*) from marts.customer_segments").fetchall()
    assert published_rows == live_rows


def test_erased_person_is_nowhere(two_nights) -> None:
    home, person, results, _, _ = two_nights
    assert "Erasure: 1 request(s), 1 customer(s)" in results.stdout
    assert not (home.settings.erasure_dir / "compaction-pending").exists()
    assert not list((home.settings.erasure_dir / "requests").glob("*.json"))
    needles = person["values"]
    with connect(home.settings) as con:  # this process ran dbt: same configuration as dbt's
        assert _traces_in_database(con, needles) == []
    with duckdb.connect(str(home.settings.analyst_warehouse), read_only=True) as con:
        assert _traces_in_database(con, needles) == []
    assert _traces_in_files(home.home, needles) == []
    with connect(home.settings) as con:
        logged = con.execute("select count(*) from raw.erasure_log").fetchall()[0][0]
        # every landed row is accounted for: loaded = still landed + erased
        for table, source, entity in (
            ("crm_customers", "crm", "customers"),
            ("shop_orders", "shop", "orders"),
            ("web_events", "web", "events"),
        ):
            landed = con.execute(f"select count(*) from raw.{table}").fetchall()[0][0]
            loaded, erased = con.execute(
                "select (select sum(rows_loaded) from raw.load_manifest where status = 'loaded'"
                " and source = $1 and entity = $2), (select coalesce(sum(rows_erased), 0) "
                "from raw.erased_rows where source = $1 and entity = $2)",
                [source, entity],
            ).fetchall()[0]
            assert loaded == landed + erased, table
        erased_rows = con.execute("select sum(rows_erased) from raw.erased_rows").fetchall()
    assert erased_rows[0][0] >= len(person["crm_rows"]) + len(person["order_rows"])
    assert logged > len(needles) // 2  # salted hashes of their identifiers are kept


def test_redelivered_export_cannot_bring_them_back(two_nights) -> None:
    home, person, _, _, _ = two_nights
    day = home.run_date + timedelta(days=1)
    for (source, entity), rows in (
        (("crm", "customers"), person["crm_rows"]),
        (("shop", "orders"), person["order_rows"]),
    ):
        folder = home.settings.exports / source / day.isoformat()
        folder.mkdir(parents=True)
        columns = BY_SOURCE_ENTITY[(source, entity)].column_names
        with open(folder / f"{entity}.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, columns, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows.where(rows.notna(), None).to_dict("records"))
    summary = pipeline.land(day, home.settings)
    assert summary["rows_received"] == summary["rows_loaded"] + summary["rows_quarantined"]
    assert summary["rows_received"] == len(person["crm_rows"]) + len(person["order_rows"])
    assert summary["rows_loaded"] == 0
    with connect(home.settings) as con:
        quarantined = con.execute(
            "select reason, raw_content from raw.quarantine where file like ?",
            [f"%/{day.isoformat()}/%"],
        ).fetchall()
        assert _traces_in_database(con, person["values"]) == []
    assert {r for r, _ in quarantined} == {ERASED_REASON}
    assert {c for _, c in quarantined} == {None}  # no content kept


def _explain(home, customer_id: str) -> subprocess.CompletedProcess:
    return _journeys(home, "explain", customer_id)


def test_explain_answers_while_the_warehouse_is_held(two_nights) -> None:
    """While a writer holds the warehouse (as a running pipeline does), explain, in its own
    process, reads the published analyst warehouse; otherwise the warehouse itself."""
    home, person, _, _, _ = two_nights
    with duckdb.connect(str(home.settings.analyst_warehouse), read_only=True) as con:
        customer_id = con.execute(
            "select customer_id from marts.customer_segments "
            "where churn_reason_1 is not null order by customer_id limit 1"
        ).fetchall()[0][0]
    with connect(home.settings):  # the writer's lock
        held = _explain(home, customer_id)
    assert held.returncode == 0, held.stderr
    assert "published analyst warehouse" in held.stdout
    free = _explain(home, customer_id)
    assert free.returncode == 0, free.stderr
    assert f"warehouse {home.settings.warehouse} (read-only)" in free.stdout
    for out in (held.stdout, free.stdout):
        for title in (
            "Golden record",
            "Source records: crm/customers",
            "marts.customer_identifiers",
            "identity.match_evidence",
            "marts.customer_features",
            "Lifecycle stage",
            "churn_reason_1",
            "Consent per channel",
        ):
            assert title in out, title
    erased = _explain(home, person["customer_id"])
    assert erased.returncode == 1
    assert "no customer" in erased.stderr
