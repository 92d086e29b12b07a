"""Identifier rules: what may make two records one person, declared in one place.

- An identifier is an identity key only when it is personal: a role mailbox (info@, orders@,
  office@ …) never is, and an identifier shared by more than `max_records_per_identifier`
  records is treated as shared (a family landline, a household or shop mailbox).
- Records sharing an identifier merge only when their strong attributes agree: two records
  with different birth dates, or clearly different first names (not a typo, nickname or a
  first/last swap), are different people who share an identifier — a household e-mail, a
  couple's landline. The refusal is recorded with its reason (`identity.refused_merges`).
- Activity reached only through a shared identifier (an order by a household e-mail, a session
  on a family computer) is attributed, never merged, by the rules in `ATTRIBUTION_RULES`.
- Provider aliases: `+tags` are dropped where the provider ignores them, and so are dots in
  the local part at Gmail; googlemail.com is gmail.com.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from pathlib import Path

ROLE_MAILBOXES = (
    "admin",
    "bestellung",
    "billing",
    "buchhaltung",
    "contact",
    "einkauf",
    "hello",
    "info",
    "kontakt",
    "mail",
    "noreply",
    "no-reply",
    "office",
    "orders",
    "post",
    "sales",
    "service",
    "shop",
    "support",
    "team",
    "verwaltung",
    "webmaster",
)
PLUS_TAG_DOMAINS = (
    "gmail.com",
    "outlook.com",
    "hotmail.com",
    "hotmail.co.uk",
    "hotmail.se",
    "live.com",
    "icloud.com",
    "me.com",
    "fastmail.com",
    "protonmail.com",
    "proton.me",
    "yahoo.com",
)
DOT_INSENSITIVE_DOMAINS = ("gmail.com",)
DOMAIN_ALIASES = {"googlemail.com": "gmail.com"}

ATTRIBUTION_RULES = {
    "crm_id": "the order or login names a CRM record: its customer",
    "email": "a personal e-mail held by one customer: that customer",
    "shared_email_first_holder": (
        "an e-mail held by several customers (a household): the customer who registered it first"
    ),
    "role_mailbox": "a role mailbox (info@ …): a shared account customer of its own, never merged",
    "guest_email": "an e-mail no CRM record holds: a guest customer of its own",
    "loyalty_card": "a loyalty card: the customer whose CRM record holds it",
    "guest_card": "a card no CRM record holds: a card-only customer",
    "login": "a cookie whose logins all name one customer: that customer",
    "shared_cookie_majority": "a cookie several customers log in on: the one with most logins",
}


@dataclass(frozen=True)
class IdentityRules:
    max_records_per_identifier: int = 4
    # Two first names are clearly different below this Jaro-Winkler similarity (and not nicknames).
    first_name_similarity: float = 0.85
    # Probabilistic matches at or above this probability link records.
    match_probability: float = 0.95
    # Retrain the Splink model when the saved one is older than this.
    retrain_days: int = 7
    # Training cost caps: random pairs for the u-probabilities, blocked pairs per EM pass.
    u_max_pairs: float = 2e6
    em_max_pairs: float = 2e6


@cache
def nicknames() -> list[tuple[str, str]]:
    """(nickname, full name) pairs: a nickname resolves to its full name before comparison."""
    with (Path(__file__).parent / "nicknames.csv").open() as f:
        return [(row["nickname"], row["name"]) for row in csv.DictReader(f)]


def _sql_list(values) -> str:
    return ", ".join(f"'{v}'" for v in values)


def email_key_sql(column: str) -> str:
    """SQL: the canonical form of a normalised (lower-case, trimmed) e-mail address."""
    domain = f"split_part({column}, '@', 2)"
    aliases = " ".join(f"when '{a}' then '{b}'" for a, b in DOMAIN_ALIASES.items())
    domain = f"(case {domain} {aliases} else {domain} end)"
    local = f"split_part({column}, '@', 1)"
    local = (
        f"(case when {domain} in ({_sql_list(PLUS_TAG_DOMAINS)}) "
        f"then regexp_replace({local}, '\\+.*$', '') else {local} end)"
    )
    local = (
        f"(case when {domain} in ({_sql_list(DOT_INSENSITIVE_DOMAINS)}) "
        f"then replace({local}, '.', '') else {local} end)"
    )
    return f"(case when {column} like '%_@_%' then {local} || '@' || {domain} end)"


def is_role_mailbox_sql(column: str) -> str:
    local = f"regexp_replace(split_part({column}, '@', 1), '\\+.*$', '')"
    return f"coalesce({local} in ({_sql_list(ROLE_MAILBOXES)}), false)"
