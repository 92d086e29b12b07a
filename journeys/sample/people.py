"""The population: latent behaviour and identities of every person, and their CRM records.

A person is one row of numpy arrays (structure of arrays). Strings are built column-wise with
Arrow from small vocabularies; identity noise (second accounts, couples sharing contact data,
role addresses, name changes) is decided here, so every export draws from the same people.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from journeys.sample import vocab
from journeys.sample.config import ONLINE_HOURS, GeneratorConfig
from journeys.sample.textio import SECONDS_PER_DAY, fixed_ids, hex_ids, int_strings, take

NEVER = np.iinfo(np.int64).max // 4  # "no such event" time, larger than any real time

FIRST_NAMES: tuple[str, ...] = tuple(
    dict.fromkeys(vocab.FEMALE_FIRST_NAMES + vocab.MALE_FIRST_NAMES)
)
_FEMALE = set(vocab.FEMALE_FIRST_NAMES)
FIRST_IS_FEMALE = np.array([n in _FEMALE for n in FIRST_NAMES])
COUNTRY_CODES: tuple[str, ...] = tuple(vocab.COUNTRIES)
CURRENCIES: tuple[str, ...] = ("EUR", "USD", "GBP", "SEK")
COUNTRY_CURRENCY = np.array(
    [CURRENCIES.index(vocab.COUNTRIES[c]["currency"]) for c in COUNTRY_CODES]
)
# Cities of all countries in one list; per country a slice [start, stop).
CITIES = [(c, *city) for c in COUNTRY_CODES for city in vocab.COUNTRIES[c]["cities"]]
CITY_COUNTRY = np.array([COUNTRY_CODES.index(c[0]) for c in CITIES])
CITY_BASE = np.array([c[2] for c in CITIES])
_country_city = [np.flatnonzero(CITY_COUNTRY == k) for k in range(len(COUNTRY_CODES))]
STREET_STYLES = ("de", "nl", "en", "sv")
STREETS = [(s, name) for s in STREET_STYLES for name in vocab.STREETS[s]]
COUNTRY_STYLE = np.array(
    [STREET_STYLES.index(vocab.COUNTRIES[c]["street_style"]) for c in COUNTRY_CODES]
)
_style_streets = [np.flatnonzero(np.array([s == st for s, _ in STREETS])) for st in STREET_STYLES]
DOMAINS = [(c, d) for c in COUNTRY_CODES for d in vocab.COUNTRIES[c]["domains"]]
_country_domains = [np.flatnonzero(np.array([c == k for c, _ in DOMAINS])) for k in COUNTRY_CODES]
PHONE_PREFIXES = [(c, p) for c in COUNTRY_CODES for p in vocab.MOBILE_PREFIXES[c]]
_country_mobile = [
    np.flatnonzero(np.array([c == k for c, _ in PHONE_PREFIXES])) for k in COUNTRY_CODES
]
GB_OUTWARD = ("E", "M", "B", "LS", "BS")


def _zipf(n: int, bend: float = 4.0) -> np.ndarray:
    w = 1.0 / (np.arange(n) + bend)
    return w / w.sum()


def draw_tod(rng: np.random.Generator, n: int, hour_weights: tuple[float, ...]) -> np.ndarray:
    """Seconds into the day, following an hour-of-day profile."""
    w = np.asarray(hour_weights, dtype=float)
    hour = rng.choice(24, size=n, p=w / w.sum())
    return hour * 3600 + rng.integers(0, 3600, size=n)


@dataclass
class People:
    """Structure of arrays: index i of every array is person i (person_id = i)."""

    n: int
    archetype: np.ndarray
    is_test: np.ndarray
    test_flagged: np.ndarray
    join_sec: np.ndarray
    lam: np.ndarray  # purchases per day while alive
    p: np.ndarray  # dropout probability after each purchase
    online_share: np.ndarray
    web_rate: np.ndarray  # browse sessions per day while alive
    open_prob: np.ndarray  # newsletter open probability while alive
    cat_cum: np.ndarray  # (n, categories) cumulative category preference
    gender: np.ndarray  # 0 female, 1 male, 2 diverse
    first: np.ndarray
    last: np.ndarray
    birth_day: np.ndarray  # days relative to start
    country: np.ndarray
    city: np.ndarray
    street: np.ndarray
    house: np.ndarray
    postcode: pa.Array
    has_phone: np.ndarray
    phone_prefix: pa.Array  # mobile prefix or area code, without trunk 0
    phone_sub: np.ndarray
    has_crm: np.ndarray
    has_email: np.ndarray
    offline: np.ndarray
    emails: pa.Array = None  # every e-mail address ever used; persons point into it
    email0: np.ndarray = None  # address at signup (-1: none)
    email_b: np.ndarray = None  # address after a CRM e-mail change (-1: none)
    t_email: np.ndarray = None
    t_move: np.ndarray = None
    city2: np.ndarray = None
    street2: np.ndarray = None
    house2: np.ndarray = None
    postcode2: pa.Array = None
    dup: np.ndarray = None
    t_dup: np.ndarray = None
    dup_kinds: np.ndarray = None  # bitmask of DUP_KINDS
    email_dup: np.ndarray = None
    married: np.ndarray = None
    t_marr: np.ndarray = None
    last_marr: np.ndarray = None
    email_marr: np.ndarray = None
    partner: np.ndarray = None  # couple partner (-1)
    couple_id: np.ndarray = None
    couple_email: np.ndarray = None
    couple_landline: np.ndarray = None
    couple_computer: np.ndarray = None  # this person also browses on the partner's cookie
    business: np.ndarray = None  # business group (-1)
    has_card: np.ndarray = None
    card_ids: pa.Array = None
    cookie_a: np.ndarray = None  # cookie index (-1)
    cookie_b: np.ndarray = None
    t_cookie_b: np.ndarray = None
    n_cookies_total: int = 0
    cookie_owner: np.ndarray = None  # per cookie: the person who owns it
    cookie_device: np.ndarray = None  # per cookie: 0 desktop, 1 mobile, 2 tablet
    cookie_ids: pa.Array = None
    home_store: np.ndarray = None
    crm0: np.ndarray = None  # CRM record index of the primary/duplicate/married record (-1)
    crm1: np.ndarray = None
    crm2: np.ndarray = None
    dropout_sec: np.ndarray = None  # filled by the purchase simulation
    dup_use_share: float = 0.5
    extra: dict = field(default_factory=dict)

    def postcode_at(self, person: np.ndarray, t: np.ndarray) -> pa.Array:
        moved = t >= self.t_move[person]
        return pc.if_else(
            pa.array(moved),
            self.postcode2.take(pa.array(person)),
            self.postcode.take(pa.array(person)),
        )

    def account_at(
        self, person: np.ndarray, t: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """(CRM record, e-mail version) a person uses at time t; -1 where there is none.

        After a name change the new account is used; a second (duplicate) account is used
        half of the time once it exists; an e-mail change on the CRM record applies after it.
        """
        crm = self.crm0[person].copy()
        email = np.where(t >= self.t_email[person], self.email_b[person], self.email0[person])
        use_dup = (
            self.dup[person]
            & (t >= self.t_dup[person])
            & (rng.random(len(person)) < self.dup_use_share)
        )
        crm = np.where(use_dup, self.crm1[person], crm)
        email = np.where(use_dup, self.email_dup[person], email)
        married = t >= self.t_marr[person]
        crm = np.where(married, self.crm2[person], crm)
        email = np.where(married, self.email_marr[person], email)
        return crm, email


DUP_KINDS = (
    "typo_last_name",
    "typo_first_name",
    "nickname",
    "swapped_names",
    "moved",
    "second_email",
    "no_birth_date",
)


def _postcodes(rng: np.random.Generator, city: np.ndarray) -> pa.Array:
    """Postcodes in each country's format, near the city's first postcode."""
    m = len(city)
    country = CITY_COUNTRY[city]
    off = rng.integers(0, 60, size=m)
    letters = np.frombuffer(b"ABDEFGHJLNPRSTUWXYZ", dtype=np.uint8)
    pairs = letters[rng.integers(0, len(letters), size=(m, 2))]
    parts, rows_of_parts = [], []
    for k, code in enumerate(COUNTRY_CODES):
        rows = np.flatnonzero(country == k)
        if len(rows):
            parts.append(_postcode_format(code, CITY_BASE[city[rows]], off[rows], pairs[rows]))
            rows_of_parts.append(rows)
    if not parts:
        return pa.array([], pa.string())
    inverse = np.empty(m, dtype=np.int64)
    inverse[np.concatenate(rows_of_parts)] = np.arange(m)
    return pa.concat_arrays(parts).take(pa.array(inverse))


def _postcode_format(code: str, base: np.ndarray, off: np.ndarray, pairs: np.ndarray) -> pa.Array:
    num = base + off
    two_letters = pa.StringArray.from_buffers(
        len(base),
        pa.py_buffer((np.arange(len(base) + 1, dtype=np.int32) * 2).tobytes()),
        pa.py_buffer(np.ascontiguousarray(pairs).tobytes()),
    )
    if code == "AT":
        return fixed_ids("", base + (off % 20) * 10, 4)
    if code == "NL":
        return pc.binary_join_element_wise(fixed_ids("", num, 4), two_letters, " ")
    if code == "GB":
        outward = take(GB_OUTWARD, np.clip(base - 1, 0, len(GB_OUTWARD) - 1))
        return pc.binary_join_element_wise(
            outward, int_strings(1 + off % 20), " ", int_strings(off % 10), two_letters, ""
        )
    if code == "SE":
        return pc.binary_join_element_wise(
            fixed_ids("", num // 100, 3), fixed_ids("", num % 100, 2), " "
        )
    return fixed_ids("", num, 5)  # DE, US


def _addresses(
    rng: np.random.Generator, country: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, pa.Array]:
    m = len(country)
    city = np.empty(m, dtype=np.int64)
    street = np.empty(m, dtype=np.int64)
    for k in range(len(COUNTRY_CODES)):
        rows = np.flatnonzero(country == k)
        cities = _country_city[k]
        city[rows] = cities[rng.choice(len(cities), size=len(rows), p=_zipf(len(cities), 2.0))]
        streets = _style_streets[COUNTRY_STYLE[k]]
        street[rows] = streets[rng.integers(0, len(streets), size=len(rows))]
    house = (1 + rng.geometric(0.03, size=m)).clip(max=250)
    return city, street, house, _postcodes(rng, city)


def street_strings(street: np.ndarray, house: np.ndarray) -> pa.Array:
    """`Hauptstraße 12`, or `12 High Street` in English-speaking countries."""
    name = take([s for _, s in STREETS], street)
    number = int_strings(house)
    english = np.array([s == "en" for s, _ in STREETS])[street]
    return pc.if_else(
        pa.array(english),
        pc.binary_join_element_wise(number, name, " "),
        pc.binary_join_element_wise(name, number, " "),
    )


_ASCII_FIRST = pa.array([vocab.ascii_lower(n) for n in FIRST_NAMES])
_INITIAL = pa.array([vocab.ascii_lower(n)[0] for n in FIRST_NAMES])
_ASCII_LAST = pa.array([vocab.ascii_lower(n) for n in vocab.LAST_NAMES])
_DOMAIN_NAMES = pa.array([d for _, d in DOMAINS])


def _name_emails(
    rng: np.random.Generator,
    first: np.ndarray,
    last: np.ndarray,
    country: np.ndarray,
    birth_year: np.ndarray,
) -> pa.Array:
    """Addresses people choose: anna.schmidt@, annaschmidt85@, a.schmidt@, schmidt.anna@ ..."""
    m = len(first)
    pattern = rng.choice(7, size=m, p=[0.28, 0.14, 0.12, 0.16, 0.12, 0.08, 0.10])
    af, al, ini = (
        _ASCII_FIRST.take(pa.array(first)),
        _ASCII_LAST.take(pa.array(last)),
        _INITIAL.take(pa.array(first)),
    )
    head = pc.choose(pa.array(np.select([pattern == 2, pattern == 5], [1, 2], 0)), af, ini, al)
    sep = take([".", "", "_"], np.select([np.isin(pattern, (1, 4)), pattern == 6], [1, 2], 0))
    tail = pc.choose(
        pa.array(np.select([pattern == 5, pattern == 4], [1, 2], 0)), al, af, pa.repeat("", m)
    )
    year = fixed_ids("", birth_year % 100, 2)
    number = int_strings(rng.integers(1, 9999, size=m))
    suffix = pc.choose(
        pa.array(np.select([pattern == 3, pattern == 4], [1, 2], 0)), pa.repeat("", m), year, number
    )
    domain_idx = np.empty(m, dtype=np.int64)
    for k in range(len(COUNTRY_CODES)):
        rows = np.flatnonzero(country == k)
        options = _country_domains[k]
        domain_idx[rows] = options[
            rng.choice(len(options), size=len(rows), p=_zipf(len(options), 1.5))
        ]
    return pc.binary_join_element_wise(
        head, sep, tail, suffix, "@", _DOMAIN_NAMES.take(pa.array(domain_idx)), ""
    )


def canonical_email(emails: pa.Array) -> pa.Array:
    """What identifies a mailbox: trimmed, lower case, gmail without dots and +tags."""
    e = pc.utf8_lower(pc.utf8_trim_whitespace(emails))
    gmail = pc.fill_null(pc.ends_with(e, "@gmail.com"), False)
    if not pc.any(gmail).as_py():
        return e
    local = pc.list_element(pc.split_pattern(pc.filter(e, gmail), "@"), 0)
    local = pc.replace_substring(pc.replace_substring_regex(local, r"\+.*$", ""), ".", "")
    return pc.replace_with_mask(e, gmail, pc.binary_join_element_wise(local, "gmail.com", "@"))


def _make_unique(rng: np.random.Generator, emails: pa.Array) -> pa.Array:
    """Append digits to addresses whose mailbox already belongs to an earlier row."""
    for _ in range(6):
        codes = pc.dictionary_encode(canonical_email(emails)).indices.to_numpy()
        first_rows = np.unique(codes, return_index=True)[1]
        dup = np.ones(len(codes), dtype=bool)
        dup[first_rows] = False
        if not dup.any():
            return emails
        rows = np.flatnonzero(dup)
        parts = pc.split_pattern(emails.take(pa.array(rows)), "@")
        fixed = pc.binary_join_element_wise(
            pc.list_element(parts, 0),
            int_strings(rng.integers(10, 99_999, size=len(rows))),
            "@",
            pc.list_element(parts, 1),
            "",
        )
        mask = np.zeros(len(codes), dtype=bool)
        mask[rows] = True
        emails = pc.replace_with_mask(emails, pa.array(mask), fixed)
    raise RuntimeError("could not make e-mail addresses unique")


def build_people(
    n: int, days: int, start_year: int, cfg: GeneratorConfig, rng: np.random.Generator
) -> People:
    """Draw n people: archetype, latent parameters, who they are and how they are reachable."""
    arch = cfg.archetypes
    k = rng.choice(len(arch), size=n, p=[a.weight for a in arch])
    param = {
        name: np.array([getattr(a, name) for a in arch])[k]
        for name in ("r", "alpha", "a", "b", "web_sessions_per_day")
    }

    # Joining: a chunk before start (delivered as a first load), the rest during the period.
    before = (rng.random(n) < cfg.pre_start_share) & np.array([a.joins_before_start for a in arch])[
        k
    ]
    join_day = np.where(
        before, -rng.integers(1, cfg.history_days + 1, size=n), rng.integers(0, days, size=n)
    )
    join_sec = join_day * SECONDS_PER_DAY + draw_tod(rng, n, ONLINE_HOURS)

    lam = rng.gamma(param["r"], 1.0 / param["alpha"])
    p = rng.beta(param["a"], param["b"])
    online = rng.beta(*np.array([a.online_share for a in arch])[k].T)
    opens = rng.beta(*np.array([a.email_open for a in arch])[k].T)
    web_rate = param["web_sessions_per_day"] * rng.gamma(2.0, 0.5, size=n) * cfg.web_activity_scale

    # Category tastes: a Dirichlet draw around the archetype's mean (normalised Gammas, since
    # numpy's dirichlet takes one parameter vector for all rows).
    mean_taste = np.array([a.category_weights for a in arch])
    if mean_taste.shape[1] != len(vocab.CATEGORIES):
        raise ValueError(f"category_weights need one weight per category {vocab.CATEGORIES}")
    taste = rng.gamma(cfg.category_concentration * mean_taste[k])
    pref = taste / taste.sum(axis=1, keepdims=True)
    cat_cum = np.cumsum(pref, axis=1).astype(np.float32)
    cat_cum[:, -1] = 1.0

    # Who is reachable how.
    has_crm = rng.random(n) < cfg.crm_share
    no_contact = has_crm & (rng.random(n) < cfg.no_contact_share)
    no_email = ~no_contact & (
        (rng.random(n) < cfg.no_email_share)
        | (~has_crm & (rng.random(n) < cfg.guest_without_email_share))
    )
    has_email = ~(no_contact | no_email)
    has_phone = has_crm & ~no_contact & (rng.random(n) > cfg.no_phone_share)
    online = np.where(has_email, online, 0.0)  # without an address nobody orders online
    offline = (rng.random(n) < cfg.offline_share) | no_contact
    web_rate = np.where(offline, 0.0, web_rate)

    # Names, birth dates, addresses, phones.
    gender = rng.choice(3, size=n, p=[0.495, 0.495, 0.01])
    first = _first_names(rng, gender)
    last = rng.choice(len(vocab.LAST_NAMES), size=n, p=_zipf(len(vocab.LAST_NAMES), 3.0))
    age_days = ((18 + 67 * rng.beta(2.0, 2.6, size=n)) * 365.25).astype(np.int64)
    birth_day = -age_days
    country = rng.choice(
        len(COUNTRY_CODES), size=n, p=[vocab.COUNTRIES[c]["share"] for c in COUNTRY_CODES]
    )
    city, street, house, postcode = _addresses(rng, country)
    mobile = rng.random(n) < cfg.mobile_phone_share
    prefix_idx = np.empty(n, dtype=np.int64)
    for c in range(len(COUNTRY_CODES)):
        rows = np.flatnonzero(country == c)
        options = _country_mobile[c]
        prefix_idx[rows] = options[rng.integers(0, len(options), size=len(rows))]
    phone_prefix = pc.if_else(
        pa.array(mobile),
        take([p_ for _, p_ in PHONE_PREFIXES], prefix_idx),
        take([c[3] for c in CITIES], city),
    )
    phone_sub = rng.integers(1_000_000, 10_000_000, size=n)

    people = People(
        n=n,
        archetype=k.astype(np.int8),
        is_test=np.zeros(n, bool),
        test_flagged=np.zeros(n, bool),
        join_sec=join_sec,
        lam=lam,
        p=p,
        online_share=online,
        web_rate=web_rate,
        open_prob=opens,
        cat_cum=cat_cum,
        gender=gender.astype(np.int8),
        first=first,
        last=last,
        birth_day=birth_day,
        country=country.astype(np.int8),
        city=city,
        street=street,
        house=house,
        postcode=postcode,
        has_phone=has_phone,
        phone_prefix=phone_prefix,
        phone_sub=phone_sub,
        has_crm=has_crm,
        has_email=has_email,
        offline=offline,
    )
    people.extra["start_year"] = start_year
    people.dup_use_share = cfg.duplicate_account_use_share
    _test_accounts(people, cfg, rng)
    _couples_and_businesses(people, cfg, rng)
    _life_events(people, cfg, rng, days)
    _emails(people, rng)
    _cards_cookies_stores(people, cfg, rng)
    return people


def _first_names(rng: np.random.Generator, gender: np.ndarray) -> np.ndarray:
    first = np.empty(len(gender), dtype=np.int64)
    pools = {
        0: np.flatnonzero(FIRST_IS_FEMALE),
        1: np.flatnonzero(~FIRST_IS_FEMALE),
        2: np.arange(len(FIRST_NAMES)),
    }
    for g, pool in pools.items():
        rows = np.flatnonzero(gender == g)
        first[rows] = pool[rng.choice(len(pool), size=len(rows), p=_zipf(len(pool), 6.0))]
    return first


def _test_accounts(people: People, cfg: GeneratorConfig, rng: np.random.Generator) -> None:
    candidates = np.flatnonzero(people.has_crm & people.has_email)
    n_test = min(len(candidates), max(3, round(cfg.test_account_share * people.n)))
    test = np.sort(rng.choice(candidates, size=n_test, replace=False))
    people.is_test[test] = True
    people.test_flagged[test] = rng.random(n_test) < cfg.test_account_flagged_share
    people.extra["test_rows"] = test


def _couples_and_businesses(people: People, cfg: GeneratorConfig, rng: np.random.Generator) -> None:
    """Households (shared address, sometimes e-mail, landline, computer) and role addresses."""
    n = people.n
    eligible = np.flatnonzero(people.has_crm & ~people.is_test)
    rng.shuffle(eligible)
    n_pairs = int(cfg.couple_share * n / 2)
    n_pairs = min(n_pairs, len(eligible) // 3)
    a, b = eligible[:n_pairs], eligible[n_pairs : 2 * n_pairs]
    rest = eligible[2 * n_pairs :]

    people.partner = np.full(n, -1, dtype=np.int64)
    people.partner[a], people.partner[b] = b, a
    people.couple_id = np.full(n, -1, dtype=np.int64)
    people.couple_id[a] = people.couple_id[b] = np.arange(n_pairs)
    people.last[b] = people.last[a]
    people.country[b] = people.country[a]
    people.city[b], people.street[b], people.house[b] = (
        people.city[a],
        people.street[a],
        people.house[a],
    )
    mask = np.zeros(n, dtype=bool)
    mask[b] = True
    people.postcode = pc.replace_with_mask(
        people.postcode, pa.array(mask), people.postcode.take(pa.array(a))
    )
    # The partner: mostly the other gender, never the same first name.
    people.gender[b] = np.where(
        rng.random(n_pairs) < 0.9, 1 - np.minimum(people.gender[a], 1), people.gender[b]
    )
    people.first[b] = _first_names(rng, people.gender[b])
    same = people.first[b] == people.first[a]
    people.first[b[same]] = (people.first[b[same]] + 1) % len(FIRST_NAMES)
    both_email = people.has_email[a] & people.has_email[b]
    people.couple_email = np.zeros(n, dtype=bool)
    shared = both_email & (rng.random(n_pairs) < cfg.couple_shared_email)
    people.couple_email[a[shared]] = people.couple_email[b[shared]] = True
    people.couple_landline = np.zeros(n, dtype=bool)
    landline = rng.random(n_pairs) < cfg.couple_shared_landline
    la, lb = a[landline], b[landline]
    people.couple_landline[la] = people.couple_landline[lb] = True
    people.has_phone[la] = people.has_phone[lb] = True
    mask = np.zeros(n, dtype=bool)
    mask[la] = mask[lb] = True
    area = take([c[3] for c in CITIES], people.city[np.concatenate([la, lb])])
    order = np.argsort(np.concatenate([la, lb]), kind="stable")
    people.phone_prefix = pc.replace_with_mask(
        people.phone_prefix, pa.array(mask), area.take(pa.array(order))
    )
    people.phone_sub[lb] = people.phone_sub[la]
    people.couple_computer = np.zeros(n, dtype=bool)
    computer = (
        (rng.random(n_pairs) < cfg.couple_shared_computer) & ~people.offline[a] & ~people.offline[b]
    )
    people.couple_computer[b[computer]] = True

    # Small businesses: 3-5 colleagues order through one role address.
    people.business = np.full(n, -1, dtype=np.int64)
    pool = rest[people.has_email[rest]]
    sizes = []
    total = int(cfg.business_share * n)
    while sum(sizes) < total and sum(sizes) + 5 <= len(pool):
        sizes.append(int(rng.integers(3, 6)))
    members = pool[: sum(sizes)]
    group = np.repeat(np.arange(len(sizes)), sizes)
    people.business[members] = group
    heads = members[np.r_[0, np.cumsum(sizes)[:-1]]] if sizes else members
    if len(members):
        lead = heads[group]
        people.country[members] = people.country[lead]
        people.city[members], people.street[members], people.house[members] = (
            people.city[lead],
            people.street[lead],
            people.house[lead],
        )
        mask = np.zeros(n, dtype=bool)
        mask[members] = True
        order = np.argsort(members, kind="stable")
        people.postcode = pc.replace_with_mask(
            people.postcode, pa.array(mask), people.postcode.take(pa.array(lead[order]))
        )
        people.has_phone[members] = True
        mask_phone = np.zeros(n, dtype=bool)
        mask_phone[members] = True
        area = take([c[3] for c in CITIES], people.city[members[order]])
        people.phone_prefix = pc.replace_with_mask(people.phone_prefix, pa.array(mask_phone), area)
        people.phone_sub[members] = people.phone_sub[lead]
    people.extra["business_sizes"] = np.array(sizes, dtype=np.int64)
    people.extra["business_heads"] = heads


def _life_events(people: People, cfg: GeneratorConfig, rng: np.random.Generator, days: int) -> None:
    """Moves, e-mail changes, second CRM records and name changes, with their times."""
    n = people.n
    start_or_join = np.maximum(people.join_sec, 0)
    window_end = days * SECONDS_PER_DAY

    def time_after(base: np.ndarray) -> np.ndarray:
        return base + (rng.random(n) * np.maximum(window_end - base, 0)).astype(np.int64)

    crm = people.has_crm & ~people.is_test
    exposure = np.maximum(window_end - start_or_join, 0) / (365.0 * SECONDS_PER_DAY)
    moved = crm & (people.business < 0) & (rng.random(n) < cfg.move_rate_per_year * exposure)
    people.t_move = np.where(moved, time_after(start_or_join), NEVER)
    people.city2, people.street2, people.house2, _ = _addresses(rng, people.country)
    same_city = rng.random(n) < 0.5
    people.city2 = np.where(same_city, people.city, people.city2)
    people.postcode2 = _postcodes(rng, people.city2)
    changed = (
        crm
        & people.has_email
        & (people.business < 0)
        & ~people.couple_email
        & (rng.random(n) < cfg.email_change_rate_per_year * exposure)
    )
    people.t_email = np.where(changed, time_after(start_or_join), NEVER)

    dup = crm & (people.business < 0) & (rng.random(n) < cfg.crm_duplicate_share)
    people.dup = dup
    people.t_dup = np.where(dup, time_after(people.join_sec + 86_400), NEVER)
    kinds = rng.random((n, len(DUP_KINDS))) < 0.3
    kinds[np.arange(n), rng.integers(0, len(DUP_KINDS), size=n)] = True  # at least one
    if not people.has_email.all():
        kinds[~people.has_email, DUP_KINDS.index("second_email")] = False
    people.dup_kinds = np.where(dup, (kinds * (1 << np.arange(len(DUP_KINDS)))).sum(1), 0)

    married = (
        crm
        & people.has_email
        & (people.business < 0)
        & ~people.dup
        & ~people.couple_email
        & (rng.random(n) < cfg.marriage_share)
        & (people.join_sec < window_end - 30 * SECONDS_PER_DAY)
    )
    people.married = married
    people.t_marr = np.where(married, time_after(start_or_join + 86_400), NEVER)
    people.last_marr = np.where(
        married,
        (people.last + rng.integers(1, len(vocab.LAST_NAMES), size=n)) % len(vocab.LAST_NAMES),
        people.last,
    )


def _emails(people: People, rng: np.random.Generator) -> None:
    """Every address anyone uses, unique per mailbox except the deliberately shared ones."""
    n = people.n
    birth_year = people.extra["start_year"] + np.floor(people.birth_day / 365.25).astype(int)
    owners = np.flatnonzero(people.has_email & (people.business < 0) & ~people.is_test)
    # A partner sharing the couple's address uses the other one's mailbox.
    sharer = owners[
        (people.partner[owners] >= 0)
        & people.couple_email[owners]
        & (people.partner[owners] < owners)
    ]
    is_sharer = np.zeros(n, dtype=bool)
    is_sharer[sharer] = True
    owners = owners[~is_sharer[owners]]
    changed = np.flatnonzero(people.t_email < NEVER)
    second = np.flatnonzero(
        people.dup & (people.dup_kinds & (1 << DUP_KINDS.index("second_email")) > 0)
    )
    married = np.flatnonzero(people.married)
    blocks = [owners, changed, second, married]
    who = np.concatenate(blocks)
    last = people.last[who].copy()
    last[len(who) - len(married) :] = people.last_marr[married]
    named = _name_emails(rng, people.first[who], last, people.country[who], birth_year[who])

    # Role addresses of businesses and test accounts complete the list.

    heads = people.extra["business_heads"]
    tld = np.array(["de", "at", "nl", "co.uk", "se", "com"])
    company = pc.binary_join_element_wise(
        _ASCII_LAST.take(pa.array(people.last[heads])),
        take(
            [w.lower() for w in vocab.COMPANY_WORDS],
            rng.integers(0, len(vocab.COMPANY_WORDS), size=len(heads)),
        ),
        "-",
    )
    roles = pc.binary_join_element_wise(
        take(vocab.ROLE_MAILBOXES, rng.integers(0, len(vocab.ROLE_MAILBOXES), size=len(heads))),
        "@",
        company,
        ".",
        pa.array(tld[people.country[heads]]),
        "",
    )
    tests = people.extra["test_rows"]
    test_emails = pc.binary_join_element_wise(
        take(("test", "qa", "test.user", "qa+checkout", "testkunde"), np.arange(len(tests)) % 5),
        int_strings(np.arange(len(tests))),
        "@",
        take(vocab.TEST_DOMAINS, np.arange(len(tests)) % len(vocab.TEST_DOMAINS)),
        "",
    )
    emails = _make_unique(rng, pa.concat_arrays([named, roles, test_emails]))
    people.emails = emails

    starts = np.cumsum([0] + [len(b) for b in blocks])
    people.email0 = np.full(n, -1, dtype=np.int64)
    people.email0[owners] = starts[0] + np.arange(len(owners))
    partner = people.partner[sharer]
    people.email0[sharer] = people.email0[partner]
    people.email_b = np.full(n, -1, dtype=np.int64)
    people.email_b[changed] = starts[1] + np.arange(len(changed))
    people.email_dup = people.email0.copy()
    people.email_dup[second] = starts[2] + np.arange(len(second))
    people.email_marr = np.full(n, -1, dtype=np.int64)
    people.email_marr[married] = starts[3] + np.arange(len(married))
    group = people.business
    members = np.flatnonzero(group >= 0)
    people.email0[members] = len(named) + group[members]
    people.email_dup[members] = people.email0[members]
    people.email0[tests] = len(named) + len(heads) + np.arange(len(tests))
    people.email_dup[tests] = people.email0[tests]


def _cards_cookies_stores(people: People, cfg: GeneratorConfig, rng: np.random.Generator) -> None:
    n = people.n
    card_p = np.clip(cfg.loyalty_card_share * (0.75 + 0.5 * (1 - people.online_share)), 0, 0.98)
    people.has_card = people.has_crm & ~people.is_test & (rng.random(n) < card_p)
    holders = np.flatnonzero(people.has_card)
    cards = fixed_ids("LC", scramble_mod(holders + 1, 10**10), 10)
    people.card_ids = take(cards, np.where(people.has_card, np.cumsum(people.has_card) - 1, -1))

    # Cookies: one per person who browses or reads e-mail, a second device for some.
    has_a = ~people.offline | people.has_email
    has_b = ~people.offline & (rng.random(n) < cfg.second_cookie_share)
    people.cookie_a = np.where(has_a, np.cumsum(has_a) - 1, -1)
    n_a = int(has_a.sum())
    people.cookie_b = np.where(has_b, n_a + np.cumsum(has_b) - 1, -1)
    people.t_cookie_b = people.join_sec + rng.integers(0, 200, size=n) * SECONDS_PER_DAY
    people.n_cookies_total = n_a + int(has_b.sum())
    people.cookie_owner = np.concatenate([np.flatnonzero(has_a), np.flatnonzero(has_b)])
    device_a = rng.choice(3, size=n_a, p=[0.45, 0.45, 0.10])
    device_b = np.where(device_a[people.cookie_a[has_b]] == 1, 0, 1)
    people.cookie_device = np.concatenate([device_a, device_b]).astype(np.int8)
    salt = np.uint64(rng.integers(0, 2**62))
    people.cookie_ids = hex_ids("", np.arange(people.n_cookies_total, dtype=np.uint64) + salt, 16)

    # Home store: one of the stores in the person's country.
    store_country = np.array([COUNTRY_CODES.index(c) for c in store_countries(cfg.n_stores)])
    people.home_store = np.empty(n, dtype=np.int64)
    for c in range(len(COUNTRY_CODES)):
        rows = np.flatnonzero(people.country == c)
        stores = np.flatnonzero(store_country == c)
        people.home_store[rows] = stores[rng.integers(0, len(stores), size=len(rows))]


def store_countries(n_stores: int) -> list[str]:
    """Stores per country in proportion to customers, at least one each."""
    shares = np.array([vocab.COUNTRIES[c]["share"] for c in COUNTRY_CODES])
    counts = np.maximum(1, np.round(shares * (n_stores - len(shares))).astype(int))
    return [c for c, k in zip(COUNTRY_CODES, counts, strict=True) for _ in range(k)]


def scramble_mod(values: np.ndarray, modulus: int) -> np.ndarray:
    """Unique, random-looking numbers below `modulus` (10**k) for distinct inputs below it.

    Multiplication by a constant coprime to the modulus is a bijection modulo it; inputs stay
    below 2**30 so the product fits in int64.
    """
    values = np.asarray(values, dtype=np.int64)
    if len(values) and values.max() >= 2**30:
        raise ValueError("too many values to scramble")
    return (values * 7_919_000_007) % modulus
