"""Web events: browsing, the sessions behind online orders, and newsletter opens and clicks.

Browsing is a Poisson process per person at the person's web rate while alive; after dropout
the rate decays exponentially (time constant `web_decay_days`), and so does the newsletter
open probability (`email_decay_days`). That fading is the signal a model seeing web behaviour
can use and one seeing purchases only cannot. Built a week at a time to bound memory.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from journeys.contract import EVENT_TYPES
from journeys.sample import vocab
from journeys.sample.commerce import Baskets, Catalog, Lines
from journeys.sample.config import ONLINE_HOURS, GeneratorConfig
from journeys.sample.consent import EmailConsent
from journeys.sample.export import Table
from journeys.sample.people import NEVER, People, draw_tod
from journeys.sample.textio import SECONDS_PER_DAY, Clock, fixed_ids, hex_ids

BROWSE, PURCHASE, CLICK, OPEN = 0, 1, 2, 3
T = {name: i for i, name in enumerate(EVENT_TYPES)}
DEVICES = ("desktop", "mobile", "tablet")
CAMPAIGNS = ("brand", "spring-sale", "summer-sale", "black-week", "retargeting", "new-in")


@dataclass
class OnlineOrders:
    """What the web needs about shop orders: when, by whom, logged in as whom, which lines."""

    baskets: Baskets
    lines: Lines
    crm_rec: np.ndarray  # account's CRM record if the checkout was logged in, else -1
    email_ver: np.ndarray


@dataclass
class WebChunk:
    table: Table
    event_person: np.ndarray
    login_day_person: tuple[np.ndarray, np.ndarray]


def quoted(values: pa.Array) -> pa.Array:
    """Values as JSON string literals, plus a final `null` entry for index -1."""
    return pa.concat_arrays(
        [pc.binary_join_element_wise('"', values.cast(pa.string()), '"', ""), pa.array(["null"])]
    )


def _qtake(vocabulary: pa.Array, index: np.ndarray) -> pa.Array:
    """Take from a quoted vocabulary; index -1 means null (its last entry)."""
    index = np.asarray(index, dtype=np.int64)
    return vocabulary.take(pa.array(np.where(index < 0, len(vocabulary) - 1, index)))


class WebSimulator:
    """Generates the web events of consecutive day ranges; state carries the id counters."""

    def __init__(
        self,
        people: People,
        orders: OnlineOrders,
        consent: EmailConsent,
        catalog: Catalog,
        crm_ids: pa.Array,
        cfg: GeneratorConfig,
        clock: Clock,
        seed_salt: int,
    ) -> None:
        self.people, self.orders, self.consent = people, orders, consent
        self.catalog, self.crm_ids, self.cfg, self.clock = catalog, crm_ids, cfg, clock
        self.next_event = 1
        self.next_session = 0
        self.salt = np.uint64(seed_salt)
        n_pages = len(vocab.PAGE_URLS)
        self.n_pages = n_pages
        self.urls = pa.concat_arrays(
            [
                pa.array(vocab.PAGE_URLS, pa.string()),
                pc.binary_join_element_wise("/p/", catalog.skus, ""),
                pa.array(["/checkout", "/login"], pa.string()),
            ]
        )
        self.browsers = np.flatnonzero(people.web_rate > 0)
        utm = vocab.UTM_SOURCES
        self.quoted = {  # vocabularies as JSON literals, null as the last entry
            "event_type": quoted(pa.array(EVENT_TYPES)),
            "cookie": quoted(people.cookie_ids),
            "email": quoted(people.emails),
            "crm": quoted(crm_ids),
            "sku": quoted(catalog.skus),
            "url": quoted(self.urls),
            "device": quoted(pa.array(DEVICES)),
            "utm_source": quoted(pa.array([u for u, _ in utm] + ["newsletter"])),
            "utm_medium": quoted(pa.array([m for _, m in utm] + ["email"])),
            "campaign": quoted(
                pa.concat_arrays(
                    [
                        pa.array(CAMPAIGNS),
                        pc.binary_join_element_wise(
                            "nl-", clock.dates(np.arange(clock.first_day, clock.last_day + 1)), ""
                        ),
                    ]
                )
            ),
        }

    # -- sessions --------------------------------------------------------------------------
    def _browse(self, a: int, b: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Browse session starts in [a, b): alive at full rate, then fading after dropout."""
        p = self.people
        who = self.browsers
        rate = p.web_rate[who] / SECONDS_PER_DAY
        lo = np.maximum(p.join_sec[who], a)
        dropout = p.dropout_sec[who]
        alive_hi = np.minimum(dropout, b)
        alive_len = np.maximum(alive_hi - lo, 0)
        n_alive = rng.poisson(rate * alive_len)
        tau = self.cfg.web_decay_days * SECONDS_PER_DAY
        dead_lo = np.maximum(lo, np.minimum(dropout, b))
        has_dead = (dropout < b) & (dead_lo < b)
        e_lo = np.exp(-np.clip(dead_lo - dropout, 0, None) / tau)
        e_hi = np.exp(-np.clip(b - dropout, 0, None) / tau)
        n_dead = rng.poisson(np.where(has_dead, rate * tau * (e_lo - e_hi), 0.0))
        person = np.concatenate([np.repeat(who, n_alive), np.repeat(who, n_dead)])
        u = rng.random(len(person))
        k = len(person) - n_dead.sum()
        start_alive = np.repeat(lo, n_alive) + (u[:k] * np.repeat(alive_len, n_alive))
        lo_d, hi_d = np.repeat(e_lo, n_dead), np.repeat(e_hi, n_dead)
        start_dead = np.repeat(dropout, n_dead) - tau * np.log(lo_d - u[k:] * (lo_d - hi_d))
        start = np.concatenate([start_alive, start_dead]).astype(np.int64)
        start = np.clip(start, a, b - 1)
        day = start // SECONDS_PER_DAY
        start = np.maximum(
            day * SECONDS_PER_DAY + draw_tod(rng, len(start), ONLINE_HOURS), p.join_sec[person]
        )
        return person, start

    def _newsletters(
        self, a: int, b: int, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Opens of the weekly newsletter sent in [a, b): person, open time, send day."""
        p, cfg = self.people, self.cfg
        people_, times, sends = [], [], []
        for day in range(a // SECONDS_PER_DAY, b // SECONDS_PER_DAY):
            if self.clock.date(day).weekday() != cfg.newsletter_weekday:
                continue
            send = day * SECONDS_PER_DAY + 8 * 3600
            who = np.flatnonzero(
                self.consent.opted_in(np.arange(p.n), send) & ~p.is_test & (p.join_sec <= send)
            )
            since = np.maximum(send - p.dropout_sec[who], 0) / SECONDS_PER_DAY
            fade = np.where(p.dropout_sec[who] <= send, np.exp(-since / cfg.email_decay_days), 1.0)
            opened = who[rng.random(len(who)) < p.open_prob[who] * fade]
            when = send + (rng.exponential(6 * 3600, size=len(opened))).astype(np.int64)
            people_.append(opened)
            times.append(np.minimum(when, b - 1))
            sends.append(np.full(len(opened), day))
        if not people_:
            z = np.zeros(0, dtype=np.int64)
            return z, z, z
        return np.concatenate(people_), np.concatenate(times), np.concatenate(sends)

    # -- events ----------------------------------------------------------------------------
    def chunk(self, first_day: int, n_days: int, rng: np.random.Generator) -> WebChunk:
        p, cfg, orders = self.people, self.cfg, self.orders
        a, b = first_day * SECONDS_PER_DAY, (first_day + n_days) * SECONDS_PER_DAY
        b_person, b_start = self._browse(a, b, rng)
        o_rows = np.flatnonzero((orders.baskets.sec >= a) & (orders.baskets.sec < b))
        n_person, n_open, n_send = self._newsletters(a, b, rng)
        clicked = rng.random(len(n_person)) < cfg.newsletter_click
        c_person = n_person[clicked]
        c_start = np.minimum(n_open[clicked] + rng.integers(5, 120, size=clicked.sum()), b - 1)

        kind = np.concatenate(
            [
                np.full(len(b_person), BROWSE),
                np.full(len(o_rows), PURCHASE),
                np.full(len(c_person), CLICK),
                np.full(len(n_person), OPEN),
            ]
        )
        person = np.concatenate([b_person, orders.baskets.person[o_rows], c_person, n_person])
        start = np.concatenate([b_start, orders.baskets.sec[o_rows], c_start, n_open])
        order_row = np.concatenate(
            [np.full(len(b_person), -1), o_rows, np.full(len(c_person) + len(n_person), -1)]
        )
        campaign_day = np.concatenate(
            [np.full(len(b_person) + len(o_rows), -1), n_send[clicked], n_send]
        )
        s = len(person)

        # Which cookie: the second device sometimes, a partner's family computer sometimes.
        cookie = p.cookie_a[person].copy()
        second = (
            (p.cookie_b[person] >= 0)
            & (start >= p.t_cookie_b[person])
            & (rng.random(s) < cfg.second_device_session_share)
            & (kind != OPEN)
        )
        cookie = np.where(second, p.cookie_b[person], cookie)
        partner = p.partner[person]
        family = p.couple_computer[person] & (kind != OPEN)
        family &= rng.random(s) < cfg.family_computer_session_share
        family &= p.cookie_a[np.maximum(partner, 0)] >= 0
        cookie = np.where(family, p.cookie_a[np.maximum(partner, 0)], cookie)

        # Session shape.
        arch = p.archetype[person]
        n_lines = np.where(kind == PURCHASE, orders.baskets.n_lines[np.maximum(order_row, 0)], 0)
        views = n_lines + rng.poisson(1.0, size=s)
        crm_rec, email_ver = p.account_at(person, start, rng)
        can_login = (crm_rec >= 0) & (email_ver >= 0)
        login_share = np.array([x.login_share for x in cfg.archetypes])[arch]
        logs_in = np.where(
            kind == PURCHASE,
            orders.crm_rec[np.maximum(order_row, 0)] >= 0,
            can_login & (kind != OPEN) & (rng.random(s) < login_share),
        )
        crm_rec = np.where(kind == PURCHASE, orders.crm_rec[np.maximum(order_row, 0)], crm_rec)
        email_ver = np.where(
            kind == PURCHASE, orders.email_ver[np.maximum(order_row, 0)], email_ver
        )
        browse_len = np.minimum(rng.geometric(1.0 / cfg.events_per_session, size=s), 40)
        n_events = (
            np.select(
                [kind == PURCHASE, kind == OPEN, kind == CLICK],
                [1 + views + n_lines + 1, 1, np.minimum(rng.geometric(0.4, size=s), 20)],
                browse_len,
            )
            + logs_in
        )
        login_pos = np.where(
            ~logs_in,
            NEVER,
            np.where(
                kind == PURCHASE,
                1 + views + n_lines,
                1 + (rng.random(s) * (n_events - 1)).astype(np.int64),
            ),
        )

        total = int(n_events.sum())
        sess = np.repeat(np.arange(s), n_events)
        first = np.cumsum(n_events) - n_events
        pos = np.arange(total) - first[sess]
        gap = (rng.exponential(40.0, size=total) + 2).astype(np.int64)
        gap[first] = 0
        offset = np.cumsum(gap)
        offset -= offset[first][sess]
        duration = offset[first + n_events - 1]
        day_start = (start // SECONDS_PER_DAY) * SECONDS_PER_DAY
        begin = np.where(kind == PURCHASE, start - 60 - duration, start)
        begin = np.minimum(np.maximum(begin, day_start), day_start + SECONDS_PER_DAY - 1 - duration)
        begin = np.maximum(begin, day_start)
        event_sec = begin[sess] + offset
        event_sec = np.minimum(event_sec, day_start[sess] + SECONDS_PER_DAY - 1)
        event_sec = np.where(
            kind[sess] == PURCHASE, np.minimum(event_sec, start[sess] - 1), event_sec
        )

        # Event types.
        ks = kind[sess]
        cart = np.array([x.cart_propensity for x in cfg.archetypes])[arch][sess]
        r = rng.random(total)
        etype = np.select(
            [r < cart, r < cart + 0.02, r < cart + 0.05, r < cart + 0.35],
            [T["add_to_cart"], T["remove_from_cart"], T["checkout_started"], T["page_view"]],
            T["product_view"],
        )
        is_login = pos == login_pos[sess]
        after_login = pos > login_pos[sess]
        # Purchase sessions: landing, product views, add to cart per line, (login), checkout.
        v, nl = views[sess], n_lines[sess]
        body = pos - after_login
        purchase_type = np.select(
            [body == 0, body <= v, body <= v + nl],
            [T["page_view"], T["product_view"], T["add_to_cart"]],
            T["checkout_started"],
        )
        etype = np.where(ks == PURCHASE, purchase_type, etype)
        etype = np.where((pos == 0) & (ks == BROWSE), T["page_view"], etype)
        etype = np.where((pos == 0) & (ks == CLICK), T["email_click"], etype)
        etype = np.where(ks == OPEN, T["email_open"], etype)
        etype = np.where(is_login, T["login"], etype)
        # Removing or checking out needs something in the cart earlier in the session.
        is_add = etype == T["add_to_cart"]
        added = np.cumsum(is_add)
        added_before = added - is_add - (added[first] - is_add[first])[sess]
        needs_cart = (etype == T["remove_from_cart"]) | (etype == T["checkout_started"])
        etype = np.where(
            needs_cart & (added_before <= 0) & (ks != PURCHASE), T["product_view"], etype
        )

        # Products: the order's lines in purchase sessions, preferences elsewhere.
        product_event = np.isin(etype, (T["product_view"], T["add_to_cart"], T["remove_from_cart"]))
        day = event_sec // SECONDS_PER_DAY
        sku = np.full(total, -1, dtype=np.int64)
        rows = np.flatnonzero(product_event & (ks != PURCHASE))
        who = person[sess[rows]]
        u = rng.random(len(rows)).astype(np.float32)
        cat = np.zeros(len(rows), dtype=np.int64)
        for c in range(p.cat_cum.shape[1] - 1):
            cat += u > p.cat_cum[:, c][who]
        sku[rows] = self.catalog.sample(cat, p.archetype[who], day[rows], rng)
        rows = np.flatnonzero(product_event & (ks == PURCHASE))
        o = order_row[sess[rows]]
        k = np.where(
            etype[rows] == T["add_to_cart"],
            body[rows] - 1 - v[rows],
            (body[rows] - 1) % np.maximum(nl[rows], 1),
        )
        sku[rows] = orders.lines.sku[orders.baskets.line_start[o] + np.clip(k, 0, nl[rows] - 1)]

        url = np.select(
            [
                sku >= 0,
                etype == T["checkout_started"],
                etype == T["login"],
                etype == T["email_open"],
            ],
            [
                self.n_pages + np.maximum(sku, 0),
                self.n_pages + len(self.catalog.category),
                self.n_pages + len(self.catalog.category) + 1,
                -1,
            ],
            rng.integers(0, self.n_pages, size=total),
        )
        url = np.where((pos == 0) & (ks == BROWSE) & (rng.random(total) < 0.5), 0, url)

        # Landing attribution on the first event: an index into the UTM vocabularies.
        paid = (pos == 0) & np.isin(ks, (BROWSE, PURCHASE)) & (rng.random(total) < 0.35)
        mailed = (pos == 0) & np.isin(ks, (CLICK, OPEN))
        n_utm = len(vocab.UTM_SOURCES)
        utm = np.where(mailed, n_utm, np.where(paid, rng.integers(0, n_utm, size=total), -1))
        campaign = np.where(
            mailed,
            len(CAMPAIGNS) + campaign_day[sess] - self.clock.first_day,
            np.where(paid, rng.integers(0, len(CAMPAIGNS), size=total), -1),
        )

        # Chronological order within the chunk; ids follow it.
        order = np.lexsort((pos, sess, event_sec))
        sess, pos, event_sec, etype, sku, url, utm, campaign = (
            x[order] for x in (sess, pos, event_sec, etype, sku, url, utm, campaign)
        )
        identified = pos >= login_pos[sess]
        # A newsletter open is reported by the e-mail service, which knows the recipient: it
        # carries the address it was sent to (never the CRM id), logged in or not.
        mailed_to = identified | (kind[sess] == OPEN)
        numbers = self.next_event + np.arange(total)
        self.next_event += total
        session_ids = pa.concat_arrays(
            [
                hex_ids(
                    '"s',
                    self.next_session + np.arange(s, dtype=np.uint64) + self.salt,
                    16,  # all 64 bits: a bijection, so no two sessions share an id
                    suffix='"',
                ),
                pa.array(["null"]),
            ]
        )
        self.next_session += s
        ev_cookie = cookie[sess]
        ev_person = person[sess]
        q = self.quoted
        # Every column is a JSON literal (quoted string or null): one join makes the lines.
        columns = {
            "event_id": fixed_ids('"ev', numbers, 11, suffix='"'),
            "event_at": self.clock.timestamps(event_sec, quoted=True),
            "event_type": _qtake(q["event_type"], etype),
            "anonymous_id": _qtake(q["cookie"], ev_cookie),
            "user_email": _qtake(q["email"], np.where(mailed_to, email_ver[sess], -1)),
            "crm_id": _qtake(q["crm"], np.where(identified, crm_rec[sess], -1)),
            "session_id": _qtake(session_ids, np.where(kind[sess] == OPEN, -1, sess)),
            "sku": _qtake(q["sku"], sku),
            "url": _qtake(q["url"], url),
            "device": _qtake(q["device"], p.cookie_device[ev_cookie]),
            "utm_source": _qtake(q["utm_source"], utm),
            "utm_medium": _qtake(q["utm_medium"], utm),
            "utm_campaign": _qtake(q["campaign"], campaign),
        }
        event_ids = fixed_ids("ev", numbers, 11)
        test = np.flatnonzero(p.is_test[ev_person] & mailed_to)
        login = etype == T["login"]
        table = Table(
            columns,
            event_sec // SECONDS_PER_DAY,
            event_ids,
            ev_person,
            [(test, "test_account", None)],
            json_literals=True,
        )
        return WebChunk(table, ev_person, (event_sec[login] // SECONDS_PER_DAY, ev_person[login]))
