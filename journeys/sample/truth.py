"""Ground truth for evaluating churn models on generated data.

`churn_truth` gives the realised label and an oracle probability that knows each person's
latent purchase rate and whether they are still alive. `purchase_optimum` is the best a
purchases-only model can do: the BG/NBD probability of no purchase given each person's observed
history (x, t_x, T), with the generator's true population parameters (Fader, Hardie & Lee 2005,
"Counting your customers the easy way"). Archetypes have different parameters, so the
population is a mixture: each archetype's posterior is weighted by its prior share (given when
the person joined: before or during the generated period) times the BG/NBD likelihood of the
person's history under that archetype. Time is measured in days from the person's join date,
the start of their purchase process; a purchase's time of day is redrawn within its day, so
t_x is exact to within a day.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.compute as pc
import pyarrow.parquet as pq
from scipy.special import betaln, gammaln, hyp2f1

SECONDS_PER_DAY = 86_400


def _params(truth_dir: Path) -> dict:
    return json.loads((Path(truth_dir) / "generator.json").read_text())


def _check_window(params: dict, snapshot: date, horizon_days: int) -> None:
    start = date.fromisoformat(params["start"])
    last_export = start + timedelta(days=params["days"] - 1)
    last_simulated = start + timedelta(days=params["days"] + params["config"]["future_days"] - 1)
    if not start <= snapshot <= last_export:
        raise ValueError(f"snapshot {snapshot} outside the exported period {start}..{last_export}")
    if snapshot + timedelta(days=horizon_days) > last_simulated:
        raise ValueError(
            f"horizon ends after the last simulated day {last_simulated}; "
            "generate with a larger future_days"
        )


def _people(truth_dir: Path, snapshot: date) -> pd.DataFrame:
    """Real (non-test) people who had joined by the end of the snapshot day."""
    persons = pq.read_table(
        Path(truth_dir) / "persons.parquet",
        columns=[
            "person_id",
            "archetype",
            "is_test_account",
            "lambda_per_day",
            "joined_at",
            "joined_date",
            "dropout_date",
            "first_identified_date",
        ],
    )
    keep = pc.and_(
        pc.invert(persons["is_test_account"]), pc.less_equal(persons["joined_date"], snapshot)
    )
    return persons.filter(keep).to_pandas()


def _purchases(truth_dir: Path) -> pd.DataFrame:
    return pq.read_table(
        Path(truth_dir) / "purchases.parquet",
        columns=["person_id", "purchased_at", "purchase_date"],
    ).to_pandas()


def churn_truth(truth_dir: Path, snapshot_date: date, horizon_days: int) -> pd.DataFrame:
    """Per person joined by the snapshot: churned, oracle probability, known to the pipeline.

    - churned: no completed purchase dated in (snapshot, snapshot + horizon].
    - oracle_probability: P(churned) knowing the latent state at the snapshot: 1.0 if the
      person had dropped out, else exp(-lambda * horizon) (a dropout needs a purchase first).
    - is_known: a record naming the person (CRM, order, card receipt, login, consent) had been
      delivered by the snapshot, so a pipeline can score them at all.
    Test accounts are excluded.
    """
    params = _params(truth_dir)
    _check_window(params, snapshot_date, horizon_days)
    people = _people(truth_dir, snapshot_date)
    buys = _purchases(truth_dir)
    end = snapshot_date + timedelta(days=horizon_days)
    in_horizon = buys[(buys["purchase_date"] > snapshot_date) & (buys["purchase_date"] <= end)]
    bought = people["person_id"].isin(in_horizon["person_id"].unique())
    dead = people["dropout_date"].notna() & (people["dropout_date"] <= snapshot_date)
    oracle = np.where(dead, 1.0, np.exp(-people["lambda_per_day"].to_numpy() * horizon_days))
    known = people["first_identified_date"].notna() & (
        people["first_identified_date"] <= snapshot_date
    )
    return pd.DataFrame(
        {
            "person_id": people["person_id"].to_numpy(),
            "churned": ~bought.to_numpy(),
            "oracle_probability": oracle,
            "is_known": known.to_numpy(),
        }
    )


# --- BG/NBD closed forms (Fader, Hardie & Lee 2005) -------------------------------------------


def bgnbd_log_likelihood(
    x: np.ndarray, t_x: np.ndarray, T: np.ndarray, r: float, alpha: float, a: float, b: float
) -> np.ndarray:
    """log L(r, alpha, a, b | x, t_x, T) of one person's history (eq. 6)."""
    x = np.asarray(x, dtype=float)
    common = gammaln(r + x) - gammaln(r) + r * np.log(alpha) - betaln(a, b)
    term_alive = common + betaln(a, b + x) - (r + x) * np.log(alpha + T)
    with np.errstate(divide="ignore", invalid="ignore"):
        term_dead = common + betaln(a + 1, b + x - 1) - (r + x) * np.log(alpha + t_x)
    return np.where(
        x > 0, np.logaddexp(term_alive, np.where(x > 0, term_dead, -np.inf)), term_alive
    )


