"""Catalog, exchange rates, true purchases (BG/NBD) and their shop orders and store receipts.

Purchases are simulated per person as a buy-till-you-die process, all people at once:
while alive, purchases arrive as a Poisson process with the person's rate lambda; after each
purchase the person drops out with probability p. The number of purchases until dropout is
Geometric(p); the purchases of a Poisson process on [join, end] are M ~ Poisson(lambda*L)
uniform order statistics, so the first min(K, M) of them are exactly the purchases made.
Only completed purchases are "true" purchases; cancelled and refunded orders are extra
orders placed around them and never count as purchases in the truth.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from scipy.signal import lfilter

from journeys.sample import vocab
from journeys.sample.config import ONLINE_HOURS, STORE_HOURS, GeneratorConfig
from journeys.sample.export import Table
from journeys.sample.people import (
    COUNTRY_CODES,
    COUNTRY_CURRENCY,
    CURRENCIES,
    NEVER,
    People,
    draw_tod,
    store_countries,
)
from journeys.sample.textio import SECONDS_PER_DAY, Clock, decimal6, fixed_ids, money, take

NEVER_DAY = 10**9
STATUSES = ("completed", "cancelled", "refunded")


# --- catalog ------------------------------------------------------------------------------


@dataclass
class Catalog:
    skus: pa.Array
    category: np.ndarray
    names: pa.Array
    brands: pa.Array
    launch_day: np.ndarray
    retire_day: np.ndarray
    update_days: np.ndarray  # price version v applies from update_days[v - 1]
    price: np.ndarray  # (versions, products) list price in EUR cents
    anchors: np.ndarray  # per category: a product sold throughout (fallback when sampling)
    sampling: list[tuple[np.ndarray, np.ndarray]]  # per archetype: (cumulative keys, product)
    changes: dict[int, np.ndarray]  # delivery day -> products delivered that day

    def price_at(self, sku: np.ndarray, day: np.ndarray) -> np.ndarray:
        version = np.searchsorted(self.update_days, day, side="right")
        return self.price[version, sku]

    def sold(self, sku: np.ndarray, day: np.ndarray) -> np.ndarray:
        return (self.launch_day[sku] <= day) & (day < self.retire_day[sku])

    def sample(
        self, category: np.ndarray, archetype: np.ndarray, day: np.ndarray, rng: np.random.Generator
    ) -> np.ndarray:
        """Products people pick: by category, popularity and their archetype's price taste."""
        sku = np.empty(len(category), dtype=np.int64)
        todo = np.arange(len(category))
        for _ in range(4):  # redraw products not on sale that day
            u = rng.random(len(todo))
            for k, (keys, products) in enumerate(self.sampling):
                rows = np.flatnonzero(archetype[todo] == k)
                pos = np.searchsorted(keys, category[todo[rows]] + u[rows], side="right")
                sku[todo[rows]] = products[np.minimum(pos, len(products) - 1)]
            todo = todo[~self.sold(sku[todo], day[todo])]
            if not len(todo):
                break
        sku[todo] = self.anchors[category[todo]]
        return sku

    def delivery(self, day: int) -> pa.Table:
        """The catalog/products file of a day: everything on day 0, then changes only."""
        products = self.changes.get(day, np.array([], dtype=np.int64))
        version = np.searchsorted(self.update_days, day, side="right")
        cents = self.price[version, products]
        return pa.table(
            {
                "sku": self.skus.take(pa.array(products)),
                "category": take(vocab.CATEGORIES, self.category[products]),
                "name": self.names.take(pa.array(products)),
                "brand": self.brands.take(pa.array(products)),
                "list_price": money(cents).cast(pa.decimal128(10, 2)),
                "currency": pa.repeat("EUR", len(products)),
                "is_active": pa.array(self.retire_day[products] > day),
            }
        )


def _nice_price(cents: np.ndarray) -> np.ndarray:
    """Prices end in .99, as on a shelf."""
    return np.maximum(np.round(cents / 100.0) * 100 - 1, 99).astype(np.int64)


