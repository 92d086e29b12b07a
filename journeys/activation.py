"""Activation: consent-checked audiences per channel, exported with manifests, diffs, controls.

Audiences come from one relation, the view `activation.audiences`: the rule segments
(`marts.customer_rule_segments`, each naming its channel) and the model segments of
`marts.customer_segments` on the configured default channel. A warehouse without rule segments
gets the model audiences only (the summary says so).

Who is sent is decided in SQL, in one statement (temp table `audience_members`, run date):
every member gets a status: `no_consent` (marts.customer_consent does not say opt_in for the
channel), `no_contact` (nothing to reach them by on the channel), `outranked` (a higher-priority
rule audience on the same channel has them), `control` (held out) or `exported`. The files are
copies of the `exported` rows; nothing is filtered in Python.

Control groups: a customer's bucket for an audience is the first 32 bits of
sha256(customer_id || ':' || audience) as a fraction of 2^32; below the configured share means
control. The bucket never changes, so a customer stays in or out of control across runs (and
raising the share only adds people to control). Control rows are kept in
`activation.control_group_members` and counted in the manifest, never written to the export.

Files: `<activation>/<date>/<channel>/<audience>.{csv,parquet}`, `<audience>.manifest.json`
and `<audience>.diff.{csv,parquet}` (adds and removes against the last successful export of the
audience before this date). The whole date folder is written aside and renamed into place, so a
crash leaves the previous version of the day (or none), never half an export; re-running a day
rebuilds it identically.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb

from journeys.errors import PipelineError
from journeys.settings import Settings
from journeys.warehouse import table_exists

CHANNELS = ("email", "sms", "push", "ads")
RULE_SEGMENTS = "marts.customer_rule_segments"
RULE_SEGMENT_COLUMNS = (
    "customer_id",
    "snapshot_date",
    "segment",
    "channel",
    "priority",
    "description",
)
CONSENT_RULE = (
    "marts.customer_consent: the customer's latest consent event for the channel, through any "
    "of their merged identifiers, must be an opt_in (same instant: opt_out wins; an opt-in "
    "through an identifier shared with other customers counts only with the customer's CRM id); "
    "no event = no consent"
)
CONTROL_RULE = "first 32 bits of sha256(customer_id || ':' || audience) / 2^32 < share"
E164 = r"^\+[1-9][0-9]{6,14}$"

# What each channel's export carries besides customer_id and snapshot_date. Ads get hashes of the
# normalised identifiers only (lower-cased trimmed e-mail; E.164 phone), never the raw values.
CHANNEL_COLUMNS = {
    "email": ["email"],
    "sms": ["phone"],
    "push": [],
    "ads": ["email_sha256", "phone_sha256"],
}
# A member is reachable on a channel when the export would have something to send to.
REACHABLE = {
    "email": "contact.email is not null",
    "sms": "contact.phone is not null",
    "push": "true",
    "ads": "(contact.email is not null or contact.phone is not null)",
}


class ActivationError(PipelineError):
    """Audience definitions the exports cannot honour (unknown channel, missing columns)."""


def audience_slug(name: str) -> str:
    """A file-safe audience name: lower case, runs of other characters as one underscore."""
    slug = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")
    return slug or "unnamed"


def define_audiences(con: duckdb.DuckDBPyConnection, settings: Settings) -> bool:
    """(Re)create the view `activation.audiences`; True when rule segments are part of it."""
    if settings.activation_default_channel not in CHANNELS:
        raise ActivationError(
            f"JOURNEYS_ACTIVATION_DEFAULT_CHANNEL={settings.activation_default_channel!r} is "
            f"not a channel ({', '.join(CHANNELS)})"
        )
    # Slugs are computed once per distinct name, not once per row.
    slug = "trim(regexp_replace(lower({0}), '[^a-z0-9]+', '_', 'g'), '_')"
    model = f"""
        select segments.customer_id, segments.snapshot_date, names.audience,
               '{settings.activation_default_channel}' as channel,
               cast(null as integer) as priority,
               'Model segment: ' || segments.segment_name as description, 'model' as kind
        from marts.customer_segments as segments
        inner join (
            select distinct segment_name, 'model_' || {slug.format("segment_name")} as audience
            from marts.customer_segments
        ) as names using (segment_name)"""
    has_rules = table_exists(con, "marts", "customer_rule_segments")
    if has_rules:
        present = {
            row[0]
            for row in con.execute(
                "select column_name from information_schema.columns "
                "where table_schema = 'marts' and table_name = 'customer_rule_segments'"
            ).fetchall()
        }
        missing = [c for c in RULE_SEGMENT_COLUMNS if c not in present]
        if missing:
            raise ActivationError(f"{RULE_SEGMENTS} lacks the columns {', '.join(missing)}")
        unknown = con.execute(
            f"select distinct segment, channel from {RULE_SEGMENTS} "
            f"where channel is null or channel not in {CHANNELS} order by 1"
        ).fetchall()
        if unknown:
            listed = "; ".join(f"{segment}: {channel!r}" for segment, channel in unknown)
            raise ActivationError(
                f"{RULE_SEGMENTS}: segments with a channel outside {', '.join(CHANNELS)}: {listed}"
            )
        model += f"""
        union all
        select rules.customer_id, rules.snapshot_date, names.audience, rules.channel,
               cast(rules.priority as integer), rules.description, 'rule'
        from {RULE_SEGMENTS} as rules
        inner join (
            select distinct segment, {slug.format("segment")} as audience from {RULE_SEGMENTS}
        ) as names using (segment)"""
    con.execute("create schema if not exists activation")
    con.execute(f"create or replace view activation.audiences as {model}")
    return has_rules


def select_members(con: duckdb.DuckDBPyConnection, settings: Settings, run_date: date) -> None:
    """Temp table `audience_members`: every audience member of the run date with a status.

    The consent check is the inner part of this statement: a member is `exported` only when
    marts.customer_consent says is_consented for the audience's channel.
    """
    reachable = "case " + " ".join(
        f"when audiences.channel = '{channel}' then {condition}"
        for channel, condition in REACHABLE.items()
    )
    con.execute(
        f"""
        create or replace temp table audience_members as
        with contact as (
            select
                customer_id,
                is_test_account,
                case when lower(trim(email)) like '%_@_%' then lower(trim(email)) end as email,
                case when regexp_matches(trim(phone), '{E164}') then trim(phone) end as phone
            from marts.dim_customers
        ),
        members as (
            select
                audiences.*,
                coalesce(consent.is_consented, false) as is_consented,
                {reachable} end as is_reachable,
                row_number() over (
                    partition by audiences.customer_id, audiences.channel, audiences.kind
                    order by audiences.priority asc nulls last, audiences.audience
                ) as channel_rank,
                contact.email as contact_email,
                contact.phone as contact_phone
            from activation.audiences as audiences
            inner join contact using (customer_id)
            left join marts.customer_consent as consent
                on consent.customer_id = audiences.customer_id
                and consent.channel = audiences.channel
            where audiences.snapshot_date = $run_date and not contact.is_test_account
        ),
        bucketed as (
            -- hashed only for those who would be sent: the rest need no bucket
            select
                *,
                case when is_consented and is_reachable and channel_rank = 1 then
                    cast(('0x' || left(sha256(customer_id || ':' || audience), 8)) as ubigint)
                    / 4294967296.0
                end as control_bucket
            from members
        ),
        with_status as (
            select
                *,
                case
                    when not is_consented then 'no_consent'
                    when not is_reachable then 'no_contact'
                    when channel_rank > 1 then 'outranked'
                    when control_bucket < $share then 'control'
                    else 'exported'
                end as status
            from bucketed
        )
        select
            $run_date as run_date,
            customer_id, snapshot_date, channel, audience, kind, priority, description,
            is_consented, is_reachable, channel_rank, control_bucket, status,
            case when status = 'exported' and channel = 'email' then contact_email end as email,
            case when status = 'exported' and channel = 'sms' then contact_phone end as phone,
            case when status = 'exported' and channel = 'ads' then sha256(contact_email) end
                as email_sha256,
            case when status = 'exported' and channel = 'ads' then sha256(contact_phone) end
                as phone_sha256
        from with_status
        """,
        {"run_date": run_date, "share": settings.control_group_share},
    )
    # What the files copy, sorted once so each audience's rows are contiguous and in id order.
    con.execute(
        "create or replace temp table audience_exports as "
        "select * from audience_members where status = 'exported' "
        "order by channel, audience, customer_id"
    )


def export_audiences(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    run_date: date,
    extra_files: Callable[[Path], None] | None = None,
) -> dict:
    """Select, export and record every audience of the run date; see the module docstring.

    `extra_files(folder)` writes further files into the date folder before it is swapped in.
    """
    has_rules = define_audiences(con, settings)
    select_members(con, settings, run_date)
    audiences = con.execute(
        "select channel, audience, any_value(kind), any_value(priority), "
        "any_value(description), "
        "count(*) filter (status = 'exported'), count(*) filter (status = 'control'), "
        "count(*) filter (status = 'no_consent'), count(*) filter (status = 'no_contact'), "
        "count(*) filter (status = 'outranked'), count(*) "
        "from audience_members group by 1, 2 order by 1, 2"
    ).fetchall()
    provenance = _model_provenance(con, run_date)
    root = settings.activation
    root.mkdir(parents=True, exist_ok=True)
    final = root / run_date.isoformat()
    staging = root / f".{run_date.isoformat()}.tmp-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    previous = _previous_exports(root, run_date)
    summary = []
    try:
        if extra_files:
            extra_files(staging)
        for row in audiences:
            channel, audience, kind, priority, description = row[:5]
            exported, control, no_consent, no_contact, outranked, members = row[5:]
            folder = staging / channel
            folder.mkdir(exist_ok=True)
            selection = (
                f"select customer_id, snapshot_date, "
                f"{''.join(c + ', ' for c in CHANNEL_COLUMNS[channel])}audience "
                f"from audience_exports where channel = '{channel}' and audience = '{audience}' "
                f"order by customer_id"
            )
            files = _copy_both(con, selection, folder / audience)
            before = previous.get((channel, audience))
            diff = _write_diff(con, selection, channel, before, folder / f"{audience}.diff")
            manifest = {
                "audience": audience,
                "channel": channel,
                "kind": kind,
                "priority": priority,
                "description": description,
                "run_date": run_date.isoformat(),
                "snapshot_date": run_date.isoformat(),
                "counts": {
                    "members": members,
                    "exported": exported,
                    "control": control,
                    "no_consent": no_consent,
                    "no_contact": no_contact,
                    "outranked": outranked,
                },
                "files": {**files, "rows": exported},
                "columns": ["customer_id", "snapshot_date", *CHANNEL_COLUMNS[channel], "audience"],
                "consent_rule": CONSENT_RULE,
                "control_group": {"share": settings.control_group_share, "rule": CONTROL_RULE},
                "diff": diff,
                **provenance,
                "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            }
            (folder / f"{audience}.manifest.json").write_text(json.dumps(manifest, indent=2))
            summary.append(
                {
                    "channel": channel,
                    "audience": audience,
                    "members": members,
                    "exported": exported,
                    "control": control,
                    "no_consent": no_consent,
                    "no_contact": no_contact,
                    "outranked": outranked,
                    "adds": diff["adds"],
                    "removes": diff["removes"],
                    "checksum": files["parquet"]["sha256"],
                }
            )
        _swap_into_place(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    _record(con, run_date, final, summary)
    return {
        "folder": str(final),
        "rule_segments": "included" if has_rules else f"{RULE_SEGMENTS} not built yet: skipped",
        "audiences": summary,
    }


def _copy_both(con: duckdb.DuckDBPyConnection, selection: str, stem: Path) -> dict:
    files = {}
    for kind, options in (("csv", "header, delimiter ','"), ("parquet", "format parquet")):
        path = stem.with_name(f"{stem.name}.{kind}")
        con.execute(f"copy ({selection}) to '{path}' ({options})")
        files[kind] = {"name": path.name, "sha256": _sha256(path)}
    return files


def _write_diff(
    con: duckdb.DuckDBPyConnection,
    selection: str,
    channel: str,
    before: tuple[str, Path] | None,
    stem: Path,
) -> dict:
    """Adds and removes against the previous export; removes carry the previous identifiers."""
    columns = ["snapshot_date", *CHANNEL_COLUMNS[channel], "audience"]
    if before is None:
        previous_rows = f"select * from ({selection}) where false"
    else:
        previous_rows = f"select * from read_parquet('{before[1]}')"
    picked = ", ".join(
        f"case when latest.customer_id is null then earlier.{c} else latest.{c} end as {c}"
        for c in columns
    )
    diff = (
        f"select coalesce(latest.customer_id, earlier.customer_id) as customer_id, "
        f"case when earlier.customer_id is null then 'add' else 'remove' end as change, {picked} "
        f"from ({selection}) as latest full outer join ({previous_rows}) as earlier "
        f"on latest.customer_id = earlier.customer_id "
        f"where latest.customer_id is null or earlier.customer_id is null "
        f"order by change, customer_id"
    )
    con.execute(f"create or replace temp table audience_diff as {diff}")
    files = _copy_both(con, "select * from audience_diff", stem)
    adds, removes = con.execute(
        "select count(*) filter (change = 'add'), count(*) filter (change = 'remove') "
        "from audience_diff"
    ).fetchall()[0]
    return {
        "since": before[0] if before else None,
        "adds": adds,
        "removes": removes,
        "files": files,
    }


def _previous_exports(root: Path, run_date: date) -> dict[tuple[str, str], tuple[str, Path]]:
    """The last successful export before `run_date` of each (channel, audience).

    A date folder exists only once complete (it is renamed into place), and an audience counts
    only with its manifest, so whatever is found here was exported in full.
    """
    found: dict[tuple[str, str], tuple[str, Path]] = {}
    days = sorted(
        (p for p in root.iterdir() if re.fullmatch(r"\d{4}-\d{2}-\d{2}", p.name)),
        key=lambda p: p.name,
        reverse=True,
    )
    for day in days:
        if day.name >= run_date.isoformat():
            continue
        for manifest in day.glob("*/*.manifest.json"):
            audience = manifest.name.removesuffix(".manifest.json")
            parquet = manifest.with_name(f"{audience}.parquet")
            if parquet.exists():
                found.setdefault((manifest.parent.name, audience), (day.name, parquet))
    return found


def _swap_into_place(staging: Path, final: Path) -> None:
    """Replace the date folder by the staged one: two renames, the old copy deleted last."""
    if final.exists():
        retired = final.with_name(f".{final.name}.old-{os.getpid()}")
        shutil.rmtree(retired, ignore_errors=True)
        os.replace(final, retired)
        os.replace(staging, final)
        shutil.rmtree(retired)
    else:
        os.replace(staging, final)


def _record(con: duckdb.DuckDBPyConnection, run_date: date, final: Path, summary: list) -> None:
    """The control groups and the export log of the date, replaced as a whole."""
    con.execute(
        """
        create table if not exists activation.control_group_members (
            run_date date not null,
            channel varchar not null,
            audience varchar not null,
            customer_id varchar not null,
            control_bucket double not null
        );
        create table if not exists activation.exports (
            run_date date not null,
            channel varchar not null,
            audience varchar not null,
            members bigint not null,
            exported bigint not null,
            control bigint not null,
            no_consent bigint not null,
            no_contact bigint not null,
            outranked bigint not null,
            adds bigint not null,
            removes bigint not null,
            parquet_sha256 varchar not null,
            folder varchar not null,
            exported_at timestamptz not null
        );
        """
    )
    con.execute("begin transaction")
    try:
        con.execute("delete from activation.control_group_members where run_date = ?", [run_date])
        con.execute(
            "insert into activation.control_group_members "
            "select run_date, channel, audience, customer_id, control_bucket "
            "from audience_members where status = 'control'"
        )
        con.execute("delete from activation.exports where run_date = ?", [run_date])
        if summary:
            con.executemany(
                "insert into activation.exports values "
                "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, now())",
                [
                    [
                        run_date,
                        a["channel"],
                        a["audience"],
                        a["members"],
                        a["exported"],
                        a["control"],
                        a["no_consent"],
                        a["no_contact"],
                        a["outranked"],
                        a["adds"],
                        a["removes"],
                        a["checksum"],
                        str(final),
                    ]
                    for a in summary
                ],
            )
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise


def _model_provenance(con: duckdb.DuckDBPyConnection, run_date: date) -> dict:
    """The model versions that scored the date, and each model's latest registry decision."""
    versions: list[dict] = []
    if table_exists(con, "ml", "customer_scores"):
        rows = con.execute(
            "select distinct segmentation_model_version, churn_model_version, "
            "high_value_model_version from ml.customer_scores where snapshot_date = ?",
            [run_date],
        ).fetchall()
        versions = [
            {"segmentation": seg, "churn": churn, "high_value": high_value}
            for seg, churn, high_value in rows
        ]
    decisions: list[dict] = []
    if table_exists(con, "ml", "model_decisions"):
        cursor = con.execute(
            "select model_name, run_date, challenger_version, champion_version, promoted, "
            "metric, challenger_metric, champion_metric, reason from ml.model_decisions "
            "qualify row_number() over (partition by model_name order by decided_at desc) = 1 "
            "order by model_name"
        )
        names = [d[0] for d in cursor.description]
        decisions = [
            {k: v.isoformat() if isinstance(v, date) else v for k, v in zip(names, r, strict=True)}
            for r in cursor.fetchall()
        ]
    return {"model_versions": versions, "model_decisions": decisions}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
