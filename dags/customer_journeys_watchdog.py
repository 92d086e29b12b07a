"""Customer Journeys — late-run watchdog (what SLAs were in Airflow 2).

Every day at `$JOURNEYS_NIGHTLY_DEADLINE` (UTC, default 06:00) it checks that the nightly run
for the day before (`customer_journeys_nightly`, logical date D) has succeeded. If not — still
running, queued, failed, or never started because the scheduler was down or the DAG paused — it
calls `journeys.alerts.alert` with kind `late_run`: a JSON record under `$JOURNEYS_HOME/alerts/`
and a POST to `$JOURNEYS_ALERT_WEBHOOK_URL` when set. The task itself succeeds either way (its
XCom says whether the run was late), so a late run is reported once, not twice.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from airflow.sdk import CronTriggerTimetable, dag, get_current_context, task

from journeys import orchestration as orch
from journeys.settings import get_settings


@dag(
    dag_id=orch.WATCHDOG_DAG_ID,
    doc_md=__doc__,
    schedule=CronTriggerTimetable(orch.watchdog_cron(get_settings()), timezone="UTC"),
    start_date=datetime(2025, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    tags=[*orch.TAGS, "monitoring"],
    default_args=orch.default_args(),
)
def customer_journeys_watchdog() -> None:
    @task(multiple_outputs=False)
    def check_nightly_on_time() -> dict[str, Any]:
        """Report the nightly run for yesterday if it has not succeeded by the deadline."""
        return orch.check_nightly_on_time(get_current_context())

    check_nightly_on_time()


customer_journeys_watchdog()
