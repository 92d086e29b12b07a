"""The sample generator: deterministic, contract-shaped exports whose truth explains every row."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
from collections import Counter, defaultdict
from dataclasses import replace
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from journeys.contract import BY_SOURCE_ENTITY, ENTITIES
from journeys.sample import GeneratorConfig, generate
from journeys.sample.generator import FORMATS
from journeys.sample.truth import (
    bgnbd_expected_purchases,
    bgnbd_p_alive,
    bgnbd_p_no_purchase,
    churn_truth,
    purchase_optimum,
)

START = date(2025, 1, 6)
DAYS = 70
CUSTOMERS = 3000
SEED = 11


def _run(root: Path, **kw) -> dict:
    args = {
        "customers": CUSTOMERS,
        "days": DAYS,
        "start": START,
        "seed": SEED,
        "exports_dir": root / "exports",
        "truth_dir": root / "truth",
        "progress": False,
    }
    args.update(kw)
    return generate(**args)


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("sample")
    _run(root)
    return root


@pytest.fixture(scope="module")
def noisy(tmp_path_factory) -> tuple[Path, GeneratorConfig]:
    """Defect rates turned up, so their measured rates are statistically tight."""
    cfg = replace(
        GeneratorConfig(),
        malformed_rate=0.02,
        duplicate_row_rate=0.03,
        late_order_rate=0.1,
        unknown_channel_rate=0.05,
    )
    root = tmp_path_factory.mktemp("noisy")
    _run(root, customers=2000, days=40, config=cfg)
    return root, cfg


def _digests(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _text(path: Path) -> str:
    data = path.read_bytes()
    return (gzip.decompress(data) if path.name.endswith(".gz") else data).decode("utf-8")


def _rows(root: Path, source: str, entity: str) -> list[dict]:
    """Every parseable row of an entity, with its delivery date; broken JSON lines skipped."""
    ext = FORMATS[(source, entity)]
    rows = []
    for path in sorted((root / "exports" / source).glob(f"*/{entity}{ext}")):
        delivered = path.parent.name
        if ext == ".parquet":
            for row in pq.read_table(path).to_pylist():
                rows.append({**row, "_delivered": delivered})
        elif ext.startswith(".csv"):
            for row in csv.DictReader(io.StringIO(_text(path))):
                rows.append({**row, "_delivered": delivered})
        else:
            for line in _text(path).splitlines():
                try:
                    rows.append({**json.loads(line), "_delivered": delivered})
                except json.JSONDecodeError:
                    continue
    return rows


def _defects(root: Path) -> list[dict]:
    return pq.read_table(root / "truth" / "defects.parquet").to_pylist()


def _defective_keys(root: Path, source: str, entity: str, kinds: set[str]) -> set[str]:
    return {
        d["record_key"]
        for d in _defects(root)
        if d["source"] == source and d["entity"] == entity and d["defect"] in kinds
    }


MALFORMED = {
    "malformed_date",
    "malformed_amount",
    "missing_required",
    "missing_identifier",
    "broken_json",
}


def test_same_arguments_give_identical_bytes(sample, tmp_path):
    _run(tmp_path)
    assert _digests(tmp_path) == _digests(sample)


def test_rerun_into_the_same_folders_replaces_previous_output(tmp_path):
    _run(tmp_path, customers=200, days=5)
    _run(tmp_path, customers=200, days=3, seed=2)
    days = {p.name for p in (tmp_path / "exports" / "crm").iterdir()}
    assert days == {(START + timedelta(days=d)).isoformat() for d in range(3)}
    again = tmp_path / "again"
    _run(again, customers=200, days=3, seed=2)
    assert _digests(tmp_path / "exports") == _digests(again / "exports")


def test_every_source_every_day_in_its_format_with_contract_columns(sample):
    expected_days = {(START + timedelta(days=d)).isoformat() for d in range(DAYS)}
    assert {(e.source, e.name) for e in ENTITIES} == set(FORMATS)
    for (source, entity), ext in FORMATS.items():
        columns = BY_SOURCE_ENTITY[(source, entity)].column_names
        files = sorted((sample / "exports" / source).glob(f"*/{entity}{ext}"))
        assert {f.parent.name for f in files} == expected_days, (source, entity)
        first = files[0]
        if ext == ".parquet":
            assert pq.read_schema(first).names == columns
        elif ext.startswith(".csv"):
            assert _text(first).splitlines()[0].split(",") == columns
        else:
            line = next(line for f in files for line in _text(f).splitlines())
            assert list(json.loads(line)) == columns
    written = {(p.parts[-3], p.name) for p in (sample / "exports").glob("*/*/*")}
    assert written == {(s, f"{e}{ext}") for (s, e), ext in FORMATS.items()}


def test_json_lines_parse_except_the_planted_broken_ones(sample):
    broken = 0
    for (source, entity), ext in FORMATS.items():
        if not ext.startswith(".jsonl"):
            continue
        for path in (sample / "exports" / source).glob(f"*/{entity}{ext}"):
            for line in _text(path).splitlines():
                try:
                    json.loads(line)
                except json.JSONDecodeError:
                    broken += 1
    planted = sum(1 for d in _defects(sample) if d["defect"] == "broken_json")
    assert broken == planted > 0


def test_truth_maps_every_record_key_in_the_exports(sample):
    mapped = defaultdict(set)
    for row in pq.read_table(sample / "truth" / "record_map.parquet").to_pylist():
        mapped[row["source"]].add(row["source_key"])
    checks = [
        ("crm", "customers", "crm_id", "crm"),
        ("shop", "orders", "order_id", "shop_order"),
        ("shop", "order_lines", "order_id", "shop_order"),
        ("pos", "receipts", "receipt_id", "pos_receipt"),
        ("pos", "receipt_lines", "receipt_id", "pos_receipt"),
        ("pos", "receipts", "loyalty_card_id", "loyalty_card"),
        ("web", "events", "event_id", "web_event"),
        ("web", "events", "anonymous_id", "web_cookie"),
        ("consent", "events", "consent_event_id", "consent_event"),
    ]
    for source, entity, column, truth_source in checks:
        keys = {r[column] for r in _rows(sample, source, entity) if r.get(column)}
        assert keys, (source, entity, column)
        assert keys <= mapped[truth_source], (source, entity, column)


def test_keys_are_unique_except_updates_and_planted_duplicates(sample):
    for source, entity in FORMATS:
        spec = BY_SOURCE_ENTITY[(source, entity)]
        if source == "catalog":
            continue
        rows = _rows(sample, source, entity)
        counts = Counter(tuple(r[c] for c in spec.key) + (r.get("updated_at"),) for r in rows)
        repeated = {k for k, n in counts.items() if n > 1 and all(k[:-1])}
        planted = _defective_keys(sample, source, entity, {"duplicate_row"})
        repeated_keys = {"|".join(str(v) for v in k[:-1]) for k in repeated}
        assert repeated_keys <= planted, (source, entity, sorted(repeated_keys - planted)[:5])


def test_order_lines_add_up_to_order_totals(sample):
    for head, lines, key, has_discount in (
        ("orders", "order_lines", "order_id", True),
        ("receipts", "receipt_lines", "receipt_id", False),
    ):
        source = "shop" if head == "orders" else "pos"
        bad = _defective_keys(sample, source, head, MALFORMED)
        bad_lines = {k.split("|")[0] for k in _defective_keys(sample, source, lines, MALFORMED)}
        totals, discounts = defaultdict(int), defaultdict(int)
        seen = set()
        for r in _rows(sample, source, lines):
            if (r[key], r["line_number"]) in seen or r[key] in bad_lines:
                continue  # a planted duplicate row, or an order with a malformed line
            seen.add((r[key], r["line_number"]))
            totals[r[key]] += int(r["quantity"]) * round(float(r["unit_price"]) * 100)
            if has_discount:
                discounts[r[key]] += round(float(r["discount_amount"]) * 100)
        checked = 0
        for r in _rows(sample, source, head):
            if r[key] in bad or r[key] in bad_lines or not r[key]:
                continue
            assert round(float(r["total_amount"]) * 100) == totals[r[key]], r
            if has_discount:
                assert round(float(r["discount_amount"]) * 100) == discounts[r[key]], r
            checked += 1
        assert checked > 100


def test_orders_name_a_customer_and_receipts_are_partly_anonymous(sample):
    bad = _defective_keys(sample, "shop", "orders", MALFORMED)
    for r in _rows(sample, "shop", "orders"):
        if r["order_id"] not in bad:
            assert r["customer_email"] or r["crm_id"], r
    receipts = _rows(sample, "pos", "receipts")
    anonymous = np.mean([not r["loyalty_card_id"] for r in receipts])
    assert 0.15 < anonymous < 0.45


def _timestamp(value: str | None) -> datetime | None:
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None
    except ValueError:
        return None


def test_web_identity_only_from_login_on_within_a_session(sample):
    sessions = defaultdict(list)
    opens = addressed = 0
    for r in _rows(sample, "web", "events"):
        if r["session_id"]:
            sessions[r["session_id"]].append(r)
        elif r["event_type"] == "email_open":
            # The e-mail service knows whom it mailed: the address, never the CRM id.
            assert r["crm_id"] is None
            opens += 1
            addressed += r["user_email"] is not None
        elif r["event_type"] != "login":
            assert r["user_email"] is None and r["crm_id"] is None
    assert opens > 50 and addressed > 0.9 * opens
    logins = 0
    # Planted malformed rows (broken JSON, missing id or unparseable time, quarantined by
    # landing) can hide a session's login: sessions around one are not judged.
    malformed = pq.read_table(sample / "truth" / "defects.parquet").to_pandas()
    malformed = malformed[
        (malformed["source"] == "web")
        & malformed["defect"].isin(["broken_json", "missing_required", "malformed_date"])
    ]
    bad_ids = np.sort(malformed["record_key"].to_numpy().astype(str))
    for events in sessions.values():
        ids = sorted(r["event_id"] or "" for r in events)
        around = np.searchsorted(bad_ids, ids[0]) != np.searchsorted(bad_ids, ids[-1], "right")
        if around or not all(r["event_id"] and _timestamp(r["event_at"]) for r in events):
            continue
        events.sort(key=lambda r: (r["event_at"], r["event_id"]))
        logged_in = False
        for r in events:
            logged_in |= r["event_type"] == "login"
            if r["user_email"] or r["crm_id"]:
                assert logged_in, r
        logins += logged_in
    assert logins > 50


def test_defect_rates_match_the_configuration(noisy):
    root, cfg = noisy
    defects = Counter((d["source"], d["entity"], d["defect"]) for d in _defects(root))
    rows = {}
    for source, entity in FORMATS:
        if source != "catalog":
            rows[(source, entity)] = sum(
                len(_text(p).splitlines())
                - (0 if FORMATS[(source, entity)].startswith(".jsonl") else 1)
                for p in (root / "exports" / source).glob(f"*/{entity}*")
            )
    for key, n in rows.items():
        duplicated = defects[(*key, "duplicate_row")]
        original = n - duplicated
        malformed = sum(defects[(*key, k)] for k in MALFORMED)
        assert malformed == pytest.approx(
            cfg.malformed_rate * original, abs=4 * np.sqrt(cfg.malformed_rate * original) + 2
        ), key
        assert duplicated == pytest.approx(
            cfg.duplicate_row_rate * original,
            abs=4 * np.sqrt(cfg.duplicate_row_rate * original) + 2,
        ), key
    in_period = len(
        {
            r["order_id"]
            for r in _rows(root, "shop", "orders")
            if START.isoformat() <= r["ordered_at"] < "2100"
        }
    )
    expected = cfg.late_order_rate * in_period
    late = defects[("shop", "orders", "late_arrival")]
    assert late == pytest.approx(expected, abs=4 * np.sqrt(expected) + 2)
    consent = _rows(root, "consent", "events")
    unknown = sum(1 for r in consent if r["channel"] not in ("email", "sms", "push", "ads"))
    assert unknown >= defects[("consent", "events", "unknown_channel")] > 0


def test_planted_duplicates_and_late_orders_are_where_the_truth_says(noisy):
    root, _ = noisy
    orders = _rows(root, "shop", "orders")
    late = {
        d["record_key"]: d["delivery_date"] for d in _defects(root) if d["defect"] == "late_arrival"
    }
    for r in orders:
        if r["order_id"] in late and r["status"] == "completed":
            assert r["_delivered"] == late[r["order_id"]].isoformat()
            assert r["ordered_at"][:10] < r["_delivered"]
    lines = Counter(tuple(sorted(r.items())) for r in _rows(root, "shop", "orders"))
    planted = _defective_keys(root, "shop", "orders", {"duplicate_row"})
    assert {dict(k)["order_id"] for k, n in lines.items() if n > 1} <= planted


def test_people_who_dropped_out_fade_from_the_web(sample):
    persons = {
        p["person_id"]: p for p in pq.read_table(sample / "truth" / "persons.parquet").to_pylist()
    }
    event_person = {
        r["source_key"]: r["person_id"]
        for r in pq.read_table(
            sample / "truth" / "record_map.parquet", filters=[("source", "=", "web_event")]
        ).to_pylist()
    }
    late, total = 0, 0
    for r in _rows(sample, "web", "events"):
        if not r["event_id"] or not r["event_at"] or r["event_at"][0] != "2":
            continue  # a planted malformed row
        person = persons[event_person[r["event_id"]]]
        total += 1
        if person["dropout_at"] is not None:
            at = datetime.fromisoformat(r["event_at"].replace("Z", "+00:00"))
            late += at > person["dropout_at"] + timedelta(days=60)
    assert total > 1000
    assert late / total < 0.005


def test_identity_noise_and_test_accounts_are_present(sample):
    crm = _rows(sample, "crm", "customers")
    emails = [r["email"] for r in crm if r["email"]]
    assert any(e.endswith(("@example.com", "@example.org", "test.example.com")) for e in emails)
    assert any(r["is_test_account"] == "true" for r in crm)
    assert any(not r["email"] and not r["phone"] for r in crm)
    phones = [r["phone"] for r in crm if r["phone"]]
    assert any(p.startswith("+") for p in phones) and any(p.startswith("00") for p in phones)
    assert any("/" in p for p in phones)
    updated = Counter(r["crm_id"] for r in crm if r["updated_at"] != r["created_at"])
    assert updated, "CRM updates are re-delivered"
    relations = pq.read_table(sample / "truth" / "relations.parquet").to_pylist()
    kinds = Counter(r["relation"] for r in relations)
    assert kinds["couple"] > 0 and kinds["business"] > 0
    assert any(r["shares_email"] for r in relations if r["relation"] == "couple")
    roles = Counter(
        r["role"]
        for r in pq.read_table(
            sample / "truth" / "record_map.parquet", columns=["role"]
        ).to_pylist()
    )
    for role in ("duplicate", "married_name", "second_device", "shared_family_computer"):
        assert roles[role] > 0, role
    orders = _rows(sample, "shop", "orders")
    typed = [r["customer_email"] for r in orders if r["customer_email"]]
    assert any(e != e.strip() for e in typed) and any(e != e.lower() for e in typed)
    assert any("+" in e.split("@")[0] for e in typed)
    currencies = Counter(r["currency"] for r in orders)
    assert len(currencies) >= 3


def test_churn_truth_and_purchase_optimum(sample):
    truth = sample / "truth"
    snapshot = START + timedelta(days=DAYS - 1)
    labels = churn_truth(truth, snapshot, 90)
    optimum = purchase_optimum(truth, snapshot, 90)
    assert list(labels.columns) == ["person_id", "churned", "oracle_probability", "is_known"]
    assert set(optimum["person_id"]) == set(labels["person_id"])
    assert labels["oracle_probability"].between(0, 1).all()
    assert optimum["probability_no_purchase"].between(0, 1).all()
    assert optimum["p_alive"].between(0, 1).all()
    merged = labels.merge(optimum, on="person_id")
    # Both are calibrated probabilities of the same event.
    assert merged["probability_no_purchase"].mean() == pytest.approx(
        merged["churned"].mean(), abs=0.04
    )
    assert merged["oracle_probability"].mean() == pytest.approx(merged["churned"].mean(), abs=0.04)
    persons = pq.read_table(truth / "persons.parquet").to_pandas().set_index("person_id")
    dead = persons.loc[labels["person_id"], "dropout_date"].notna().to_numpy()
    assert (labels.loc[dead, "oracle_probability"] == 1.0).all()
    assert labels.loc[dead, "churned"].all()
    with pytest.raises(ValueError):
        churn_truth(truth, snapshot + timedelta(days=1), 90)


def test_bgnbd_formulas_match_the_published_example():
    # Fader, Hardie & Lee (2005), CDNOW: r=0.243, alpha=4.414, a=0.793, b=2.426; a customer
    # with x=2, t_x=30.43, T=38.86 (weeks) is expected to buy 1.226 times in the next 39 weeks.
    theta = (0.243, 4.414, 0.793, 2.426)
    expected = bgnbd_expected_purchases(
        39.0, np.array([2.0]), np.array([30.43]), np.array([38.86]), *theta
    )
    assert expected[0] == pytest.approx(1.226, abs=0.002)
    assert bgnbd_p_alive(np.array([0.0]), np.array([0.0]), np.array([50.0]), *theta)[0] == 1.0
    never = bgnbd_p_no_purchase(0.0, np.array([3.0]), np.array([10.0]), np.array([40.0]), *theta)
    assert never[0] == pytest.approx(1.0)
