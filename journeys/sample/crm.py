"""CRM records: one per account, re-delivered when the address or e-mail changes.

Record kinds: a person's primary record, a duplicate second record (typos, nickname, swapped
names, moved address, second e-mail or missing birth date) and, after a name change, a new
record with the new last name and e-mail (same first name, phone and birth date).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from journeys.sample import vocab
from journeys.sample.config import GeneratorConfig
from journeys.sample.export import Table
from journeys.sample.people import (
    CITIES,
    COUNTRY_CODES,
    DUP_KINDS,
    FIRST_NAMES,
    NEVER,
    People,
    street_strings,
)
from journeys.sample.textio import SECONDS_PER_DAY, Clock, fixed_ids, int_strings, take

RECORD_KINDS = ("primary", "duplicate", "married_name")
_FIRST = pa.array(FIRST_NAMES)
_LAST = pa.array(vocab.LAST_NAMES)
_NICK = pa.array([vocab.nickname(n) for n in FIRST_NAMES])
_TYPO_FIRST = pa.array([vocab.typo(n) for n in FIRST_NAMES])
_TYPO_LAST = pa.array([vocab.typo(n) for n in vocab.LAST_NAMES])
_CALLING = pa.array([vocab.COUNTRIES[c]["cc"] for c in COUNTRY_CODES])


@dataclass
class CrmRecords:
    person: np.ndarray
    kind: np.ndarray
    created_sec: np.ndarray
    crm_ids: pa.Array


def phone_strings(people: People, person: np.ndarray, variant: np.ndarray) -> pa.Array:
    """The same number written the ways people write it: +49 170 1234567, 0170/1234567, ..."""
    pa_person = pa.array(person)
    cc = _CALLING.take(pa.array(people.country[person].astype(np.int64)))
    prefix = people.phone_prefix.take(pa_person)
    sub = int_strings(people.phone_sub[person])
    us = pa.array(people.country[person] == COUNTRY_CODES.index("US"))
    national_slash = pc.if_else(
        us,
        pc.binary_join_element_wise("(", prefix, ") ", sub, ""),
        pc.binary_join_element_wise("0", prefix, "/", sub, ""),
    )
    national_space = pc.if_else(
        us,
        pc.binary_join_element_wise(prefix, "-", sub, ""),
        pc.binary_join_element_wise("0", prefix, " ", sub, ""),
    )
    variants = [
        pc.binary_join_element_wise("+", cc, " ", prefix, " ", sub, ""),
        national_slash,
        pc.binary_join_element_wise("00", cc, prefix, sub, ""),
        pc.binary_join_element_wise("+", cc, prefix, sub, ""),
        national_space,
    ]
    return pc.choose(pa.array(np.asarray(variant, dtype=np.int64) % 5), *variants)


def date_strings(start: date, days: np.ndarray) -> pa.Array:
    """YYYY-MM-DD for day offsets from start, any distance (birth dates)."""
    values = (np.datetime64(start, "D") + np.asarray(days, dtype=np.int64)).astype(str)
    return pa.array(values, pa.string())


def assign_crm_records(people: People) -> CrmRecords:
    """Number every CRM record in creation order and point people at their records."""
    n = people.n
    persons = [
        np.flatnonzero(people.has_crm),
        np.flatnonzero(people.dup),
        np.flatnonzero(people.married),
    ]
    created = [people.join_sec[persons[0]], people.t_dup[persons[1]], people.t_marr[persons[2]]]
    person = np.concatenate(persons)
    kind = np.concatenate([np.full(len(p), k, dtype=np.int8) for k, p in enumerate(persons)])
    created_sec = np.concatenate(created)
    order = np.lexsort((person, kind, created_sec))
    person, kind, created_sec = person[order], kind[order], created_sec[order]
    width = max(8, len(str(len(person))))
    crm_ids = fixed_ids("C", np.arange(1, len(person) + 1), width)
    for k, attr in enumerate(("crm0", "crm1", "crm2")):
        index = np.full(n, -1, dtype=np.int64)
        rows = np.flatnonzero(kind == k)
        index[person[rows]] = rows
        setattr(people, attr, index)
    return CrmRecords(person, kind, created_sec, crm_ids)


def build_crm_table(
    people: People,
    records: CrmRecords,
    cfg: GeneratorConfig,
    clock: Clock,
    days: int,
    rng: np.random.Generator,
) -> Table:
    """Creation rows of every record plus update rows (moves, e-mail changes) of primaries."""
    window_end = days * SECONDS_PER_DAY
    n_rec = len(records.person)
    primary = np.flatnonzero(records.kind == 0)
    moves = primary[people.t_move[records.person[primary]] < window_end]
    changes = primary[people.t_email[records.person[primary]] < window_end]
    record = np.concatenate([np.arange(n_rec), moves, changes])
    person = records.person[record]
    version_sec = np.concatenate(
        [
            records.created_sec,
            people.t_move[records.person[moves]],
            people.t_email[records.person[changes]],
        ]
    )
    exported = version_sec < window_end
    record, person, version_sec = record[exported], person[exported], version_sec[exported]
    kind = records.kind[record]
    day = np.maximum(version_sec // SECONDS_PER_DAY, 0)
    order = np.lexsort((record, version_sec, day))
    record, person, version_sec, kind, day = (
        a[order] for a in (record, person, version_sec, kind, day)
    )
    is_dup, is_marr = kind == 1, kind == 2
    dup_kind = people.dup_kinds[person] * is_dup

    def has(name: str) -> np.ndarray:
        return (dup_kind & (1 << DUP_KINDS.index(name))) > 0

    # Names: the duplicate's variants; the married record's new last name.
    first = _FIRST.take(pa.array(people.first[person]))
    first = pc.if_else(pa.array(has("nickname")), _NICK.take(pa.array(people.first[person])), first)
    first = pc.if_else(
        pa.array(has("typo_first_name")), _TYPO_FIRST.take(pa.array(people.first[person])), first
    )
    last_idx = np.where(is_marr, people.last_marr[person], people.last[person])
    last = _LAST.take(pa.array(last_idx))
    last = pc.if_else(pa.array(has("typo_last_name")), _TYPO_LAST.take(pa.array(last_idx)), last)
    swapped = pa.array(has("swapped_names"))
    first, last = pc.if_else(swapped, last, first), pc.if_else(swapped, first, last)
    test = people.is_test[person]
    first = pc.if_else(pa.array(test), "Test", first)
    last = pc.if_else(pa.array(test), take(("Account", "User", "QA", "Checkout"), person % 4), last)

    # E-mail as of the version's time.
    email_idx = np.where(
        version_sec >= people.t_email[person], people.email_b[person], people.email0[person]
    )
    email_idx = np.where(is_dup, people.email_dup[person], email_idx)
    email_idx = np.where(is_marr, people.email_marr[person], email_idx)
    email = take(people.emails, email_idx)

    phone_variant = rng.integers(0, 5, size=n_rec)[record]  # a record keeps its format
    phone = phone_strings(people, person, phone_variant)
    phone = pc.if_else(pa.array(people.has_phone[person]), phone, pa.scalar(None, pa.string()))

    # Birth date and gender: missing at controlled rates (never for people reachable by
    # name and address only, who could not be matched otherwise).
    contactless = ~people.has_email[person] & ~people.has_phone[person]
    no_birth = (
        (rng.random(n_rec) < cfg.missing_birth_date)[record] | has("no_birth_date")
    ) & ~contactless
    no_gender = (rng.random(n_rec) < cfg.missing_gender)[record]
    birth = date_strings(clock.start, people.birth_day[person])
    birth = pc.if_else(pa.array(no_birth), pa.scalar(None, pa.string()), birth)
    gender = take(("f", "m", "d"), np.where(no_gender, -1, people.gender[person]))

    # Address as of the version's time; a duplicate may carry the newer address.
    moved = (version_sec >= people.t_move[person]) | has("moved")
    city = np.where(moved, people.city2[person], people.city[person])
    street = np.where(moved, people.street2[person], people.street[person])
    house = np.where(moved, people.house2[person], people.house[person])
    postcode = pc.if_else(
        pa.array(moved),
        people.postcode2.take(pa.array(person)),
        people.postcode.take(pa.array(person)),
    )

    card = pc.if_else(
        pa.array(kind == 0), people.card_ids.take(pa.array(person)), pa.scalar(None, pa.string())
    )
    columns = {
        "crm_id": records.crm_ids.take(pa.array(record)),
        "updated_at": clock.timestamps(version_sec),
        "first_name": first,
        "last_name": last,
        "email": email,
        "phone": phone,
        "birth_date": birth,
        "gender": gender,
        "street": street_strings(street, house),
        "city": take([c[1] for c in CITIES], city),
        "postcode": postcode,
        "country": take(COUNTRY_CODES, people.country[person]),
        "loyalty_card_id": card,
        "created_at": clock.timestamps(records.created_sec[record]),
        "is_test_account": pc.if_else(pa.array(people.test_flagged[person]), "true", "false"),
    }
    defects = [
        (np.flatnonzero(no_birth), "missing_birth_date", "birth_date"),
        (np.flatnonzero(no_gender), "missing_gender", "gender"),
        (np.flatnonzero(test), "test_account", None),
    ]
    for name in DUP_KINDS:
        defects.append((np.flatnonzero(has(name)), f"duplicate_record:{name}", None))
    defects.append((np.flatnonzero(is_marr), "married_name_record", None))
    return Table(columns, day, columns["crm_id"], person, defects)


def crm_first_delivery(people: People, table: Table) -> np.ndarray:
    """Per person: the first day any CRM record of theirs was delivered (NEVER if none)."""
    first = np.full(people.n, NEVER, dtype=np.int64)
    np.minimum.at(first, table.person, table.delivery_day)
    return first
