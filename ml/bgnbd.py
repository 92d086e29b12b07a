"""BG/NBD ("buy till you die", Fader, Hardie & Lee 2005), written with numpy and scipy.

While alive a customer buys as a Poisson process with rate lambda ~ Gamma(r, alpha); after every
purchase they drop out with probability p ~ Beta(a, b). The closed forms below give each
customer's likelihood, P(alive), expected purchases and P(no purchase) in the next t days from
their history (x, t_x, T):

- x: purchases counted by the model,
- t_x: time of the last of them,
- T: time observed,

all in days from the start of the customer's purchase process. The pipeline measures it from the
day the customer was first seen (sign-up, first order or first loyalty-card receipt) and counts
every purchase, as the sample generator's truth does, so a single purchase followed by silence
can mean "gone" (the textbook variant counts repeat purchases only and never lets a one-time
buyer die).

Fitting is maximum likelihood on the distinct (x, t_x, T) triples with their counts, so a
million customers cost what a few tens of thousands of distinct histories cost.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize
from scipy.special import betaln, gammaln, hyp2f1

# Distinct histories beyond this are sampled (with their weights) before fitting.
MAX_FIT_HISTORIES = 50_000


@dataclass(frozen=True)
class BgNbdParams:
    r: float
    alpha: float
    a: float
    b: float

    def as_dict(self) -> dict[str, float]:
        return {"r": self.r, "alpha": self.alpha, "a": self.a, "b": self.b}


def log_likelihood(x: np.ndarray, t_x: np.ndarray, T: np.ndarray, p: BgNbdParams) -> np.ndarray:
    """log L(r, alpha, a, b | x, t_x, T) per customer (eq. 6 of the paper)."""
    x = np.asarray(x, dtype=float)
    r, alpha, a, b = p.r, p.alpha, p.a, p.b
    common = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    alive = common + betaln(a, b + x) - betaln(a, b) - (r + x) * np.log(alpha + T)
    with np.errstate(divide="ignore", invalid="ignore"):
        dead = (
            common
            + betaln(a + 1, np.maximum(b + x - 1, 1e-12))
            - betaln(a, b)
            - (r + x) * np.log(alpha + t_x)
        )
    return np.where(x > 0, np.logaddexp(alive, np.where(x > 0, dead, -np.inf)), alive)


def p_alive(x: np.ndarray, t_x: np.ndarray, T: np.ndarray, p: BgNbdParams) -> np.ndarray:
    """P(still alive at T | history) (eq. 11)."""
    x = np.asarray(x, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_ratio = (
            np.log(p.a)
            - np.log(np.maximum(p.b + x - 1, 1e-12))
            + (p.r + x) * (np.log(p.alpha + T) - np.log(p.alpha + t_x))
        )
    return np.where(x > 0, 1.0 / (1.0 + np.exp(np.clip(log_ratio, -700, 700))), 1.0)


def p_no_purchase(
    t: float, x: np.ndarray, t_x: np.ndarray, T: np.ndarray, p: BgNbdParams
) -> np.ndarray:
    """P(no purchase in (T, T + t] | history): gone, or alive and the Poisson clock is silent.

    Alive, the rate's posterior is Gamma(r + x, alpha + T); a dropout needs a purchase first, so
    P(no purchase | alive) = ((alpha + T) / (alpha + T + t)) ** (r + x).
    """
    alive = p_alive(x, t_x, T, p)
    quiet = ((p.alpha + T) / (p.alpha + T + t)) ** (p.r + np.asarray(x, dtype=float))
    return np.clip(1.0 - alive + alive * quiet, 0.0, 1.0)


def expected_purchases(
    t: float, x: np.ndarray, t_x: np.ndarray, T: np.ndarray, p: BgNbdParams
) -> np.ndarray:
    """E[purchases in (T, T + t] | history] (eq. 10).

    The closed form is analytic in a except at a = 1 (where both of its factors vanish); near
    it, or wherever the hypergeometric series fails, the no-further-dropout approximation
    P(alive) * t * (r + x) / (alpha + T) stands in.
    """
    x = np.asarray(x, dtype=float)
    r, alpha, a, b = p.r, p.alpha, p.a, p.b
    alive = p_alive(x, t_x, T, p)
    approximation = alive * t * (r + x) / (alpha + T)
    if abs(a - 1.0) < 1e-3:
        return approximation
    with np.errstate(all="ignore"):
        ratio = ((alpha + T) / (alpha + T + t)) ** (r + x)
        tail = hyp2f1(r + x, b + x, a + b + x - 1, t / (alpha + T + t))
        value = (a + b + x - 1) / (a - 1) * (1.0 - ratio * tail) * alive
    ok = np.isfinite(value) & (value >= 0)
    return np.where(ok, value, approximation)


def fit(x: np.ndarray, t_x: np.ndarray, T: np.ndarray, seed: int = 7) -> BgNbdParams:
    """Maximum-likelihood (r, alpha, a, b) over every customer's history.

    Distinct histories are fitted once with their counts as weights; optimisation runs on
    log-parameters (all four are positive) with L-BFGS-B, starting from the method-of-moments
    guess of the purchase rate.
    """
    hist = np.column_stack([np.asarray(x, float), np.asarray(t_x, float), np.asarray(T, float)])
    if len(hist) == 0:
        raise ValueError("no purchase histories to fit")
    unique, weights = np.unique(hist, axis=0, return_counts=True)
    if len(unique) > MAX_FIT_HISTORIES:
        rng = np.random.default_rng(seed)
        keep = rng.choice(len(unique), MAX_FIT_HISTORIES, replace=False, p=weights / weights.sum())
        unique, weights = unique[keep], np.ones(MAX_FIT_HISTORIES)
    ux, utx, uT = unique.T
    weights = weights.astype(float)
    rate = max(float((ux * weights).sum() / max((uT * weights).sum(), 1.0)), 1e-4)

    def loss(theta: np.ndarray) -> float:
        r, alpha, a, b = np.exp(theta)
        ll = log_likelihood(ux, utx, uT, BgNbdParams(r, alpha, a, b))
        value = -float((weights * ll).sum()) / weights.sum()
        return value if np.isfinite(value) else 1e10

    start = np.log([1.0, 1.0 / rate, 1.5, 3.0])
    bounds = [(-7.0, 7.0), (-5.0, 12.0), (-7.0, 7.0), (-7.0, 9.0)]
    result = minimize(loss, start, method="L-BFGS-B", bounds=bounds)
    r, alpha, a, b = np.exp(result.x)
    return BgNbdParams(float(r), float(alpha), float(a), float(b))
