"""Property: no customer without valid consent for a channel reaches that channel's export.

Hypothesis draws people with merged CRM records (shared e-mails and phones included), guest
orders, test accounts, segment memberships and a consent history with ties in time, given through
any identifier (or one nobody has). The warehouse runs the real dbt consent models and the real
exporter; the files on disk are then checked against the rule stated plainly (`_consented`): a
customer may get a channel only when, among the channel's events that name any of their
identifiers, some opt-in that is theirs (it names them alone, or their CRM id) has no opt-out
at the same time or later.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.activation.conftest import RUN_DATE

CHANNELS = ("email", "sms", "push", "ads")
EMAILS = [f"person{i}@example.com" for i in range(5)]
PHONES = [f"+4915100000{i:02d}" for i in range(4)]
# Few distinct instants, so that opt-ins and opt-outs at the same time are common.
INSTANTS = [datetime(2025, 1, 1) + timedelta(hours=h) for h in range(4)]
RULE_AUDIENCES = [  # segment, channel, priority
    ("winback", "email", 1),
    ("vip_email", "email", 2),
    ("flash_sms", "sms", 1),
    ("app_nudge", "push", 1),
    ("lookalike", "ads", 1),
]

record = st.fixed_dictionaries(
    {"email": st.none() | st.sampled_from(EMAILS), "phone": st.none() | st.sampled_from(PHONES)}
)
person = st.fixed_dictionaries(
    {
        "records": st.lists(record, min_size=0, max_size=3),  # 2+ records = merged identities
        "order_emails": st.lists(st.sampled_from(EMAILS), max_size=2),
        "is_test_account": st.sampled_from([False, False, False, True]),
        "model_segment": st.sampled_from(["Loyal", "At risk"]),
        "rule_segments": st.lists(st.sampled_from(range(len(RULE_AUDIENCES))), unique=True),
    }
)
event = st.fixed_dictionaries(
    {
        "channel": st.sampled_from(CHANNELS),
        "status": st.sampled_from(["opt_in", "opt_out"]),
        "at": st.sampled_from(INSTANTS),
        "crm_person": st.none() | st.integers(0, 5),  # may name a person that does not exist
        "crm_record": st.integers(0, 2),
        "email": st.none() | st.sampled_from(EMAILS),
        "phone": st.none() | st.sampled_from(PHONES),
    }
).filter(lambda e: e["crm_person"] is not None or e["email"] or e["phone"])


def _build(people: list[dict], events: list[dict]) -> tuple[dict, list[dict], dict]:
    """Upstream rows for the warehouse, and each person's identifiers for the oracle."""
    rows: dict[str, list[dict]] = defaultdict(list)
    rules = []
    identifiers = {}
    for p, who in enumerate(people):
        customer = f"C{p}"
        keys = set()
        for r, rec in enumerate(who["records"]):
            crm_id = f"R{p}_{r}"
            rows["intermediate.int_identifiers_linked"].append(
                {"customer_id": customer, "source": "crm", "source_key": crm_id}
            )
            rows["staging.stg_crm__customers"].append({"crm_id": crm_id, **rec})
            keys |= {("crm_id", crm_id), ("email", rec["email"]), ("phone", rec["phone"])}
        for o, email in enumerate(who["order_emails"]):
            order = f"O{p}_{o}"
            rows["intermediate.int_identifiers_linked"].append(
                {"customer_id": customer, "source": "shop_order", "source_key": order}
            )
            rows["staging.stg_shop__orders"].append({"order_id": order, "customer_email": email})
            keys.add(("email", email))
        identifiers[customer] = {k for k in keys if k[1] is not None}
        golden = next(iter(who["records"]), {"email": None, "phone": None})
        rows["marts.dim_customers"].append(
            {
                "customer_id": customer,
                "email": golden["email"] or next(iter(who["order_emails"]), None),
                "phone": golden["phone"],
                "is_test_account": who["is_test_account"],
            }
        )
        rows["marts.customer_segments"].append(
            {
                "customer_id": customer,
                "snapshot_date": RUN_DATE,
                "segment_id": 1,
                "segment_name": who["model_segment"],
            }
        )
        for index in who["rule_segments"]:
            segment, channel, priority = RULE_AUDIENCES[index]
            rules.append(
                {
                    "customer_id": customer,
                    "snapshot_date": RUN_DATE,
                    "segment": segment,
                    "channel": channel,
                    "priority": priority,
                    "description": segment,
                }
            )
    for e, ev in enumerate(events):
        crm = None if ev["crm_person"] is None else f"R{ev['crm_person']}_{ev['crm_record']}"
        rows["staging.stg_consent__events"].append(
            {
                "consent_event_id": f"E{e:03d}",
                "channel": ev["channel"],
                "status": ev["status"],
                "event_at": ev["at"],
                "email": ev["email"],
                "crm_id": crm,
                "phone": ev["phone"],
                "consent_source": "test",
            }
        )
    return rows, rules, identifiers


