"""Activation exports on the real consent SQL and exporter: layout, hashing, controls, diffs."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest

from journeys.activation import ActivationError, export_audiences
from journeys.warehouse import connect
from tests.activation.conftest import RUN_DATE

NEXT_DAY = RUN_DATE + timedelta(days=1)


def _people(n: int, segment=lambda i: "Loyal", consent=("email", "sms", "push", "ads")) -> dict:
    """n customers, each with one CRM record, an e-mail, a phone and opt-ins on `consent`."""
    rows: dict[str, list[dict]] = {k: [] for k in ("crm", "links", "dim", "seg", "events")}
    for i in range(n):
        customer, crm = f"C{i:05d}", f"R{i:05d}"
        email, phone = f"user{i}@example.com", f"+491510{i:07d}"
        rows["links"].append({"customer_id": customer, "source": "crm", "source_key": crm})
        rows["crm"].append({"crm_id": crm, "email": email, "phone": phone})
        rows["dim"].append(
            {
                "customer_id": customer,
                "email": f"  User{i}@Example.COM ",  # as delivered: normalised before hashing
                "phone": phone,
                "is_test_account": False,
            }
        )
        rows["seg"].append(
            {
                "customer_id": customer,
                "snapshot_date": RUN_DATE,
                "segment_id": 1,
                "segment_name": segment(i),
            }
        )
        for channel in consent:
            rows["events"].append(
                {
                    "consent_event_id": f"E{i:05d}{channel}",
                    "channel": channel,
                    "status": "opt_in",
                    "event_at": pd.Timestamp("2025-01-01"),
                    "crm_id": crm,
                    "consent_source": "signup",
                }
            )
    return {
        "staging.stg_crm__customers": rows["crm"],
        "intermediate.int_identifiers_linked": rows["links"],
        "marts.dim_customers": rows["dim"],
        "marts.customer_segments": rows["seg"],
        "staging.stg_consent__events": rows["events"],
    }


def _rules(customers: range, segment: str, channel: str, priority: int = 1) -> list[dict]:
    return [
        {
            "customer_id": f"C{i:05d}",
            "snapshot_date": RUN_DATE,
            "segment": segment,
            "channel": channel,
            "priority": priority,
            "description": f"{segment} on {channel}",
        }
        for i in customers
    ]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_without_rule_segments_the_model_segments_go_to_the_default_channel(
    activation_warehouse, tmp_path
) -> None:
    activation_warehouse.load(_people(30, segment=lambda i: "At risk" if i % 3 else "Loyal"))
    result = activation_warehouse.export(activation=tmp_path / "out")
    assert "not built yet" in result["rule_segments"]
    folder = Path(result["folder"])
    assert folder == tmp_path / "out" / RUN_DATE.isoformat()
    assert sorted(p.name for p in folder.iterdir()) == ["email"]
    audiences = {a["audience"]: a for a in result["audiences"]}
    assert set(audiences) == {"model_at_risk", "model_loyal"}
    assert audiences["model_loyal"]["members"] == 10
    assert audiences["model_at_risk"]["members"] == 20

    sms = activation_warehouse.export(activation=tmp_path / "sms", activation_default_channel="sms")
    assert {a["channel"] for a in sms["audiences"]} == {"sms"}
    with pytest.raises(ActivationError, match="JOURNEYS_ACTIVATION_DEFAULT_CHANNEL='fax'"):
        activation_warehouse.export(activation=tmp_path / "x", activation_default_channel="fax")


def test_files_manifest_and_hashes_per_channel(activation_warehouse, tmp_path) -> None:
    activation_warehouse.load(
        _people(40),
        _rules(range(0, 20), "lookalike", "ads") + _rules(range(10, 30), "flash sale!", "sms"),
    )
    result = activation_warehouse.export(activation=tmp_path, control_group_share=0.0)
    assert result["rule_segments"] == "included"
    folder = Path(result["folder"])
    ads = pd.read_parquet(folder / "ads" / "lookalike.parquet")
    assert list(ads.columns) == [
        "customer_id",
        "snapshot_date",
        "email_sha256",
        "phone_sha256",
        "audience",
    ]
    assert len(ads) == 20
    first = ads.set_index("customer_id").loc["C00003"]
    assert first["email_sha256"] == hashlib.sha256(b"user3@example.com").hexdigest()
    assert first["phone_sha256"] == hashlib.sha256(b"+4915100000003").hexdigest()
    for path in (folder / "ads").iterdir():
        if path.suffix == ".parquet":
            frame = pd.read_parquet(path)
            assert not frame.map(lambda v: isinstance(v, str) and "@" in v).any().any(), path
        else:
            assert "@" not in path.read_text(), path

    sms = pd.read_csv(folder / "sms" / "flash_sale.csv", dtype=str)
    assert list(sms.columns) == ["customer_id", "snapshot_date", "phone", "audience"]
    assert sms["customer_id"].tolist() == [f"C{i:05d}" for i in range(10, 30)]
    email = pd.read_csv(folder / "email" / "model_loyal.csv", dtype=str)
    assert email.loc[0, "email"] == "user0@example.com"

    manifest = json.loads((folder / "ads" / "lookalike.manifest.json").read_text())
    assert manifest["files"]["csv"]["sha256"] == _sha256(folder / "ads" / "lookalike.csv")
    assert manifest["files"]["parquet"]["sha256"] == _sha256(folder / "ads" / "lookalike.parquet")
    assert manifest["counts"]["exported"] == manifest["files"]["rows"] == 20
    assert manifest["snapshot_date"] == RUN_DATE.isoformat()
    assert "opt_in" in manifest["consent_rule"]
    assert manifest["diff"] | {"files": None} == {
        "since": None,
        "adds": 20,
        "removes": 0,
        "files": None,
    }


def test_consent_is_checked_per_channel_and_contact(activation_warehouse, tmp_path) -> None:
    rows = _people(10, consent=("email",))  # nobody agreed to sms
    rows["marts.dim_customers"][0]["email"] = None  # nothing to e-mail C00000 at
    rows["marts.dim_customers"][1]["is_test_account"] = True
    rows["staging.stg_consent__events"][2] |= {"status": "opt_out"}  # C00002 withdrew
    activation_warehouse.load(rows, _rules(range(10), "flash", "sms"))
    result = activation_warehouse.export(activation=tmp_path, control_group_share=0.0)
    audiences = {a["audience"]: a for a in result["audiences"]}
    flash = audiences["flash"]
    # Test accounts are never members; nobody agreed to sms.
    assert (flash["members"], flash["exported"], flash["no_consent"]) == (9, 0, 9)
    loyal = audiences["model_loyal"]
    assert (loyal["exported"], loyal["no_consent"], loyal["no_contact"]) == (7, 1, 1)
    consent = dict(
        activation_warehouse.query(
            "select channel, consent_status from marts.customer_consent where customer_id = ?",
            ["C00002"],
        )
    )
    assert consent == {"email": "opt_out", "sms": "none", "push": "none", "ads": "none"}


def test_a_customer_gets_only_the_highest_priority_rule_audience_of_a_channel(
    activation_warehouse, tmp_path
) -> None:
    activation_warehouse.load(
        _people(20),
        _rules(range(0, 10), "winback", "email", 1) + _rules(range(20), "vip", "email", 2),
    )
    result = activation_warehouse.export(activation=tmp_path, control_group_share=0.0)
    audiences = {a["audience"]: a for a in result["audiences"]}
    assert (audiences["winback"]["exported"], audiences["winback"]["outranked"]) == (10, 0)
    assert (audiences["vip"]["exported"], audiences["vip"]["outranked"]) == (10, 10)
    # Model segments are a separate kind: everybody stays in their model audience.
    assert audiences["model_loyal"]["exported"] == 20


def test_control_groups_are_deterministic_held_out_and_recorded(
    activation_warehouse, tmp_path
) -> None:
    activation_warehouse.load(_people(2000), _rules(range(1000), "winback", "email"))
    first = activation_warehouse.export(activation=tmp_path / "a")
    audiences = {a["audience"]: a for a in first["audiences"]}
    loyal = audiences["model_loyal"]
    assert 0.07 < loyal["control"] / loyal["members"] < 0.13  # default share 10 %
    assert loyal["control"] + loyal["exported"] == loyal["members"]
    exported = set(
        pd.read_parquet(Path(first["folder"]) / "email" / "model_loyal.parquet")["customer_id"]
    )
    control = {
        r[0]
        for r in activation_warehouse.query(
            "select customer_id from activation.control_group_members "
            "where audience = 'model_loyal'"
        )
    }
    assert len(control) == loyal["control"] and not control & exported
    manifest = json.loads(
        (Path(first["folder"]) / "email" / "model_loyal.manifest.json").read_text()
    )
    assert manifest["counts"]["control"] == loyal["control"]
    assert manifest["control_group"]["share"] == 0.1
    # Per audience: being in control for one audience says nothing about another.
    winback_control = {
        r[0]
        for r in activation_warehouse.query(
            "select customer_id from activation.control_group_members where audience = 'winback'"
        )
    }
    assert (
        winback_control - control and control & {f"C{i:05d}" for i in range(1000)} - winback_control
    )

    # Next day, half the people gone from the audience: whoever remains keeps their side.
    rows = _people(2000)
    rows["marts.customer_segments"] = [
        r | {"snapshot_date": NEXT_DAY} for r in rows["marts.customer_segments"][::2]
    ]
    activation_warehouse.load(rows)
    second = activation_warehouse.export(NEXT_DAY, activation=tmp_path / "a")
    later = {
        r[0]
        for r in activation_warehouse.query(
            "select customer_id from activation.control_group_members "
            "where audience = 'model_loyal' and run_date = ?",
            [NEXT_DAY],
        )
    }
    assert later == {c for c in control if int(c[1:]) % 2 == 0}
    assert second["audiences"][0]["control"] == len(later)


def test_diffs_since_the_last_successful_export_and_idempotent_reruns(
    activation_warehouse, tmp_path
) -> None:
    out = tmp_path / "out"
    activation_warehouse.load(_people(30), _rules(range(0, 20), "lookalike", "ads"))
    activation_warehouse.export(activation=out, control_group_share=0.0)

    # A crashed run of the next day leaves nothing behind ...
    rows = _people(30)
    rows["marts.customer_segments"] = [
        r | {"snapshot_date": NEXT_DAY} for r in rows["marts.customer_segments"]
    ]
    rules = [r | {"snapshot_date": NEXT_DAY} for r in _rules(range(10, 30), "lookalike", "ads")]
    activation_warehouse.load(rows, rules)
    settings = replace(activation_warehouse.settings, activation=out)

    def crash(folder: Path) -> None:
        (folder / "half-written.csv").write_text("customer_id\n")
        raise OSError("disk full")

    with connect(settings) as con, pytest.raises(OSError, match="disk full"):
        export_audiences(con, settings, NEXT_DAY, extra_files=crash)
    assert sorted(p.name for p in out.iterdir()) == [RUN_DATE.isoformat()]

    # ... so the next day's diff is against the first day's export.
    result = activation_warehouse.export(NEXT_DAY, activation=out, control_group_share=0.0)
    folder = Path(result["folder"])
    diff = pd.read_parquet(folder / "ads" / "lookalike.diff.parquet")
    assert sorted(diff.loc[diff["change"] == "add", "customer_id"]) == [
        f"C{i:05d}" for i in range(20, 30)
    ]
    removes = diff[diff["change"] == "remove"]
    assert sorted(removes["customer_id"]) == [f"C{i:05d}" for i in range(0, 10)]
    # Removes carry the hashes the platform needs to drop them.
    assert removes.set_index("customer_id").loc["C00004", "email_sha256"] == (
        hashlib.sha256(b"user4@example.com").hexdigest()
    )
    manifest = json.loads((folder / "ads" / "lookalike.manifest.json").read_text())
    assert manifest["diff"]["since"] == RUN_DATE.isoformat()
    assert (manifest["diff"]["adds"], manifest["diff"]["removes"]) == (10, 10)

    # Re-running the day rebuilds the same files, diffs included.
    checksums = {p.name: _sha256(p) for p in folder.rglob("*") if p.suffix in (".csv", ".parquet")}
    again = activation_warehouse.export(NEXT_DAY, activation=out, control_group_share=0.0)
    assert {
        p.name: _sha256(p)
        for p in Path(again["folder"]).rglob("*")
        if p.suffix in (".csv", ".parquet")
    } == checksums
    assert sorted(p.name for p in out.iterdir()) == [RUN_DATE.isoformat(), NEXT_DAY.isoformat()]
    logged = activation_warehouse.query(
        "select run_date, count(*) from activation.exports group by 1 order by 1"
    )
    assert logged == [(RUN_DATE, 2), (NEXT_DAY, 2)]


def test_rule_segments_with_an_unknown_channel_are_refused(activation_warehouse, tmp_path) -> None:
    activation_warehouse.load(_people(3), _rules(range(3), "fax_blast", "fax"))
    with pytest.raises(ActivationError, match="fax_blast: 'fax'"):
        activation_warehouse.export(activation=tmp_path / "out")
    assert not (tmp_path / "out").exists()
