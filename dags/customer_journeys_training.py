"""Customer Journeys — model training, on its own cadence (weekly by default).

Trains the segmentation, churn and high-value models (`journeys.pipeline.train`: challengers
tracked in MLflow, promoted to `champion` only when they beat it) on the newest features the
nightly run has validated: the run date comes from the latest event of the asset
`customer_journeys://marts/customer_features`, which `customer_journeys_nightly` updates after
its Great Expectations gate. When models were trained it updates
`customer_journeys://ml/champion_models`, which the nightly `score` task reads as an inlet;
scoring always uses the registry's `champion` models.

Schedule: `$JOURNEYS_TRAINING_SCHEDULE` (cron, UTC; default `0 3 * * 0`, Sundays 03:00, after
that night's run). The models' own cadence (`$JOURNEYS_RETRAIN_EVERY_DAYS`, default 7) still
applies: a run that finds nothing due ends skipped. Trigger it with `{"force": true}` to
retrain now. Before the nightly run has validated any features (a fresh install) there is
nothing to train on and the task is skipped. Retries, failure alerts and the one-slot
warehouse pool are the same as the nightly run's.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from airflow.sdk import CronTriggerTimetable, Param, dag, get_current_context, task
from airflow.sdk.exceptions import AirflowSkipException

from journeys import orchestration as orch
from journeys.settings import get_settings

Summary = dict[str, Any]


@dag(
    dag_id=orch.TRAINING_DAG_ID,
    doc_md=__doc__,
    schedule=CronTriggerTimetable(get_settings().training_schedule, timezone="UTC"),
    start_date=datetime(2025, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    tags=[*orch.TAGS, "training"],
    default_args=orch.default_args(),
    params={"force": Param(False, type="boolean", description="Retrain even if not due")},
)
def customer_journeys_training() -> None:
    @task(
        multiple_outputs=False,
        pool=orch.WAREHOUSE_POOL,
        inlets=[orch.FEATURES],
        outlets=[orch.MODELS],
    )
    def train() -> Summary:
        """Train on the latest validated features; update the champion-models asset."""
        context = get_current_context()
        day = orch.latest_event_run_date(context["inlet_events"][orch.FEATURES])
        if day is None:  # a fresh install: the nightly run trains the first champion itself
            raise AirflowSkipException(
                "no validated features yet: nothing to train on until customer_journeys_nightly "
                "has run (its validate task records the day the models can train on)"
            )
        summary = orch.train(day, force=bool(context["params"]["force"]))
        context["outlet_events"][orch.MODELS].extra = {"run_date": str(day)}
        return summary

    train()


customer_journeys_training()