def build_catalog(cfg: GeneratorConfig, rng: np.random.Generator, days: int) -> Catalog:
    n_cat = len(vocab.CATEGORIES)
    step = cfg.catalog_update_every_days
    updates = np.arange(step, days, step) + rng.integers(-3, 4, size=len(range(step, days, step)))
    updates = np.unique(np.clip(updates, 1, max(days - 1, 1)))
    updates = updates[updates < days]
    n_new = 2 * len(updates)
    n0 = max(cfg.n_products, n_cat)
    n = n0 + n_new
    popularity = np.array([0.2, 0.14, 0.12, 0.12, 0.1, 0.1, 0.12, 0.1])
    category = np.concatenate(
        [
            np.arange(n_cat),
            rng.choice(n_cat, size=n0 - n_cat, p=popularity),
            rng.choice(n_cat, size=n_new, p=popularity),
        ]
    )
    launch = np.concatenate([np.full(n0, -NEVER_DAY), np.repeat(updates, 2)])
    retire = np.full(n, NEVER_DAY, dtype=np.int64)
    base = np.array(vocab.CATEGORY_PRICE)[category] * np.exp(rng.normal(0, 0.45, size=n))
    price = np.empty((len(updates) + 1, n), dtype=np.int64)
    price[0] = _nice_price(base * 100)
    changes: dict[int, np.ndarray] = {0: np.flatnonzero(launch <= 0)}
    for v, day in enumerate(updates, start=1):  # a loop over a few dozen catalog updates
        price[v] = price[v - 1]
        on_sale = np.flatnonzero((launch < day) & (retire > day))
        repriced = on_sale[rng.random(len(on_sale)) < 0.04]
        price[v, repriced] = _nice_price(
            price[v - 1, repriced] * rng.uniform(0.85, 1.15, len(repriced))
        )
        retirable = on_sale[on_sale >= n_cat]  # anchors stay on sale
        retired = rng.choice(
            retirable, size=min(len(retirable), int(rng.integers(0, 3))), replace=False
        )
        retire[retired] = day
        launched = np.flatnonzero(launch == day)
        changes[int(day)] = np.unique(np.concatenate([repriced, retired, launched]))

    nouns = [(c, w) for c in vocab.CATEGORIES for w in vocab.CATEGORY_NOUNS[c]]
    noun_of = np.empty(n, dtype=np.int64)
    for c, name in enumerate(vocab.CATEGORIES):
        rows = np.flatnonzero(category == c)
        options = np.flatnonzero(np.array([cc == name for cc, _ in nouns]))
        noun_of[rows] = options[rng.integers(0, len(options), size=len(rows))]
    brands = take(vocab.BRANDS, rng.integers(0, len(vocab.BRANDS), size=n))
    names = pc.binary_join_element_wise(
        brands,
        take(vocab.ADJECTIVES, rng.integers(0, len(vocab.ADJECTIVES), size=n)),
        take([w for _, w in nouns], noun_of),
        " ",
    )

    # Sampling tables: popularity within a category, tilted by each archetype's price taste.
    rank = np.empty(n, dtype=np.int64)
    for c in range(n_cat):
        rows = np.flatnonzero(category == c)
        rank[rows] = rng.permutation(len(rows))
    pop = 1.0 / (rank + 3.0) ** 1.1
    median = np.array([np.median(base[category == c]) for c in range(n_cat)])
    sampling = []
    order = np.lexsort((np.arange(n), category))
    for arch in cfg.archetypes:
        weight = pop * (base / median[category]) ** (2.0 * np.log(arch.price_level))
        w = weight[order]
        cat = category[order]
        cum = np.cumsum(w)
        cat_start = np.searchsorted(cat, np.arange(n_cat))
        cat_total = np.add.reduceat(w, cat_start)
        before = np.concatenate([[0.0], cum])[cat_start][cat]
        keys = cat + (cum - before) / cat_total[cat]
        keys[np.r_[cat_start[1:] - 1, n - 1]] = np.arange(1, n_cat + 1)  # exact upper ends
        sampling.append((keys, order))
    return Catalog(
        skus=fixed_ids("SKU-", 10001 + np.arange(n), 5),
        category=category,
        names=names,
        brands=brands,
        launch_day=launch,
        retire_day=retire,
        update_days=updates,
        price=price,
        anchors=np.arange(n_cat),
        sampling=sampling,
        changes=changes,
    )


