"""Identity resolution rule by rule, on crafted staging tables (no dbt needed).

Each scenario sits in a background population of distinct people, so Splink has something
to estimate its parameters from, as it would on a real customer file.
"""

from __future__ import annotations

import random
from datetime import date, datetime
from pathlib import Path

import pandas as pd
import pytest

from journeys.identity.resolve import resolve_identities
from journeys.settings import Settings, get_settings
from journeys.warehouse import connect

RUN = date(2025, 6, 30)
FIRST = [
    "lena",
    "jonas",
    "marie",
    "paul",
    "sophie",
    "felix",
    "emma",
    "lukas",
    "mia",
    "noah",
    "hannah",
    "elias",
    "lea",
    "finn",
    "clara",
    "ben",
    "ida",
    "theo",
    "greta",
    "oskar",
]
LAST = [
    "meyer",
    "wagner",
    "becker",
    "hoffmann",
    "koch",
    "richter",
    "klein",
    "wolf",
    "neumann",
    "schwarz",
    "zimmermann",
    "braun",
    "krueger",
    "hofmann",
    "hartmann",
    "lange",
    "werner",
]

CRM_COLUMNS = [
    "crm_id",
    "first_name",
    "last_name",
    "birth_date",
    "email",
    "phone",
    "loyalty_card_id",
    "street",
    "postcode",
    "city",
    "created_at",
    "updated_at",
    "is_test_account",
]


def background(n: int = 400, with_contacts: bool = True) -> list[dict]:
    rng = random.Random(11)
    people = []
    for i in range(n):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        people.append(
            {
                "crm_id": f"BG{i:04d}",
                "first_name": first.title(),
                "last_name": last.title(),
                "birth_date": date(
                    1950 + rng.randrange(50), 1 + rng.randrange(12), 1 + rng.randrange(28)
                ),
                "email": f"{first}.{last}{i}@example.net" if with_contacts else None,
                "phone": f"+4915{i:08d}" if with_contacts else None,
                "street": f"{rng.choice(LAST).title()}str. {1 + rng.randrange(90)}",
                "postcode": f"{10000 + rng.randrange(80000)}",
                "city": "Berlin",
            }
        )
    return people


def build(
    settings: Settings,
    crm: list[dict],
    orders=(),
    receipts=(),
    events=(),
    with_contacts: bool = True,
) -> None:
    """Write staging tables shaped like the dbt staging models' output."""
    rows = background(with_contacts=with_contacts) + list(crm)
    frame = pd.DataFrame([{c: r.get(c) for c in CRM_COLUMNS} for r in rows])
    frame["created_at"] = frame["created_at"].fillna(datetime(2024, 1, 1))
    frame["updated_at"] = frame["updated_at"].fillna(datetime(2024, 1, 1))
    frame["is_test_account"] = frame["is_test_account"].fillna(False).astype(bool)
    for column in (
        "first_name",
        "last_name",
        "email",
        "phone",
        "loyalty_card_id",
        "street",
        "postcode",
        "city",
    ):
        frame[column] = frame[column].astype("object")
    tables = {
        "stg_crm__customers": frame,
        "stg_shop__orders": pd.DataFrame(
            list(orders), columns=["order_id", "crm_id", "customer_email", "ordered_at"]
        ).astype("object"),
        "stg_pos__receipts": pd.DataFrame(
            list(receipts), columns=["receipt_id", "loyalty_card_id", "purchased_at"]
        ).astype("object"),
        "stg_web__events": pd.DataFrame(
            list(events), columns=["anonymous_id", "event_at", "user_email", "crm_id"]
        ).astype("object"),
    }
    with connect(settings) as con:
        con.execute("create schema if not exists staging")
        for name, table in tables.items():
            con.register("frame", table)
            con.execute(f"create or replace table staging.{name} as select * from frame")
            con.unregister("frame")
        con.execute("alter table staging.stg_crm__customers alter birth_date type date")
        con.execute("alter table staging.stg_shop__orders alter ordered_at type timestamp")
        con.execute("alter table staging.stg_pos__receipts alter purchased_at type timestamp")
        con.execute("alter table staging.stg_web__events alter event_at type timestamp")


def customer_of(settings: Settings, source: str, key: str) -> str:
    with connect(settings) as con:
        rows = con.execute(
            "select customer_id from identity.record_links where source = ? and source_key = ?",
            [source, key],
        ).fetchall()
    assert len(rows) == 1, (source, key, rows)
    return rows[0][0]


def linked_by(settings: Settings, source: str, key: str) -> str:
    with connect(settings) as con:
        return con.execute(
            "select linked_by from identity.record_links where source = ? and source_key = ?",
            [source, key],
        ).fetchall()[0][0]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return get_settings({"JOURNEYS_HOME": str(tmp_path)})


