"""Benchmark: publication and every activation export at N customers (`make bench-activation`).

Builds, set-based in DuckDB, a warehouse holding only what publication reads, at the size asked
for: golden records (e-mail and phone for most), consent per channel (opt-in, opt-out or none),
two days of model scores (5 % of customers change segment overnight), six rule segments over
the four channels on the second day, registry decisions. Then times `publish_segments` for both
days: the swap, the history, the movements view, and every audience's CSV, Parquet, manifest,
diff and control group. The second day is the nightly case (diffs against the first export).

    python -m journeys.activation_bench --customers 1000000 --home /tmp/activation-bench
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from datetime import date, timedelta
from pathlib import Path

from journeys.publish import publish_segments
from journeys.settings import get_settings
from journeys.warehouse import connect
from ml.registry import DECISIONS_DDL
from ml.score import SCORES_DDL, ensure_scores_table

DAY = date(2025, 12, 30)
SEGMENT_NAMES = [
    "Loyal big spenders",
    "At risk",
    "New buyers",
    "Bargain hunters",
    "Dormant prospects",
    "Engaged prospects",
    "Store regulars",
    "Rare buyers",
]
RULES = [  # name, channel, priority, share of customers matching
    ("winback", "email", 1, 0.15),
    ("vip_early_access", "email", 2, 0.10),
    ("flash_sale_sms", "sms", 1, 0.20),
    ("app_reactivation", "push", 1, 0.12),
    ("lookalike_seed", "ads", 1, 0.25),
    ("suppression_recent_buyers", "ads", 2, 0.30),
]


def build(home: Path, customers: int) -> None:
    settings = get_settings({"JOURNEYS_HOME": str(home)})
    shutil.rmtree(home, ignore_errors=True)
    with connect(settings) as con:
        con.execute("create schema marts; create schema ml")
        # u(i, salt): a uniform number in [0, 1) that depends only on i and the salt
        con.execute(
            "create macro u(i, salt) as hash(i, salt) % 1000000 / 1000000.0;"
            f"""create table marts.dim_customers as
            select
                'cj_' || lpad(cast(i as varchar), 9, '0') as customer_id,
                case when u(i, 1) < 0.9 then ' User' || i || '@Example.com ' end as email,
                case when u(i, 2) < 0.7 then '+49151' || lpad(cast(i as varchar), 8, '0') end
                    as phone,
                i % 1000 = 0 as is_test_account
            from range({customers}) as t(i)"""
        )
        con.execute(
            """create table marts.customer_consent as
            select customer_id, channel,
                case when r < 0.45 then 'opt_in' when r < 0.6 then 'opt_out' else 'none' end
                    as consent_status,
                r < 0.45 as is_consented,
                case when r < 0.6 then timestamp '2025-06-01' end as event_at,
                case when r < 0.6 then 'web' end as source
            from (
                select customer_id, channel, u(customer_id, channel) as r
                from marts.dim_customers,
                    (values ('email'), ('sms'), ('push'), ('ads')) as c(channel)
            )"""
        )
        con.execute(SCORES_DDL)
        ensure_scores_table(con)
        names = "[" + ", ".join(f"'{n}'" for n in SEGMENT_NAMES) + "]"
        for offset, salt in ((1, 10), (0, 11)):
            con.execute(
                f"""insert into ml.customer_scores by name
                select customer_id, cast(? as date) as snapshot_date,
                    cast(s as integer) as segment_id, {names}[s + 1] as segment_name,
                    u(customer_id, 20) as churn_probability,
                    u(customer_id, 21) as high_value_probability,
                    '3' as segmentation_model_version, '5' as churn_model_version,
                    '2' as high_value_model_version, now() as scored_at
                from (
                    select customer_id, cast(
                        case when u(customer_id, {salt}) < 0.05 then hash(customer_id, {salt}) % 8
                             else hash(customer_id) % 8 end as integer) as s
                    from marts.dim_customers
                )""",
                [DAY - timedelta(days=offset)],
            )
        rules = " union all ".join(
            f"select customer_id, '{n}' as segment, '{c}' as channel, {p} as priority, "
            f"'{n} ({c})' as description from marts.dim_customers "
            f"where u(customer_id, '{n}') < {share}"
            for n, c, p, share in RULES
        )
        con.execute(
            f"create table marts.customer_rule_segments as "
            f"select customer_id, cast(? as date) as snapshot_date, segment, channel, "
            f"priority, description from ({rules})",
            [DAY],
        )
        con.execute(DECISIONS_DDL)
        con.execute(
            "insert into ml.model_decisions values "
            "(now(), ?, 'customer_journeys_churn', '5', '4', 'auc', 0.81, 0.80, 0.005, true, 'b'),"
            "(now(), ?, 'customer_journeys_segmentation', '3', null, 'silhouette', 0.2, null, "
            "0.005, true, 'no champion yet')",
            [DAY, DAY],
        )
        con.execute("checkpoint")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--home", type=Path, default=Path("/tmp/activation-bench"))
    args = parser.parse_args()
    started = time.perf_counter()
    build(args.home, args.customers)
    report: dict = {"customers": args.customers, "build_s": round(time.perf_counter() - started, 1)}
    settings = get_settings({"JOURNEYS_HOME": str(args.home)})
    for label, day in (("first_day", DAY - timedelta(days=1)), ("next_day", DAY)):
        started, cpu = time.perf_counter(), time.process_time()
        result = publish_segments(settings, day)
        seconds = round(time.perf_counter() - started, 1)
        cpu = round(time.process_time() - cpu, 1)  # all threads: the figure on a busy machine
        audiences = result["activation"]["audiences"]
        report[label] = {
            "publish_and_export_s": seconds,
            "cpu_s": cpu,
            "published_rows": result["rows"],
            "audiences": len(audiences),
            "exported_rows": sum(a["exported"] for a in audiences),
            "control_rows": sum(a["control"] for a in audiences),
            "members": sum(a["members"] for a in audiences),
            "bytes_written": sum(
                p.stat().st_size for p in Path(result["activation"]["folder"]).rglob("*")
            ),
        }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
