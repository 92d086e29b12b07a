"""Customer Journeys — nightly run.

Turns one day's raw customer exports into activation-ready, consent-filtered segments:

`wait_for_previous_run` → `land` → dbt `staging` models → `identity` → dbt `intermediate` and
`marts` models (a task per model: `dbt build` of the model, then its data tests) → `validate`
(Great Expectations gate) → `train_first_champion` → `score` → `publish` (segments table and
activation files)

**Run date.** The run with logical date D processes the deliveries of day D (UTC) and starts
once D is over, at 00:00 UTC on D+1. A backfill from D1 to D2 runs those days in date order,
one at a time, exactly as if each had run on its night; rerunning a finished day gives the
same tables (every stage is idempotent).

**Models.** Scoring uses the MLflow `champion` models, which the weekly
`customer_journeys_training` DAG retrains (asset `customer_journeys://ml/champion_models`). When
a model has no usable champion — a fresh install, or features changed — this DAG trains it
itself (`train_first_champion`); otherwise that task is skipped.

**Assets** (each event's `extra` has the `run_date`): `validate` updates
`customer_journeys://marts/customer_features`; `publish` updates
`customer_journeys://marts/customer_segments` and `customer_journeys://activation/exports`, so
downstream DAGs can be scheduled on them.

**Failures speak.** Every task retries twice with exponential back-off; a task that still
fails (a dbt model or test, the quality gate, anything) calls `journeys.alerts.alert`, which
writes a JSON record under `$JOURNEYS_HOME/alerts/` and posts it to
`$JOURNEYS_ALERT_WEBHOOK_URL` when set. If the run for D has not succeeded by
`$JOURNEYS_NIGHTLY_DEADLINE` (default 06:00 UTC) on D+1, the `customer_journeys_watchdog` DAG
reports it the same way, as `late_run`.

Every task that opens the DuckDB warehouse runs in the one-slot pool
`customer_journeys_warehouse`. The dbt tasks are rendered from the manifest that
`python -m journeys.orchestration manifest` writes (`make airflow` does); while it is missing
or was built from other model files than the checkout has, dbt runs as one `transform` task
instead (slower to rerun piecemeal, but always right).
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta
from typing import Any

from airflow.sdk import CronDataIntervalTimetable, chain, dag, get_current_context, task
from airflow.sdk.exceptions import AirflowSkipException

from journeys import orchestration as orch
from journeys.settings import get_settings

Summary = dict[str, Any]
settings = get_settings()
manifest_problem = orch.manifest_problem(settings)
if manifest_problem:
    manifest_problem += (
        ": dbt runs as one task; run `python -m journeys.orchestration manifest` "
        "(or `make airflow`) to render it model by model"
    )
    logging.getLogger(__name__).warning(manifest_problem)


def _run_date() -> date:
    return orch.run_date(get_current_context())


@dag(
    dag_id=orch.NIGHTLY_DAG_ID,
    doc_md=__doc__ + (f"\n**Now**: {manifest_problem}.\n" if manifest_problem else ""),
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=datetime(2025, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    tags=[*orch.TAGS, "nightly"],
    default_args=orch.default_args(),
)
def customer_journeys_nightly() -> None:
    # Stage modules are imported inside the tasks: parsing this file must stay cheap.
    # multiple_outputs=False keeps each summary as one XCom instead of one per key.

    @task.sensor(mode="reschedule", poke_interval=60, timeout=timedelta(days=7).total_seconds())
    def wait_for_previous_run() -> bool:
        """Start only once the previous day's run has finished: days are processed in order."""
        return orch.previous_run_finished(get_current_context()["ti"])

    @task(multiple_outputs=False, pool=orch.WAREHOUSE_POOL)
    def land() -> Summary:
        """Land every export delivered up to the run date into the warehouse's raw schema."""
        from journeys import pipeline

        return pipeline.land(_run_date())

    @task(multiple_outputs=False, pool=orch.WAREHOUSE_POOL)
    def transform() -> Summary:
        """Build and test the whole dbt project (used while no current manifest exists)."""
        from journeys import pipeline

        return pipeline.transform(_run_date())

    @task(multiple_outputs=False, pool=orch.WAREHOUSE_POOL)
    def identity() -> Summary:
        """Resolve identities between dbt's staging and intermediate layers."""
        return orch.resolve_identities(_run_date())

    @task(multiple_outputs=False, pool=orch.WAREHOUSE_POOL, outlets=[orch.FEATURES])
    def validate() -> Summary:
        """Great Expectations gate: fails the run before anything is scored or published."""
        from journeys import pipeline

        day = _run_date()
        summary = pipeline.validate(day)
        get_current_context()["outlet_events"][orch.FEATURES].extra = {"run_date": str(day)}
        return summary

    @task(multiple_outputs=False, pool=orch.WAREHOUSE_POOL, outlets=[orch.MODELS])
    def train_first_champion() -> Summary:
        """Train the models scoring lacks; skipped while every model has a usable champion.

        (Retraining on a schedule is customer_journeys_training's job.)
        """
        missing = orch.missing_champions()
        if not missing:
            raise AirflowSkipException("every model has a champion to score with")
        logging.getLogger(__name__).warning("no usable champion for %s: training now", missing)
        day = _run_date()
        summary = orch.train(day)
        get_current_context()["outlet_events"][orch.MODELS].extra = {"run_date": str(day)}
        return summary

    @task(
        multiple_outputs=False,
        pool=orch.WAREHOUSE_POOL,
        inlets=[orch.MODELS],
        trigger_rule="none_failed",  # train_first_champion is skipped once a champion exists
    )
    def score() -> Summary:
        """Score every customer with the champion models."""
        from journeys import pipeline

        context = get_current_context()
        trained = orch.latest_event_run_date(context["inlet_events"][orch.MODELS])
        summary = pipeline.score(orch.run_date(context))
        return {**summary, "models_trained_for": str(trained) if trained else None}

    @task(
        multiple_outputs=False,
        pool=orch.WAREHOUSE_POOL,
        outlets=[orch.SEGMENTS, orch.ACTIVATION],
    )
    def publish() -> Summary:
        """Swap in the new customer_segments and write the activation files."""
        from journeys import pipeline

        day = _run_date()
        summary = pipeline.publish(day)
        events = get_current_context()["outlet_events"]
        events[orch.SEGMENTS].extra = {"run_date": str(day), "rows": summary.get("rows")}
        events[orch.ACTIVATION].extra = {
            "run_date": str(day),
            "files": [str(f) for f in [summary.get("activation_file")] if f],
        }
        return summary

    # dbt, model by model: astronomer-cosmos renders each model of a selection as a task.
    staging = ["path:models/staging"]
    marts = ["path:models/intermediate", "path:models/marts"]
    if manifest_problem:
        dbt = [transform()]
    else:
        # Imported only when rendering: cosmos' operator classes cost ~0.4 s of a parse.
        from cosmos import DbtTaskGroup

        def dbt_group(group_id: str, select: list[str]) -> Any:
            return DbtTaskGroup(group_id=group_id, **orch.cosmos_args(settings, select=select))

        if orch.has_identity_step():
            dbt = [dbt_group("dbt_staging", staging), identity(), dbt_group("dbt_marts", marts)]
        else:
            dbt = [dbt_group("dbt", staging + marts)]

    chain(
        wait_for_previous_run(),
        land(),
        *dbt,
        validate(),
        train_first_champion(),
        score(),
        publish(),
    )


customer_journeys_nightly()