def person(crm_id: str, first: str, last: str, born: date | None, **more) -> dict:
    return {
        "crm_id": crm_id,
        "first_name": first,
        "last_name": last,
        "birth_date": born,
        "street": "Lindenallee 4",
        "postcode": "50667",
        "city": "Koeln",
        **more,
    }


def test_email_aliases_phone_card_and_login_link_one_person(settings: Settings) -> None:
    born = date(1985, 3, 14)
    build(
        settings,
        [
            person(
                "A1",
                "Julia",
                "Vogel",
                born,
                email="julia.vogel@gmail.com",
                phone="+491701111111",
                loyalty_card_id="CARD-1",
            ),
            person("A2", "Julia", "Vogel", born, email="JuliaVogel+shop@googlemail.com"),
        ],
        orders=[("O1", None, "julia.vogel+news@gmail.com", datetime(2025, 5, 1))],
        receipts=[("R1", "CARD-1", datetime(2025, 5, 2))],
        events=[("cookie-1", datetime(2025, 5, 3), None, "A2")],
    )
    resolve_identities(settings, RUN)
    julia = customer_of(settings, "crm", "A1")
    assert customer_of(settings, "crm", "A2") == julia  # gmail dots, +tags, googlemail
    assert customer_of(settings, "shop_order", "O1") == julia
    assert customer_of(settings, "pos_receipt", "R1") == julia
    assert customer_of(settings, "web_cookie", "cookie-1") == julia
    assert linked_by(settings, "web_cookie", "cookie-1") == "login"


def test_household_email_links_activity_never_people(settings: Settings) -> None:
    build(
        settings,
        [
            person(
                "H1",
                "Daniel",
                "Schwarz",
                date(1980, 1, 2),
                email="schwarz.family@web.de",
                created_at=datetime(2023, 1, 1),
            ),
            person(
                "H2",
                "Maria",
                "Schwarz",
                date(1982, 5, 6),
                email="schwarz.family@web.de",
                created_at=datetime(2023, 6, 1),
            ),
        ],
        orders=[
            ("O1", None, "schwarz.family@web.de", datetime(2025, 5, 1)),
            ("O2", "H2", "schwarz.family@web.de", datetime(2025, 5, 2)),
        ],
    )
    resolve_identities(settings, RUN)
    daniel, maria = customer_of(settings, "crm", "H1"), customer_of(settings, "crm", "H2")
    assert daniel != maria
    # An order carrying only the shared address goes to who registered it first; one that
    # names a CRM record goes to that person.
    assert customer_of(settings, "shop_order", "O1") == daniel
    assert linked_by(settings, "shop_order", "O1") == "shared_email_first_holder"
    assert customer_of(settings, "shop_order", "O2") == maria
    with connect(settings) as con:
        refused = con.execute(
            "select shared_identifier, reason from identity.refused_merges "
            "where left_crm_id = 'H1' and right_crm_id = 'H2'"
        ).fetchall()
    assert ("email", "different birth dates") in refused


def test_a_role_address_is_never_an_identity_key(settings: Settings) -> None:
    build(
        settings,
        [
            person(
                "B1",
                "Barbara",
                "Schulz",
                date(1974, 9, 1),
                email="team@kaiser-medien.de",
                phone="+49221555000",
            ),
            person(
                "B2",
                "Michael",
                "Kaiser",
                date(1987, 7, 24),
                email="team@kaiser-medien.de",
                phone="+49221555000",
            ),
            person(
                "B3", "Nadine", "Simon", None, email="team@kaiser-medien.de", phone="+49221555000"
            ),
        ],
        orders=[("O1", None, "team@kaiser-medien.de", datetime(2025, 5, 1))],
    )
    resolve_identities(settings, RUN)
    colleagues = {customer_of(settings, "crm", k) for k in ("B1", "B2", "B3")}
    assert len(colleagues) == 3  # not even Nadine, who has no birth date, bridges them
    order_customer = customer_of(settings, "shop_order", "O1")
    assert order_customer not in colleagues
    assert linked_by(settings, "shop_order", "O1") == "role_mailbox"


def test_surname_change_with_new_email_is_the_same_person(settings: Settings) -> None:
    born = date(1991, 11, 23)
    build(
        settings,
        [
            person(
                "M1", "Katharina", "Lorenz", born, email="k.lorenz@gmx.de", phone="+491709876543"
            ),
            person(
                "M2",
                "Katharina",
                "Brandt",
                born,
                email="katharina.brandt@outlook.com",
                phone="+491709876543",
                street="Rosenweg 9",
                postcode="80331",
                city="Muenchen",
            ),
        ],
    )
    resolve_identities(settings, RUN)
    assert customer_of(settings, "crm", "M1") == customer_of(settings, "crm", "M2")