def _consented(customer: str, identifiers: dict, channel: str, events: list[dict]) -> bool:
    """The rule, stated plainly.

    An event is the customer's when it carries one of their identifiers. Opt-outs count for
    everyone they name; an opt-in counts only when it names this customer alone or carries
    their CRM id. Consent = such an opt-in with no opt-out of theirs at the same time or later.
    """

    def keys(e: dict) -> set:
        return {("crm_id", e["crm_id"]), ("email", e["email"]), ("phone", e["phone"])}

    mine = [e for e in events if e["channel"] == channel and keys(e) & identifiers[customer]]
    opt_ins = [
        e
        for e in mine
        if e["status"] == "opt_in"
        and (
            ("crm_id", e["crm_id"]) in identifiers[customer]
            or sum(bool(keys(e) & held) for held in identifiers.values()) == 1
        )
    ]
    return any(
        not any(o["status"] == "opt_out" and o["event_at"] >= e["event_at"] for o in mine)
        for e in opt_ins
    )


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    people=st.lists(person, min_size=1, max_size=6),
    events=st.lists(event, max_size=14),
    with_rules=st.booleans(),
)
def test_no_customer_without_consent_reaches_a_channel(
    activation_warehouse, tmp_path_factory, people, events, with_rules
) -> None:
    rows, rules, identifiers = _build(people, events)
    activation_warehouse.load(rows, rules if with_rules else None)
    result = activation_warehouse.export(activation=tmp_path_factory.mktemp("activation"))
    folder = result["folder"]
    consent_events = rows["staging.stg_consent__events"]
    test_accounts = {r["customer_id"] for r in rows["marts.dim_customers"] if r["is_test_account"]}
    golden = {r["customer_id"]: r for r in rows["marts.dim_customers"]}

    members = defaultdict(set)  # channel -> customers in any of its audiences
    for r in rows["marts.customer_segments"]:
        members["email"].add(r["customer_id"])  # model segments go to the default channel
    for r in rules if with_rules else []:
        members[r["channel"]].add(r["customer_id"])

    for channel in CHANNELS:
        exported = set()
        for path in Path(folder, channel).glob("*.parquet"):
            if not path.name.endswith(".diff.parquet"):
                exported |= set(pd.read_parquet(path)["customer_id"])
        control = {
            row[0]
            for row in activation_warehouse.query(
                "select customer_id from activation.control_group_members where channel = ?",
                [channel],
            )
        }
        for customer in exported:
            assert customer not in test_accounts, (channel, customer)
            assert _consented(customer, identifiers, channel, consent_events), (channel, customer)
        assert not exported & control, channel
        # And nobody with consent and a contact is left out: the check is not vacuous.
        reachable = {
            c
            for c in members[channel]
            if channel == "push"
            or (channel in ("email", "ads") and golden[c]["email"])
            or (channel in ("sms", "ads") and golden[c]["phone"])
        }
        expected = {
            c
            for c in reachable - test_accounts
            if _consented(c, identifiers, channel, consent_events)
        }
        assert exported | control == expected, channel
    _assert_no_raw_email_in_ads(folder)


def _assert_no_raw_email_in_ads(folder: str) -> None:
    for path in Path(folder, "ads").glob("*"):
        if path.suffix in (".csv", ".json"):
            assert "@" not in path.read_text(), path
        elif path.suffix == ".parquet":
            frame = pd.read_parquet(path)
            assert not frame.map(lambda v: isinstance(v, str) and "@" in v).any().any(), path
