"""Consent events per channel: opt-ins at signup or later, opt-outs, re-opt-ins.

Opt-outs come at a slow rate while a person is active and, for part of those who dropped out,
some weeks after dropping out. The e-mail channel's state also decides who gets newsletters.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from journeys.contract import CHANNELS
from journeys.sample.config import GeneratorConfig
from journeys.sample.crm import phone_strings
from journeys.sample.export import Table
from journeys.sample.people import NEVER, People
from journeys.sample.textio import SECONDS_PER_DAY, Clock, fixed_ids, take

UNKNOWN_CHANNELS = ("whatsapp", "postal", "E-Mail")


@dataclass
class EmailConsent:
    """Per person: opt-in, opt-out and re-opt-in times of the e-mail channel (NEVER if none)."""

    opt_in: np.ndarray
    opt_out: np.ndarray
    re_opt_in: np.ndarray

    def opted_in(self, person: np.ndarray, t: np.ndarray | int) -> np.ndarray:
        return (t >= self.opt_in[person]) & (
            (t < self.opt_out[person]) | (t >= self.re_opt_in[person])
        )


def _exp_seconds(rng: np.random.Generator, mean_days: float, n: int) -> np.ndarray:
    return (rng.exponential(mean_days, size=n) * SECONDS_PER_DAY).astype(np.int64)


def build_consent(
    people: People,
    crm_ids: pa.Array,
    cfg: GeneratorConfig,
    clock: Clock,
    days: int,
    rng: np.random.Generator,
) -> tuple[Table, EmailConsent]:
    n = people.n
    window_end = days * SECONDS_PER_DAY
    real = ~people.is_test
    eligible = {
        "email": real & people.has_email,
        "sms": real & people.has_phone,
        "push": real & people.has_crm & people.has_email,
        "ads": real & (people.has_crm | people.has_email),
    }
    parts = []  # (person, channel, time, status, source)
    email_state = None
    for c, channel in enumerate(CHANNELS):  # a loop over the four channels
        who = np.flatnonzero(eligible[channel])
        m = len(who)
        join = people.join_sec[who]
        signup = rng.random(m) < cfg.signup_opt_in[channel]
        late = ~signup & (rng.random(m) < cfg.late_opt_in)
        t_in = np.where(
            signup,
            join + rng.integers(0, 900, size=m),
            np.where(late, join + _exp_seconds(rng, 200, m), NEVER),
        )
        natural = t_in + _exp_seconds(rng, cfg.opt_out_mean_days, m)
        dropout = people.dropout_sec[who]
        fade = (dropout < NEVER) & (rng.random(m) < cfg.opt_out_after_dropout_share)
        after = np.maximum(
            dropout + _exp_seconds(rng, cfg.opt_out_after_dropout_mean_days, m), t_in + 3600
        )
        t_out = np.where(t_in < NEVER, np.where(fade, np.minimum(natural, after), natural), NEVER)
        t_re = np.where(
            (t_out < NEVER) & (rng.random(m) < cfg.re_opt_in_share),
            t_out + _exp_seconds(rng, 120, m),
            NEVER,
        )
        if channel == "email":
            email_state = EmailConsent(np.full(n, NEVER), np.full(n, NEVER), np.full(n, NEVER))
            email_state.opt_in[who], email_state.opt_out[who] = t_in, t_out
            email_state.re_opt_in[who] = t_re
        source_in = np.where(signup, rng.integers(0, 3, size=m), 3)
        for t, status, source in (
            (t_in, 0, source_in),
            (t_out, 1, np.full(m, 4 + (c == 1))),
            (t_re, 0, np.full(m, 3)),
        ):
            keep = t < window_end
            parts.append(
                (
                    who[keep],
                    np.full(keep.sum(), c),
                    t[keep],
                    np.full(keep.sum(), status),
                    source[keep],
                )
            )

    person, channel, t, status, source = (np.concatenate([p[i] for p in parts]) for i in range(5))
    day = np.maximum(t // SECONDS_PER_DAY, 0)
    order = np.lexsort((channel, person, t, day))
    person, channel, t, status, source, day = (
        a[order] for a in (person, channel, t, status, source, day)
    )
    m = len(person)
    keys = fixed_ids("CE", np.arange(1, m + 1), max(9, len(str(m))))

    # Identified the way each channel knows people.
    crm_rec, email_ver = people.account_at(person, t, rng)
    r = rng.random(m)
    is_email, is_sms, is_push, is_ads = (channel == k for k in range(4))
    with_email = (email_ver >= 0) & (is_email | (is_ads & ((crm_rec < 0) | (r < 0.4))))
    with_phone = is_sms & people.has_phone[person]
    with_crm = (crm_rec >= 0) & (
        is_push | (is_email & (r < 0.5)) | (is_sms & (r < 0.3)) | (is_ads & ~with_email)
    )
    phone = phone_strings(people, person, rng.integers(0, 5, size=m))
    unknown = rng.random(m) < cfg.unknown_channel_rate
    channel_str = take(CHANNELS, channel)
    channel_str = pc.if_else(
        pa.array(unknown), take(UNKNOWN_CHANNELS, np.arange(m) % len(UNKNOWN_CHANNELS)), channel_str
    )
    policy = np.where(t < -365 * SECONDS_PER_DAY, 0, np.where(t < window_end // 2, 1, 2))
    columns = {
        "consent_event_id": keys,
        "channel": channel_str,
        "status": take(("opt_in", "opt_out"), status),
        "event_at": clock.timestamps(t),
        "email": take(people.emails, np.where(with_email, email_ver, -1)),
        "crm_id": take(crm_ids, np.where(with_crm, crm_rec, -1)),
        "phone": pc.if_else(pa.array(with_phone), phone, pa.scalar(None, pa.string())),
        "source": take(
            (
                "signup_form",
                "checkout",
                "store",
                "preference_center",
                "unsubscribe_link",
                "sms_stop",
            ),
            source,
        ),
        "policy_version": take(("2023-01", "2024-06", "2025-03"), policy),
    }
    defects = [(np.flatnonzero(unknown), "unknown_channel", "channel")]
    return Table(columns, day, keys, person, defects), email_state