def test_names_and_addresses_only_file_is_matched_probabilistically(settings: Settings) -> None:
    born = date(1969, 4, 30)
    build(
        settings,
        [
            person("N1", "Wilhelm", "Hartmannsberger", born, street="Am Hang 12", postcode="01067"),
            person("N2", "Wilhelm", "Hartmansberger", born, street="Am Hang 12", postcode="01067"),
            person("N3", "Hartmannsberger", "Wilhelm", born, street="Am Hang 12", postcode="01067"),
            person(
                "N4",
                "Erika",
                "Hartmannsberger",
                date(1971, 2, 2),
                street="Am Hang 12",
                postcode="01067",
            ),
        ],
        with_contacts=False,
    )
    summary = resolve_identities(settings, RUN)
    wilhelm = customer_of(settings, "crm", "N1")
    assert customer_of(settings, "crm", "N2") == wilhelm  # a typo in the surname
    assert customer_of(settings, "crm", "N3") == wilhelm  # first and last name swapped
    assert customer_of(settings, "crm", "N4") != wilhelm  # his wife at the same address
    assert summary["probabilistic_pairs"] >= 2
    with connect(settings) as con:
        evidence = con.execute(
            "select rule, match_weight, agreed_fields from identity.match_evidence "
            "where 'N1' in (left_crm_id, right_crm_id) and 'N2' in (left_crm_id, right_crm_id)"
        ).fetchall()
    assert evidence and evidence[0][0] == "probabilistic match" and evidence[0][1] > 0
    assert "birth_date" in evidence[0][2]


def test_ids_are_stable_and_merges_are_recorded(settings: Settings) -> None:
    first = person("S1", "Anna", "Roth", date(1990, 1, 1), email="anna.roth@web.de")
    second = person(
        "S2",
        "Anna",
        "Roth",
        None,
        phone="+491761234567",
        street="Bahnhofstr. 1",
        postcode="20095",
        city="Hamburg",
    )
    build(settings, [first])
    resolve_identities(settings, date(2025, 6, 1))
    oldest = customer_of(settings, "crm", "S1")

    build(settings, [first, second])  # a second record that nothing ties to the first yet
    resolve_identities(settings, date(2025, 6, 2))
    newer = customer_of(settings, "crm", "S2")
    assert customer_of(settings, "crm", "S1") == oldest != newer

    resolve_identities(settings, date(2025, 6, 2))  # the same night again changes nothing
    assert {customer_of(settings, "crm", k) for k in ("S1", "S2")} == {oldest, newer}

    # A new record carries both her e-mail and her phone: the two customers are one person.
    bridge = person(
        "S3", "Anna", "Roth", date(1990, 1, 1), email="anna.roth@web.de", phone="+491761234567"
    )
    build(settings, [first, second, bridge])
    resolve_identities(settings, date(2025, 6, 3))
    assert {customer_of(settings, "crm", k) for k in ("S1", "S2", "S3")} == {oldest}
    with connect(settings) as con:
        history = con.execute(
            "select event, customer_id, other_customer_id from identity.customer_id_history "
            "order by run_date, event"
        ).fetchall()
    assert ("merge", oldest, newer) in history
    assert [e for e in history if e[0] == "merge"] == [("merge", oldest, newer)]


def test_a_split_keeps_the_id_with_the_larger_part_and_is_recorded(settings: Settings) -> None:
    born = date(1975, 8, 9)
    records = [
        person(f"P{i}", "Jana", "Vogel", born, email="jana.vogel@posteo.de") for i in (1, 2, 3)
    ]
    build(settings, records)
    resolve_identities(settings, date(2025, 6, 1))
    before = customer_of(settings, "crm", "P1")
    assert {customer_of(settings, "crm", f"P{i}") for i in (1, 2, 3)} == {before}

    # P3 was someone else all along: corrected, it shares nothing with Jana any more.
    records[2] = person("P3", "Tobias", "Vogel", date(1973, 2, 1), email="t.vogel@posteo.de")
    build(settings, records)
    resolve_identities(settings, date(2025, 6, 2))
    after = customer_of(settings, "crm", "P3")
    assert customer_of(settings, "crm", "P1") == customer_of(settings, "crm", "P2") == before
    assert after != before
    with connect(settings) as con:
        history = con.execute(
            "select event, customer_id, other_customer_id, records "
            "from identity.customer_id_history where run_date = '2025-06-02'"
        ).fetchall()
    assert history == [("split", after, before, 1)]
