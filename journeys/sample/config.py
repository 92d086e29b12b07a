"""Every rate and latent parameter of the sample generator, in one frozen dataclass.

Rates are probabilities per record or per person unless the name says otherwise; times are
days. Defaults give realistic but clearly visible defects, so each pipeline guard has work.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class Archetype:
    """A latent customer type: its buy-till-you-die parameters and how it behaves.

    Purchases while alive: Poisson with personal rate lambda ~ Gamma(shape=r, rate=alpha) per
    day; after each purchase the person drops out with personal probability p ~ Beta(a, b)
    (the BG/NBD model of Fader, Hardie & Lee 2005). Everything else (what they buy, where,
    at what price and discount, how much they browse and read the newsletter) is the type's
    own, so the types show in behaviour as they do in real shops.
    """

    name: str
    weight: float  # share of the population
    r: float
    alpha: float
    a: float  # > 1, so the BG/NBD expected-purchases formula is finite
    b: float
    online_share: tuple[float, float]  # Beta(a, b) of the share of purchases made online
    basket_lines: float  # mean number of order lines
    price_level: float  # > 1 prefers pricier products within a category
    discount_share: float  # share of online lines bought with a discount
    web_sessions_per_day: float  # browsing while alive (mean of a Gamma(2, mean/2))
    cart_propensity: float  # share of browse events that put something in the cart
    login_share: float  # share of browse sessions in which an account holder logs in
    email_open: tuple[float, float]  # Beta(a, b) of the newsletter open probability
    # Mean category preference, in the order of vocab.CATEGORIES (sums to 1); each person's
    # own preference is a Dirichlet draw around it (GeneratorConfig.category_concentration).
    category_weights: tuple[float, ...] = (0.2, 0.14, 0.12, 0.12, 0.1, 0.1, 0.12, 0.1)
    joins_before_start: bool = True  # False: joins only during the generated period


# Categories: apparel, shoes, accessories, home, beauty, electronics, sports, kids.
DEFAULT_ARCHETYPES: tuple[Archetype, ...] = (
    # Loyal high-value: frequent, big premium baskets for the home, store-leaning card
    # holders, rarely on discount, regular readers of the newsletter.
    Archetype(
        "loyal",
        0.12,
        r=3.0,
        alpha=3.0 * 365 / 6.5,
        a=2.0,
        b=40.0,
        online_share=(2.0, 5.0),
        basket_lines=3.2,
        price_level=1.5,
        discount_share=0.03,
        web_sessions_per_day=0.08,
        cart_propensity=0.12,
        login_share=0.75,
        email_open=(6.0, 6.0),
        category_weights=(0.06, 0.20, 0.04, 0.50, 0.05, 0.08, 0.04, 0.03),
    ),
    # Bargain hunter: cheap fashion online, mostly on discount, browsing for deals and
    # opening every newsletter for the next code.
    Archetype(
        "bargain_hunter",
        0.20,
        r=2.0,
        alpha=2.0 * 365 / 3.0,
        a=3.0,
        b=20.0,
        online_share=(8.0, 2.0),
        basket_lines=3.4,
        price_level=0.6,
        discount_share=0.7,
        web_sessions_per_day=0.12,
        cart_propensity=0.22,
        login_share=0.55,
        email_open=(9.0, 3.0),
        category_weights=(0.55, 0.12, 0.08, 0.04, 0.10, 0.02, 0.06, 0.03),
    ),
    # Occasional: a few family purchases a year (kids, sports), mostly in store, small
    # baskets, little browsing, seldom opens the newsletter.
    Archetype(
        "occasional",
        0.36,
        r=1.5,
        alpha=1.5 * 365 / 1.3,
        a=4.0,
        b=12.0,
        online_share=(2.0, 6.0),
        basket_lines=1.8,
        price_level=1.0,
        discount_share=0.08,
        web_sessions_per_day=0.025,
        cart_propensity=0.06,
        login_share=0.4,
        email_open=(2.0, 12.0),
        category_weights=(0.05, 0.05, 0.05, 0.07, 0.05, 0.04, 0.24, 0.45),
    ),
    # One-time: joins to buy one thing (a gadget, an accessory) online, soon, and is gone;
    # hardly browses and ignores the newsletter.
    Archetype(
        "one_time",
        0.20,
        r=2.0,
        alpha=2.0 * 365 / 4.0,
        a=8.0,
        b=2.0,
        online_share=(6.0, 2.0),
        basket_lines=1.2,
        price_level=1.4,
        discount_share=0.1,
        web_sessions_per_day=0.01,
        cart_propensity=0.3,
        login_share=0.2,
        email_open=(1.0, 25.0),
        category_weights=(0.04, 0.05, 0.08, 0.05, 0.04, 0.64, 0.06, 0.04),
    ),
    # Newcomer: joined during the period, mobile-first and online, beauty and accessories,
    # curious about the newsletter, some welcome discounts.
    Archetype(
        "newcomer",
        0.12,
        r=2.0,
        alpha=2.0 * 365 / 3.0,
        a=3.0,
        b=12.0,
        online_share=(9.0, 1.0),
        basket_lines=2.0,
        price_level=0.9,
        discount_share=0.3,
        web_sessions_per_day=0.1,
        cart_propensity=0.15,
        login_share=0.6,
        email_open=(3.0, 6.0),
        category_weights=(0.10, 0.05, 0.24, 0.04, 0.45, 0.05, 0.04, 0.03),
        joins_before_start=False,
    ),
)

# Hour-of-day weights (UTC) of online activity and of store opening hours.
ONLINE_HOURS: tuple[float, ...] = (
    0.6,
    0.3,
    0.2,
    0.1,
    0.1,
    0.2,
    0.6,
    1.4,
    2.2,
    2.6,
    2.8,
    3.0,
    3.4,
    3.2,
    2.9,
    2.8,
    3.0,
    3.4,
    4.0,
    4.6,
    5.0,
    4.6,
    3.2,
    1.6,
)
STORE_HOURS: tuple[float, ...] = (
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    2.0,
    3.0,
    3.6,
    4.0,
    3.6,
    3.4,
    3.8,
    4.4,
    5.0,
    4.6,
    3.0,
    0,
    0,
    0,
    0,
)


@dataclass(frozen=True)
class GeneratorConfig:
    archetypes: tuple[Archetype, ...] = DEFAULT_ARCHETYPES

    # --- time -----------------------------------------------------------------------------
    history_days: int = 730  # people join up to this long before start; delivered as a first load
    future_days: int = 365  # purchases simulated after the period, for churn-label truth only
    pre_start_share: float = 0.6  # share of (non-newcomer) people who joined before start

    # --- who is known where -----------------------------------------------------------------
    crm_share: float = 0.85  # people with a CRM record (the rest buy as guests or anonymously)
    loyalty_card_share: float = 0.9  # of CRM people, scaled up for store-leaning people
    show_card_share: float = 0.92  # store purchases where the card holder shows the card
    no_contact_share: float = 0.03  # CRM people with neither e-mail nor phone
    no_email_share: float = 0.05  # further people with a phone but no e-mail (store-only)
    no_phone_share: float = 0.30  # people without a phone number
    offline_share: float = 0.12  # people who never browse (they may still open e-mails)
    second_cookie_share: float = 0.2  # people with a second device / cookie
    guest_without_email_share: float = 0.3  # people without CRM record who only shop in store
    mobile_phone_share: float = 0.7  # the rest have a landline
    second_device_session_share: float = 0.4  # sessions on the second device, once it exists
    family_computer_session_share: float = 0.5  # partner sessions on the shared computer
    duplicate_account_use_share: float = 0.5  # orders/logins via the second CRM record
    other_store_share: float = 0.25  # store visits away from the home store
    order_with_crm_id_share: float = 0.75  # checkouts logged in (order carries crm_id)
    order_without_email_share: float = 0.08  # logged-in checkouts whose export lacks the email
    test_account_share: float = 0.001  # test accounts (at least 3)
    test_account_flagged_share: float = 0.8  # of test accounts, flagged is_test_account=true

    # --- identity noise ----------------------------------------------------------------------
    crm_duplicate_share: float = 0.03  # people with a second CRM record (typos, nickname, ...)
    couple_share: float = 0.05  # people living as a couple with another customer
    couple_shared_email: float = 0.35  # of couples: one e-mail address for both
    couple_shared_landline: float = 0.6  # of couples: one landline for both
    couple_shared_computer: float = 0.3  # of couples: one browser cookie both log in on
    business_share: float = 0.01  # people ordering through a small business' role address
    marriage_share: float = 0.01  # people who change their last name (new CRM record)
    move_rate_per_year: float = 0.06  # CRM address updates
    email_change_rate_per_year: float = 0.03  # CRM e-mail updates
    email_case_noise: float = 0.06  # order e-mails with changed case
    email_whitespace_noise: float = 0.04  # order e-mails with surrounding whitespace
    gmail_dots_noise: float = 0.25  # of gmail orders: dots removed / added
    plus_tag_noise: float = 0.08  # of gmail orders: a +tag alias

    # --- data defects -------------------------------------------------------------------------
    missing_birth_date: float = 0.08
    missing_gender: float = 0.12
    cancel_rate: float = 0.03  # extra online orders that get cancelled (per purchase)
    refund_rate: float = 0.02  # extra online orders that get refunded
    pos_refund_rate: float = 0.01  # extra store receipts that get refunded
    duplicate_row_rate: float = 0.004  # rows exported twice
    late_order_rate: float = 0.02  # shop orders delivered 1..late_max_days late
    late_max_days: int = 3
    malformed_rate: float = 0.002  # unparseable dates/amounts, missing values, broken JSON
    unknown_channel_rate: float = 0.004  # consent events with a channel outside the contract
    missing_shipping_postcode: float = 0.05
    legacy_till_share: float = 0.3  # store receipts without status and updated_at

    # --- consent ------------------------------------------------------------------------------
    signup_opt_in: dict[str, float] = field(
        default_factory=lambda: {"email": 0.6, "sms": 0.2, "push": 0.15, "ads": 0.35}
    )
    late_opt_in: float = 0.1  # people who opt in later rather than at signup
    opt_out_mean_days: float = 700.0  # while alive
    opt_out_after_dropout_share: float = 0.5  # who unsubscribe some weeks after dropping out
    opt_out_after_dropout_mean_days: float = 60.0
    re_opt_in_share: float = 0.15

    # --- web and e-mail -----------------------------------------------------------------------
    web_activity_scale: float = 1.0  # multiplies every browse rate
    web_decay_days: float = 12.0  # browsing fades after dropout with this time constant
    email_decay_days: float = 18.0  # newsletter opens fade after dropout
    events_per_session: float = 3.5  # mean events in a browse session
    newsletter_weekday: int = 1  # 0 = Monday
    newsletter_click: float = 0.2  # clicks per open

    # --- catalog, stores, money ---------------------------------------------------------------
    category_concentration: float = 40.0  # Dirichlet concentration of personal category tastes
    n_products: int = 320
    catalog_update_every_days: int = 14
    n_stores: int = 40
    reporting_currency: str = "EUR"
    fx_start: dict[str, float] = field(
        default_factory=lambda: {"USD": 0.92, "GBP": 1.17, "SEK": 0.088}
    )  # EUR per unit
    fx_daily_volatility: float = 0.004
    fx_mean_reversion: float = 0.02  # share of the gap to the start rate closed per day

    # --- output -------------------------------------------------------------------------------
    gzip_level: int = 1  # level 1: a third of the time of level 6 for ~20 % larger files
    web_chunk_days: int = 7  # web events are built a week at a time to bound memory

    def __post_init__(self) -> None:
        for a in self.archetypes:
            if a.a <= 1:
                raise ValueError(f"archetype {a.name}: a must be > 1 (finite BG/NBD mean)")
            if abs(sum(a.category_weights) - 1.0) > 1e-6:
                raise ValueError(f"archetype {a.name}: category_weights must sum to 1")
        if abs(sum(a.weight for a in self.archetypes) - 1.0) > 1e-9:
            raise ValueError("archetype weights must sum to 1")

    def to_dict(self) -> dict:
        return asdict(self)