def bgnbd_p_alive(
    x: np.ndarray, t_x: np.ndarray, T: np.ndarray, r: float, alpha: float, a: float, b: float
) -> np.ndarray:
    """P(alive at T | x, t_x, T) (eq. 11)."""
    x = np.asarray(x, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_ratio = (
            np.log(a) - np.log(b + x - 1) + (r + x) * (np.log(alpha + T) - np.log(alpha + t_x))
        )
    return np.where(x > 0, 1.0 / (1.0 + np.exp(np.where(x > 0, log_ratio, 0.0))), 1.0)


def bgnbd_expected_purchases(
    t: float,
    x: np.ndarray,
    t_x: np.ndarray,
    T: np.ndarray,
    r: float,
    alpha: float,
    a: float,
    b: float,
) -> np.ndarray:
    """E[purchases in (T, T + t] | x, t_x, T] (eq. 10)."""
    x = np.asarray(x, dtype=float)
    ratio = ((alpha + T) / (alpha + T + t)) ** (r + x)
    tail = hyp2f1(r + x, b + x, a + b + x - 1, t / (alpha + T + t))
    return (
        (a + b + x - 1) / (a - 1) * (1.0 - ratio * tail) * bgnbd_p_alive(x, t_x, T, r, alpha, a, b)
    )


def bgnbd_p_no_purchase(
    t: float,
    x: np.ndarray,
    t_x: np.ndarray,
    T: np.ndarray,
    r: float,
    alpha: float,
    a: float,
    b: float,
) -> np.ndarray:
    """P(no purchase in (T, T + t] | x, t_x, T): dead, or alive and no Poisson event.

    Alive, the rate's posterior is Gamma(r + x, alpha + T), and a dropout needs a purchase
    first, so P(no purchase | alive) = ((alpha + T) / (alpha + T + t))^(r + x).
    """
    p_alive = bgnbd_p_alive(x, t_x, T, r, alpha, a, b)
    quiet = ((alpha + T) / (alpha + T + t)) ** (r + np.asarray(x, dtype=float))
    return 1.0 - p_alive + p_alive * quiet


def purchase_optimum(truth_dir: Path, snapshot_date: date, horizon_days: int) -> pd.DataFrame:
    """BG/NBD P(no purchase in the horizon) from each person's purchases up to the snapshot.

    Uses the true (r, alpha, a, b) of every archetype and their true prior shares; the result
    is the Bayes-optimal churn probability for a model that sees purchases (all channels,
    identities perfectly resolved) and join dates only. Columns: person_id, frequency,
    recency_days, age_days, p_alive, expected_purchases, probability_no_purchase.
    """
    params = _params(truth_dir)
    _check_window(params, snapshot_date, horizon_days)
    cfg = params["config"]
    start = date.fromisoformat(params["start"])
    people = _people(truth_dir, snapshot_date)
    buys = _purchases(truth_dir)
    buys = buys[buys["purchase_date"] <= snapshot_date]
    stats = buys.groupby("person_id")["purchased_at"].agg(["count", "max"])
    joined = people.set_index("person_id")["joined_at"]
    stats = stats.reindex(joined.index)
    x = stats["count"].fillna(0).to_numpy(dtype=float)
    end = pd.Timestamp(snapshot_date + timedelta(days=1), tz="UTC")
    age = ((end - joined).dt.total_seconds() / SECONDS_PER_DAY).to_numpy()
    last = stats["max"].fillna(joined)
    recency = ((last - joined).dt.total_seconds() / SECONDS_PER_DAY).to_numpy()
    recency = np.clip(recency, 0.0, age)

    archetypes = cfg["archetypes"]
    weights = np.array([a["weight"] for a in archetypes])
    before_share = cfg["pre_start_share"] * np.array(
        [a["joins_before_start"] for a in archetypes], dtype=float
    )
    joined_before = (people["joined_date"] < start).to_numpy()
    # Prior share of each archetype given the join cohort (Bayes on how joins were drawn).
    prior = np.where(joined_before[:, None], weights * before_share, weights * (1.0 - before_share))
    prior /= prior.sum(axis=1, keepdims=True)
    log_post = np.empty((len(x), len(archetypes)))
    no_buy = np.empty_like(log_post)
    alive = np.empty_like(log_post)
    expected = np.empty_like(log_post)
    h = float(horizon_days)
    for k, arch in enumerate(archetypes):  # a loop over the few archetypes
        theta = (arch["r"], arch["alpha"], arch["a"], arch["b"])
        with np.errstate(divide="ignore"):
            log_post[:, k] = np.log(prior[:, k]) + bgnbd_log_likelihood(x, recency, age, *theta)
        no_buy[:, k] = bgnbd_p_no_purchase(h, x, recency, age, *theta)
        alive[:, k] = bgnbd_p_alive(x, recency, age, *theta)
        expected[:, k] = bgnbd_expected_purchases(h, x, recency, age, *theta)
    log_post -= log_post.max(axis=1, keepdims=True)
    post = np.exp(log_post)
    post /= post.sum(axis=1, keepdims=True)
    return pd.DataFrame(
        {
            "person_id": joined.index.to_numpy(),
            "frequency": x.astype(np.int64),
            "recency_days": recency,
            "age_days": age,
            "p_alive": np.clip((post * alive).sum(axis=1), 0.0, 1.0),
            "expected_purchases": (post * expected).sum(axis=1),
            "probability_no_purchase": np.clip((post * no_buy).sum(axis=1), 0.0, 1.0),
        }
    )