# --- exchange rates -------------------------------------------------------------------------


@dataclass
class Fx:
    first_day: int
    micros: np.ndarray  # (currencies, days): EUR millionths per unit of currency

    def at(self, currency: np.ndarray, day: np.ndarray) -> np.ndarray:
        return self.micros[currency, np.asarray(day) - self.first_day]

    def table(self, first_day: int, last_day: int) -> tuple[dict[str, pa.Array], np.ndarray]:
        """Rate rows for days [first_day, last_day], all non-reporting currencies."""
        days = np.arange(first_day, last_day + 1)
        cur = np.arange(1, len(CURRENCIES))
        day, currency = np.repeat(days, len(cur)), np.tile(cur, len(days))
        return {"day": day, "currency": currency, "rate": decimal6(self.at(currency, day))}, day


def build_fx(cfg: GeneratorConfig, rng: np.random.Generator, first_day: int, last_day: int) -> Fx:
    n_days = last_day - first_day + 1
    micros = np.full((len(CURRENCIES), n_days), 1_000_000, dtype=np.int64)
    for k, code in enumerate(CURRENCIES[1:], start=1):
        # Log-rate as an AR(1) around the start rate: daily noise, slowly pulled back.
        shocks = rng.normal(0.0, cfg.fx_daily_volatility, size=n_days)
        walk = lfilter([1.0], [1.0, -(1.0 - cfg.fx_mean_reversion)], shocks)
        micros[k] = np.round(cfg.fx_start[code] * np.exp(walk) * 1e6).astype(np.int64)
    return Fx(first_day, micros)


# --- purchases -----------------------------------------------------------------------------


@dataclass
class Baskets:
    """Orders or receipts (or true purchases): one row each, lines in `Lines`."""

    person: np.ndarray
    sec: np.ndarray
    online: np.ndarray
    currency: np.ndarray
    line_start: np.ndarray
    n_lines: np.ndarray
    total: np.ndarray  # sum of quantity * unit price, cents of `currency`
    discount: np.ndarray
    amount_eur: np.ndarray  # paid (total - discount) in EUR cents


@dataclass
class Lines:
    owner: np.ndarray
    line_number: np.ndarray
    sku: np.ndarray
    quantity: np.ndarray
    unit_price: np.ndarray
    discount: np.ndarray


