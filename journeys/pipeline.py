"""The nightly pipeline's stages: one function each, called alike by the CLI, the DAGs and tests.

Every stage takes the run date (the delivery date being processed, also the snapshot date the
features and scores are as of) and returns a small JSON-serialisable summary, so an Airflow task
can hand it to XCom as is. Heavy libraries are imported inside the stages, not here.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import date
from typing import Any

from journeys.settings import Settings, get_settings

Summary = dict[str, Any]


def land(run_date: date, settings: Settings | None = None) -> Summary:
    """Land every export delivered up to `run_date` that is not loaded yet; apply erasures."""
    from journeys.erasure import apply_erasure_requests
    from journeys.landing import land_exports

    settings = settings or get_settings()
    summary = land_exports(settings, up_to=run_date)
    summary["erasure"] = apply_erasure_requests(settings)  # after landing: tonight's rows too
    return summary


def transform(
    run_date: date, settings: Settings | None = None, full_refresh: bool = False
) -> Summary:
    """Build and test the dbt project for `run_date` (incremental models from scratch with
    `full_refresh`)."""
    from journeys.transform import build

    return build(settings or get_settings(), run_date, full_refresh=full_refresh)


def validate(run_date: date, settings: Settings | None = None) -> Summary:
    """Great Expectations gate: raises QualityGateError when a critical expectation fails."""
    from expectations.gate import validate_warehouse

    return validate_warehouse(settings or get_settings(), run_date)


def train(run_date: date, settings: Settings | None = None) -> Summary:
    """Train segmentation and churn models, tracked in MLflow."""
    from ml.train import train_models

    return train_models(settings or get_settings(), run_date)


def score(run_date: date, settings: Settings | None = None) -> Summary:
    """Score every customer with the registered models."""
    from ml.score import score_customers

    return score_customers(settings or get_settings(), run_date)


def publish(run_date: date, settings: Settings | None = None) -> Summary:
    """Swap in the new customer_segments, write the activation files, publish for analysts."""
    from journeys.analyst import publish_analyst_warehouse
    from journeys.publish import publish_segments

    settings = settings or get_settings()
    summary = publish_segments(settings, run_date)
    summary["analyst_warehouse"] = publish_analyst_warehouse(settings, run_date)  # last step
    return summary


STAGES: tuple[tuple[str, Callable[[date, Settings | None], Summary]], ...] = (
    ("land", land),
    ("transform", transform),
    ("validate", validate),
    ("train", train),
    ("score", score),
    ("publish", publish),
)


def run(
    run_date: date,
    settings: Settings | None = None,
    on_stage: Callable[[str, Summary, float], None] | None = None,
) -> dict[str, Summary]:
    """Run every stage in order for `run_date`; stop at the first failure."""
    settings = settings or get_settings()
    from journeys.segments import check_segments

    check_segments(settings)  # a bad segments.yml fails the run before anything runs
    results: dict[str, Summary] = {}
    for name, stage in STAGES:
        started = time.perf_counter()
        results[name] = stage(run_date, settings)
        if on_stage:
            on_stage(name, results[name], time.perf_counter() - started)
    return results
