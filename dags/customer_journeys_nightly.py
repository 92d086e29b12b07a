"""Customer Journeys — nightly run.

Turns the day's raw customer exports into activation-ready, consent-filtered segments:

`land` → `transform` (dbt) → `validate` (Great Expectations gate) → `train` → `score` → `publish`

Each task calls the `journeys.pipeline` stage of the same name with the run's logical date
(as a `date`), the same function the CLI and the tests call, and returns the stage's summary
(visible as the task's XCom). A failing quality gate stops the run before anything is
published. `publish` updates the asset `customer_journeys://marts/customer_segments`, so
downstream DAGs can be scheduled on it.

Configuration comes from the environment of the Airflow workers (`JOURNEYS_HOME` and friends,
see `journeys/settings.py`); the `journeys` package must be importable there.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from airflow.sdk import Asset, dag, get_current_context, task

# Downstream DAGs schedule on this exact string: `schedule=[Asset("customer_journeys://...")]`.
# (`_` is not allowed in a URI scheme, so Airflow keeps it as an opaque id and normalises nothing.)
CUSTOMER_SEGMENTS = Asset("customer_journeys://marts/customer_segments")

Summary = dict[str, Any]


def _run_date() -> date:
    """The run's logical date as a `date`: the delivery and snapshot date the stages process."""
    context = get_current_context()
    logical_date = context.get("logical_date")
    if logical_date is None:
        # Airflow 3 allows manual runs without a logical date; use when the run was due instead.
        logical_date = context["dag_run"].run_after
    # A plain date: Airflow hands out pendulum objects, and `.date()` would be a pendulum Date.
    return date(logical_date.year, logical_date.month, logical_date.day)


@dag(
    dag_id="customer_journeys_nightly",
    doc_md=__doc__,
    schedule="@daily",
    start_date=datetime(2025, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    tags=["customer-journeys", "nightly"],
    default_args={
        "owner": "customer-journeys",
        "retries": 2,
        "retry_delay": timedelta(minutes=5),
        # Airflow >= 3.3 reads this as a multiplier (True is still accepted and means 2.0):
        # the retries wait 5-10, then 10-20 minutes.
        "retry_exponential_backoff": 2.0,
    },
)
def customer_journeys_nightly() -> None:
    # Stage modules are imported inside the tasks: parsing this file must stay cheap.
    # multiple_outputs=False keeps each summary as one XCom instead of one per key.

    @task(multiple_outputs=False)
    def land() -> Summary:
        """Land every export delivered up to the run date into the warehouse's raw schema."""
        from journeys import pipeline

        return pipeline.land(_run_date())

    @task(multiple_outputs=False)
    def transform() -> Summary:
        """Build and test the dbt project for the run date."""
        from journeys import pipeline

        return pipeline.transform(_run_date())

    @task(multiple_outputs=False)
    def validate() -> Summary:
        """Great Expectations gate: fails the run before anything is trained or published."""
        from journeys import pipeline

        return pipeline.validate(_run_date())

    @task(multiple_outputs=False)
    def train() -> Summary:
        """Train the segmentation and churn models, tracked in MLflow."""
        from journeys import pipeline

        return pipeline.train(_run_date())

    @task(multiple_outputs=False)
    def score() -> Summary:
        """Score every customer with the registered models."""
        from journeys import pipeline

        return pipeline.score(_run_date())

    @task(multiple_outputs=False, outlets=[CUSTOMER_SEGMENTS])
    def publish() -> Summary:
        """Swap in the new customer_segments and write the activation files."""
        from journeys import pipeline

        return pipeline.publish(_run_date())

    land() >> transform() >> validate() >> train() >> score() >> publish()


customer_journeys_nightly()