def simulate_purchases(
    people: People, cfg: GeneratorConfig, rng: np.random.Generator, days: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """True purchases (person, time, online) from join to the end of the future tail.

    Sets people.dropout_sec: the time of the purchase after which the person dropped out.
    """
    n = people.n
    end_sec = (days + cfg.future_days) * SECONDS_PER_DAY
    length = (end_sec - people.join_sec) / SECONDS_PER_DAY
    m = rng.poisson(people.lam * length)
    k = rng.geometric(people.p)
    who = np.repeat(np.arange(n), m)
    key = who + rng.random(len(who))
    key.sort()  # sorts by person, then by uniform position within the person's window
    u = key - who
    rank = np.arange(len(who)) - np.repeat(np.cumsum(m) - m, m)
    keep = rank < k[who]
    who, u = who[keep], u[keep]
    sec = people.join_sec[who] + (u * length[who] * SECONDS_PER_DAY).astype(np.int64)
    online = rng.random(len(who)) < people.online_share[who]
    day = sec // SECONDS_PER_DAY
    tod = np.where(
        online, draw_tod(rng, len(who), ONLINE_HOURS), draw_tod(rng, len(who), STORE_HOURS)
    )
    sec = np.maximum(day * SECONDS_PER_DAY + tod, people.join_sec[who] + 60)

    dropped = m >= k
    last = np.full(n, -NEVER, dtype=np.int64)
    np.maximum.at(last, who, sec)
    people.dropout_sec = np.where(dropped, last, NEVER)
    order = np.lexsort((who, sec))
    return who[order], sec[order], online[order]


def make_baskets(
    people: People,
    catalog: Catalog,
    fx: Fx,
    cfg: GeneratorConfig,
    person: np.ndarray,
    sec: np.ndarray,
    online: np.ndarray,
    rng: np.random.Generator,
) -> tuple[Baskets, Lines]:
    """What people put in their baskets, priced in their currency on that day."""
    arch = people.archetype[person]
    mean_lines = np.array([a.basket_lines for a in cfg.archetypes])[arch]
    n_lines = np.minimum(1 + rng.poisson(mean_lines - 1), 12)
    starts = np.cumsum(n_lines) - n_lines
    owner = np.repeat(np.arange(len(person)), n_lines)
    line_number = np.arange(len(owner)) - starts[owner] + 1
    who = person[owner]
    day = (sec // SECONDS_PER_DAY)[owner]
    u = rng.random(len(owner)).astype(np.float32)
    category = np.zeros(len(owner), dtype=np.int64)
    for c in range(people.cat_cum.shape[1] - 1):
        category += u > people.cat_cum[:, c][who]
    sku = catalog.sample(category, arch[owner], day, rng)
    quantity = rng.choice(np.array([1, 2, 3]), size=len(owner), p=[0.82, 0.13, 0.05])
    currency = COUNTRY_CURRENCY[people.country[person]]
    eur = catalog.price_at(sku, day)
    rate = fx.at(currency[owner], day)
    unit = np.where(currency[owner] == 0, eur, np.round(eur * 1e6 / rate)).astype(np.int64)
    share = np.array([a.discount_share for a in cfg.archetypes])[arch[owner]]
    discounted = online[owner] & (rng.random(len(owner)) < share)
    pct = rng.choice(np.array([0.1, 0.15, 0.2, 0.25, 0.3]), size=len(owner))
    discount = np.where(discounted, np.round(quantity * unit * pct), 0).astype(np.int64)
    gross = quantity * unit
    total = np.add.reduceat(gross, starts) if len(owner) else np.zeros(0, np.int64)
    disc = np.add.reduceat(discount, starts) if len(owner) else np.zeros(0, np.int64)
    paid_eur = np.round((total - disc) * fx.at(currency, sec // SECONDS_PER_DAY) / 1e6)
    baskets = Baskets(
        person, sec, online, currency, starts, n_lines, total, disc, paid_eur.astype(np.int64)
    )
    return baskets, Lines(owner, line_number, sku, quantity, unit, discount)


def subset(baskets: Baskets, lines: Lines, rows: np.ndarray) -> tuple[Baskets, Lines]:
    """Baskets `rows` (in that order) with their lines, renumbered."""
    n_lines = baskets.n_lines[rows]
    new_start = np.cumsum(n_lines) - n_lines
    take_lines = np.repeat(baskets.line_start[rows] - new_start, n_lines) + np.arange(n_lines.sum())
    b = Baskets(
        *(getattr(baskets, f)[rows] for f in ("person", "sec", "online", "currency")),
        new_start,
        n_lines,
        baskets.total[rows],
        baskets.discount[rows],
        baskets.amount_eur[rows],
    )
    owner = np.repeat(np.arange(len(rows)), n_lines)
    ln = Lines(
        owner,
        lines.line_number[take_lines],
        lines.sku[take_lines],
        lines.quantity[take_lines],
        lines.unit_price[take_lines],
        lines.discount[take_lines],
    )
    return b, ln


def concat(a: tuple[Baskets, Lines], b: tuple[Baskets, Lines]) -> tuple[Baskets, Lines]:
    ba, la = a
    bb, lb = b
    n_a, lines_a = len(ba.person), len(la.owner)
    baskets = Baskets(
        *(
            np.concatenate([getattr(ba, f), getattr(bb, f)])
            for f in ("person", "sec", "online", "currency")
        ),
        np.concatenate([ba.line_start, bb.line_start + lines_a]),
        *(
            np.concatenate([getattr(ba, f), getattr(bb, f)])
            for f in ("n_lines", "total", "discount", "amount_eur")
        ),
    )
    lines = Lines(
        np.concatenate([la.owner, lb.owner + n_a]),
        *(
            np.concatenate([getattr(la, f), getattr(lb, f)])
            for f in ("line_number", "sku", "quantity", "unit_price", "discount")
        ),
    )
    return baskets, lines


# --- shop orders and store receipts ---------------------------------------------------------


@dataclass
class SalesExport:
    """One channel's export tables plus what the truth needs about them."""

    headers: Table
    lines: Table
    keys: pa.Array  # one key per order/receipt
    person: np.ndarray
    first_delivery: np.ndarray  # per order/receipt: the day its first row was delivered
    purchase_row: np.ndarray  # the true purchase an order/receipt is (-1 for extra ones)
    identifies: np.ndarray  # whether the row names the person (e-mail, crm_id, card)
    baskets: Baskets  # per order/receipt, in key order
    basket_lines: Lines
    crm_rec: np.ndarray | None = None  # the account used (orders only)
    email_ver: np.ndarray | None = None
    logged_in: np.ndarray | None = None  # the order carries the crm_id: a logged-in checkout


def _extras(
    baskets: Baskets,
    rows: np.ndarray,
    rate_cancel: float,
    rate_refund: float,
    rng: np.random.Generator,
    store: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Orders that do not count as purchases: cancelled ones before, refunded ones after."""
    r = rng.random(len(rows))
    cancel = r < rate_cancel
    refund = ~cancel & (r < rate_cancel + rate_refund)
    base = baskets.sec[rows]
    when = np.where(
        cancel,
        base - rng.integers(600, 7200, size=len(rows)),
        base + rng.integers(1, 6, size=len(rows)) * SECONDS_PER_DAY,
    )
    if store:  # a later store visit, during opening hours
        when = (when // SECONDS_PER_DAY) * SECONDS_PER_DAY + draw_tod(rng, len(rows), STORE_HOURS)
    status_sec = np.where(
        cancel,
        when + rng.integers(1800, 48 * 3600, size=len(rows)),
        when + rng.integers(3, 21, size=len(rows)) * SECONDS_PER_DAY,
    )
    status = np.where(cancel, 1, 2)
    chosen = cancel | refund
    return rows[chosen], when[chosen], status_sec[chosen], status[chosen]


EMAIL_NOISE = ("plus_tag", "gmail_dots", "case", "whitespace")  # bit i of the noise mask


def noisy_emails(
    emails: pa.Array, cfg: GeneratorConfig, rng: np.random.Generator
) -> tuple[pa.Array, pa.Array]:
    """How people type their address at checkout: case, spaces, gmail dots and +tags.

    Returns the typed addresses and, per row, the noise applied ("" if none, "a+b" if two).
    """
    m = len(emails)
    bits = np.zeros(m, dtype=np.int64)
    present = ~np.asarray(pc.is_null(emails).to_numpy(zero_copy_only=False))
    gmail = present & np.asarray(
        pc.fill_null(pc.ends_with(emails, "@gmail.com"), False).to_numpy(zero_copy_only=False)
    )
    tag = gmail & (rng.random(m) < cfg.plus_tag_noise)
    dots = gmail & ~tag & (rng.random(m) < cfg.gmail_dots_noise)
    upper = present & (rng.random(m) < cfg.email_case_noise)
    spaced = present & (rng.random(m) < cfg.email_whitespace_noise)
    for bit, mask in enumerate((tag, dots, upper, spaced)):
        rows = np.flatnonzero(mask)
        if not len(rows):
            continue
        bits[rows] |= 1 << bit
        typed = emails.take(pa.array(rows))
        if bit < 2:  # gmail ignores dots and +tags: the same mailbox, another spelling
            local = pc.list_element(pc.split_pattern(typed, "@"), 0)
            if bit == 0:
                local = pc.binary_join_element_wise(
                    local, take(("+shop", "+deals", "+news", "+orders"), rows % 4), ""
                )
            else:
                dotted = pc.binary_join_element_wise(
                    pc.utf8_slice_codeunits(local, 0, 1), pc.utf8_slice_codeunits(local, 1), "."
                )
                has_dot = pc.match_substring(local, ".")
                local = pc.if_else(has_dot, pc.replace_substring(local, ".", ""), dotted)
            typed = pc.binary_join_element_wise(local, "gmail.com", "@")
        elif bit == 2:
            typed = pc.if_else(
                pa.array(rows % 2 == 0), pc.utf8_upper(typed), pc.utf8_capitalize(typed)
            )
        else:
            pad, trail = take((" ", "", " "), rows % 3), take(("", " ", "  "), rows % 3)
            typed = pc.binary_join_element_wise(pad, typed, trail, "")
        emails = pc.replace_with_mask(emails, pa.array(mask), typed)
    names = ["+".join(n for i, n in enumerate(EMAIL_NOISE) if c >> i & 1) for c in range(16)]
    return emails, take(names, bits)


def build_shop(
    people: People,
    purchases: Baskets,
    purchase_lines: Lines,
    catalog: Catalog,
    fx: Fx,
    cfg: GeneratorConfig,
    crm_ids: pa.Array,
    clock: Clock,
    days: int,
    rng: np.random.Generator,
) -> SalesExport:
    window_end = days * SECONDS_PER_DAY
    base_rows = np.flatnonzero(purchases.online & (purchases.sec < window_end))
    extra_rows, extra_sec, status_sec, status = _extras(
        purchases, base_rows, cfg.cancel_rate, cfg.refund_rate, rng, store=False
    )
    extra_sec = np.maximum(extra_sec, people.join_sec[purchases.person[extra_rows]] + 30)
    fits = extra_sec < window_end
    extra_rows, extra_sec, status_sec, status = (
        a[fits] for a in (extra_rows, extra_sec, status_sec, status)
    )
    person_x = purchases.person[extra_rows]
    extras = make_baskets(
        people, catalog, fx, cfg, person_x, extra_sec, np.ones(len(extra_rows), bool), rng
    )
    orders, lines = concat(subset(purchases, purchase_lines, base_rows), extras)
    purchase_row = np.concatenate([base_rows, np.full(len(extra_rows), -1)])
    final_status = np.concatenate([np.zeros(len(base_rows), np.int64), status])
    final_sec = np.concatenate([np.full(len(base_rows), NEVER), status_sec])

    order = np.lexsort((orders.person, orders.sec))
    orders, lines = subset(orders, lines, order)
    purchase_row, final_status, final_sec = (
        purchase_row[order],
        final_status[order],
        final_sec[order],
    )
    n = len(orders.person)
    width = max(9, len(str(n)))
    keys = fixed_ids("O", np.arange(1, n + 1), width)

    # Who the order names: the account in use then, with or without crm_id / e-mail.
    crm_rec, email_ver = people.account_at(orders.person, orders.sec, rng)
    with_crm = (crm_rec >= 0) & (rng.random(n) < cfg.order_with_crm_id_share)
    with_email = (email_ver >= 0) & ~(with_crm & (rng.random(n) < cfg.order_without_email_share))
    with_crm |= ~with_email & (crm_rec >= 0)
    email, email_noise = noisy_emails(
        take(people.emails, np.where(with_email, email_ver, -1)), cfg, rng
    )
    crm_id = take(crm_ids, np.where(with_crm, crm_rec, -1))

    order_day = orders.sec // SECONDS_PER_DAY
    late = (order_day >= 0) & (rng.random(n) < cfg.late_order_rate)
    delivered = np.minimum(
        np.maximum(order_day, 0)
        + np.where(late, rng.integers(1, cfg.late_max_days + 1, size=n), 0),
        days - 1,
    )
    late &= delivered > np.maximum(order_day, 0)

    # Row versions: as placed, then (cancelled/refunded) with a later updated_at.
    updated = final_sec < window_end
    update_day = np.maximum(final_sec // SECONDS_PER_DAY, delivered)
    first_row = ~(updated & (update_day == delivered))  # same delivery: final state only
    row_order = np.concatenate([np.flatnonzero(first_row), np.flatnonzero(updated)])
    is_update = np.concatenate([np.zeros(first_row.sum(), bool), np.ones(updated.sum(), bool)])
    row_day = np.where(is_update, update_day[row_order], delivered[row_order])
    row_sec = np.where(is_update, final_sec[row_order], orders.sec[row_order])
    sort = np.lexsort((is_update, row_order, row_sec, row_day))
    row_order, is_update, row_day, row_sec = (
        a[sort] for a in (row_order, is_update, row_day, row_sec)
    )
    row_status = np.where(is_update | ~first_row[row_order], final_status[row_order], 0)
    ro = pa.array(row_order)
    postcode = people.postcode_at(orders.person, orders.sec)
    postcode = pc.if_else(
        pa.array(rng.random(n) < cfg.missing_shipping_postcode),
        pa.scalar(None, pa.string()),
        postcode,
    )
    columns = {
        "order_id": keys.take(ro),
        "ordered_at": clock.timestamps(orders.sec[row_order]),
        "status": take(STATUSES, row_status),
        "currency": take(CURRENCIES, orders.currency[row_order]),
        "total_amount": money(orders.total[row_order]),
        "customer_email": email.take(ro),
        "crm_id": crm_id.take(ro),
        "updated_at": clock.timestamps(row_sec),
        "shipping_postcode": postcode.take(ro),
        "discount_amount": money(orders.discount[row_order]),
    }
    noise = email_noise.take(ro)
    noisy = np.flatnonzero(np.asarray(pc.not_equal(noise, "").to_numpy(zero_copy_only=False)))
    test = np.flatnonzero(people.is_test[orders.person[row_order]])
    defects = [
        (np.flatnonzero(~is_update & late[row_order]), "late_arrival", None),
        (np.flatnonzero(is_update & (row_status == 1)), "cancelled", "status"),
        (np.flatnonzero(is_update & (row_status == 2)), "refunded", "status"),
        (test, "test_account", None),
    ]
    headers = Table(columns, row_day, columns["order_id"], orders.person[row_order], defects)
    if len(noisy):
        headers.defects.append(
            (
                noisy,
                pc.binary_join_element_wise("email_noise:", noise.take(pa.array(noisy)), ""),
                "customer_email",
            )
        )

    lines_table = _line_table(
        keys, lines, delivered, catalog.skus, with_discount=True, key_name="order_id"
    )
    return SalesExport(
        headers,
        lines_table,
        keys,
        orders.person,
        delivered,
        purchase_row,
        np.ones(n, bool),
        orders,
        lines,
        crm_rec,
        email_ver,
        with_crm,
    )


def _line_table(
    keys: pa.Array,
    lines: Lines,
    delivered: np.ndarray,
    skus: pa.Array,
    with_discount: bool,
    key_name: str,
) -> Table:
    """Lines go out with their order's first delivery, in the order's position."""
    day = delivered[lines.owner]
    sort = np.lexsort((lines.line_number, lines.owner, day))
    owner = lines.owner[sort]
    line_no = lines.line_number[sort]
    order_key = keys.take(pa.array(owner))
    number = pc.cast(pa.array(line_no), pa.string())
    columns = {
        key_name: order_key,
        "line_number": number,
        "sku": skus.take(pa.array(lines.sku[sort])),
        "quantity": pc.cast(pa.array(lines.quantity[sort]), pa.string()),
        "unit_price": money(lines.unit_price[sort]),
    }
    if with_discount:
        columns["discount_amount"] = money(lines.discount[sort])
    line_keys = pc.binary_join_element_wise(order_key, number, "|")
    return Table(columns, day[sort], line_keys, np.zeros(0, np.int64), [])


def build_pos(
    people: People,
    purchases: Baskets,
    purchase_lines: Lines,
    catalog: Catalog,
    fx: Fx,
    cfg: GeneratorConfig,
    clock: Clock,
    days: int,
    rng: np.random.Generator,
) -> SalesExport:
    window_end = days * SECONDS_PER_DAY
    base_rows = np.flatnonzero(~purchases.online & (purchases.sec < window_end))
    extra_rows, extra_sec, status_sec, status = _extras(
        purchases, base_rows, 0.0, cfg.pos_refund_rate, rng, store=True
    )
    fits = extra_sec < window_end
    extra_rows, extra_sec, status_sec = extra_rows[fits], extra_sec[fits], status_sec[fits]
    extras = make_baskets(
        people,
        catalog,
        fx,
        cfg,
        purchases.person[extra_rows],
        extra_sec,
        np.zeros(len(extra_rows), bool),
        rng,
    )
    receipts, lines = concat(subset(purchases, purchase_lines, base_rows), extras)
    purchase_row = np.concatenate([base_rows, np.full(len(extra_rows), -1)])
    final_sec = np.concatenate([np.full(len(base_rows), NEVER), status_sec])
    order = np.lexsort((receipts.person, receipts.sec))
    receipts, lines = subset(receipts, lines, order)
    purchase_row, final_sec = purchase_row[order], final_sec[order]
    n = len(receipts.person)
    keys = fixed_ids("R", np.arange(1, n + 1), max(10, len(str(n))))

    stores = store_countries(cfg.n_stores)
    store_country = np.array([COUNTRY_CODES.index(c) for c in stores])
    home = people.home_store[receipts.person]
    elsewhere = rng.random(n) < cfg.other_store_share
    country = people.country[receipts.person]
    # Another store in the same country: the next one of that country's stores.
    per_country = [np.flatnonzero(store_country == c) for c in range(len(COUNTRY_CODES))]
    alt = np.empty(n, dtype=np.int64)
    for c, options in enumerate(per_country):
        rows = np.flatnonzero(country == c)
        alt[rows] = options[rng.integers(0, len(options), size=len(rows))]
    store = np.where(elsewhere, alt, home)
    shows_card = people.has_card[receipts.person] & (rng.random(n) < cfg.show_card_share)
    card = pc.if_else(
        pa.array(shows_card),
        people.card_ids.take(pa.array(receipts.person)),
        pa.scalar(None, pa.string()),
    )

    delivered = np.maximum(receipts.sec // SECONDS_PER_DAY, 0)
    updated = final_sec < window_end
    update_day = np.maximum(final_sec // SECONDS_PER_DAY, delivered)
    first_row = ~(updated & (update_day == delivered))
    row_order = np.concatenate([np.flatnonzero(first_row), np.flatnonzero(updated)])
    is_update = np.concatenate([np.zeros(first_row.sum(), bool), np.ones(updated.sum(), bool)])
    row_day = np.where(is_update, update_day[row_order], delivered[row_order])
    row_sec = np.where(is_update, final_sec[row_order], receipts.sec[row_order])
    sort = np.lexsort((is_update, row_order, row_sec, row_day))
    row_order, is_update, row_day, row_sec = (
        a[sort] for a in (row_order, is_update, row_day, row_sec)
    )
    refunded = is_update | ~first_row[row_order]
    legacy = ~refunded & (rng.random(len(row_order)) < cfg.legacy_till_share)
    ro = pa.array(row_order)
    columns = {
        "receipt_id": keys.take(ro),
        "store_id": fixed_ids("S", store[row_order] + 1, 3),
        "purchased_at": clock.timestamps(receipts.sec[row_order]),
        "currency": take(CURRENCIES, receipts.currency[row_order]),
        "total_amount": money(receipts.total[row_order]),
        "loyalty_card_id": card.take(ro),
        "status": take(STATUSES, np.where(legacy, -1, np.where(refunded, 2, 0))),
        "updated_at": pc.if_else(
            pa.array(legacy), pa.scalar(None, pa.string()), clock.timestamps(row_sec)
        ),
    }
    test = np.flatnonzero(people.is_test[receipts.person[row_order]])
    defects = [(np.flatnonzero(is_update), "refunded", "status"), (test, "test_account", None)]
    headers = Table(columns, row_day, columns["receipt_id"], receipts.person[row_order], defects)
    lines_table = _line_table(
        keys, lines, delivered, catalog.skus, with_discount=False, key_name="receipt_id"
    )
    return SalesExport(
        headers,
        lines_table,
        keys,
        receipts.person,
        delivered,
        purchase_row,
        shows_card,
        receipts,
        lines,
    )
