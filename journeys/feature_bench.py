"""`make bench-features`: time the feature, lifecycle and rule segment models (#9).

On a JOURNEYS_HOME whose upstream models (staging, identity, fct_orders) are built for DATE:
a full refresh as of DATE - 1, then the one-day incremental build for DATE, then a re-run of
DATE. Models and their data tests, as `dbt build` runs them; prints wall-clock seconds.
"""

from __future__ import annotations

import json
import sys
import time
from datetime import date, timedelta

from journeys.settings import get_settings
from journeys.transform import invoke

SELECT = ["--select", "int_web_cookie_days+"]  # every feature model reads the cookie days


def main(day: date) -> dict[str, float]:
    settings = get_settings()
    timings: dict[str, float] = {}
    steps = [
        ("full_refresh", day - timedelta(days=1), ["--full-refresh"]),
        ("incremental_one_day", day, []),
        ("rerun_same_day", day, []),
    ]
    for label, as_of, extra in steps:
        started = time.perf_counter()
        nodes = invoke(
            settings, ["build", *SELECT, "--exclude-resource-type", "unit_test", *extra], as_of
        )
        timings[label] = round(time.perf_counter() - started, 1)
        slowest = sorted(
            ((n["name"], n["seconds"]) for n in nodes if n["type"] == "model"), key=lambda x: -x[1]
        )
        print(f"{label} {as_of}: {timings[label]} s; slowest {slowest[:4]}", flush=True)
    print(json.dumps(timings))
    return timings


if __name__ == "__main__":
    main(date.fromisoformat(sys.argv[1]))
