"""Rule segments as code: `dbt_project/segments.yml` validated, then compiled into dbt models.

Each segment is a name, a description, a condition (a SQL boolean over the columns of
marts.customer_features), a priority (1 = highest) and the channel it is meant for. Validation
needs no warehouse: the columns a condition may use are the ones documented for
customer_features in the marts' yml (a test keeps that list equal to the table's columns), and
conditions are parsed with sqlglot. A bad definition stops the run before anything runs, with
the file, the segment and the reason.

Compiling writes one model per segment (`rule_segment_<name>`), their union
`customer_rule_segments` and their documentation under dbt_project/models/marts/rule_segments/.
The files are committed, so the dbt project builds and documents them on its own; the pipeline
recompiles them when segments.yml changed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from journeys.errors import PipelineError
from journeys.settings import Settings

CHANNELS = ("email", "sms", "push", "ads")
REQUIRED = ("name", "description", "condition", "priority", "channel")
NAME = re.compile(r"^[a-z][a-z0-9_]{0,50}$")
MARTS_DOCS = Path("models") / "marts" / "_marts__models.yml"
OUTPUT_DIR = Path("models") / "marts" / "rule_segments"
GENERATED = "Generated from dbt_project/segments.yml by `journeys segments compile`: edit the YAML."


class SegmentDefinitionError(PipelineError):
    """segments.yml holds a definition that cannot be compiled; the message lists every one."""


@dataclass(frozen=True)
class Segment:
    name: str
    description: str
    condition: str
    priority: int
    channel: str

    @property
    def model(self) -> str:
        return f"rule_segment_{self.name}"


def feature_columns(project_dir: Path) -> list[str]:
    """The columns of marts.customer_features, as documented in the marts' yml."""
    docs = yaml.safe_load((project_dir / MARTS_DOCS).read_text())
    for model in docs.get("models", []):
        if model.get("name") == "customer_features":
            return [c["name"] for c in model.get("columns", [])]
    raise SegmentDefinitionError(f"{project_dir / MARTS_DOCS}: customer_features is not documented")


def _condition_problem(condition: str, columns: set[str]) -> str | None:
    """Why a condition cannot be used as is, or None when it is a boolean over known columns."""
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import SqlglotError

    try:
        statements = sqlglot.parse(f"select 1 from customer_features where {condition}", "duckdb")
    except SqlglotError as e:
        first = str(e).splitlines()[0]
        return f"condition is not valid SQL ({first})"
    if len(statements) != 1 or statements[0] is None:
        return "condition must be one SQL expression (no ';')"
    where = statements[0].args.get("where")
    if where is None or statements[0].args.get("limit") or statements[0].args.get("group"):
        return "condition must be one boolean SQL expression"
    if where.find(exp.Select):
        return "condition may not contain a subquery: use the columns of customer_features"
    unknown = sorted({c.name for c in where.find_all(exp.Column)} - columns)
    if unknown:
        return f"unknown column {', '.join(map(repr, unknown))} (not in marts.customer_features)"
    return None


def load_segments(path: Path, project_dir: Path | None = None) -> list[Segment]:
    """Read and validate a segments file; raise SegmentDefinitionError listing every problem."""
    project_dir = project_dir or path.parent
    if not path.exists():
        raise SegmentDefinitionError(f"{path}: file not found")
    try:
        document = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise SegmentDefinitionError(f"{path}: not valid YAML: {e}") from e
    entries = document.get("segments") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise SegmentDefinitionError(f"{path}: expected a top-level 'segments:' list")
    columns = set(feature_columns(project_dir))
    problems: list[str] = []
    segments: list[Segment] = []
    seen: set[str] = set()
    for index, entry in enumerate(entries, start=1):
        label = (
            f"segment {entry.get('name')!r}"
            if isinstance(entry, dict) and entry.get("name")
            else f"segment #{index}"
        )

        def problem(reason: str, label: str = label) -> None:
            problems.append(f"{path}: {label}: {reason}")

        if not isinstance(entry, dict):
            problem("expected a mapping with " + ", ".join(REQUIRED))
            continue
        missing = [key for key in REQUIRED if entry.get(key) in (None, "")]
        if missing:
            problem(f"missing {', '.join(missing)}")
            continue
        extra = sorted(set(entry) - set(REQUIRED))
        if extra:
            problem(f"unknown key {', '.join(extra)} (allowed: {', '.join(REQUIRED)})")
        name = str(entry["name"])
        if not NAME.match(name):
            problem("name must be lower-case letters, digits and _ (a dbt model name)")
        elif name in seen:
            problem("duplicate name (segment names must be unique)")
        seen.add(name)
        channel = str(entry["channel"])
        if channel not in CHANNELS:
            problem(f"unknown channel {channel!r} (one of {', '.join(CHANNELS)})")
        priority = entry["priority"]
        if isinstance(priority, bool) or not isinstance(priority, int) or priority < 1:
            problem(f"priority must be a whole number >= 1, got {priority!r}")
        reason = _condition_problem(str(entry["condition"]), columns)
        if reason:
            problem(reason)
        segments.append(
            Segment(
                name,
                " ".join(str(entry["description"]).split()),
                str(entry["condition"]).strip(),
                priority if isinstance(priority, int) else 0,
                channel,
            )
        )
    if problems:
        raise SegmentDefinitionError(
            f"{len(problems)} bad segment definition(s):\n" + "\n".join(problems)
        )
    return segments


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _indent(text: str, spaces: int) -> str:
    return "\n".join(" " * spaces + line if line.strip() else line for line in text.splitlines())


def segment_model(segment: Segment) -> str:
    condition = _indent(segment.condition, 12).lstrip()
    return f"""-- {GENERATED}
with

features as (

    select * from {{{{ ref('customer_features') }}}}

),

final as (

    select
        customer_id,
        snapshot_date,
        {_quote(segment.name)} as segment,
        {_quote(segment.channel)} as channel,
        {segment.priority} as priority,
        {_quote(segment.description)} as description
    from features
    where
        snapshot_date = cast('{{{{ var("snapshot_date") }}}}' as date)
        and (
            {condition}
        )

)

select * from final
"""


def union_model(segments: list[Segment]) -> str:
    if segments:
        body = "\n    union all\n".join(
            f"    select * from {{{{ ref('{s.model}') }}}}" for s in segments
        )
    else:  # no segment defined: the table exists, empty, with its columns
        body = (
            "    select\n"
            "        cast(null as {{ dbt.type_string() }}) as customer_id,\n"
            "        cast(null as date) as snapshot_date,\n"
            "        cast(null as {{ dbt.type_string() }}) as segment,\n"
            "        cast(null as {{ dbt.type_string() }}) as channel,\n"
            "        cast(null as {{ dbt.type_int() }}) as priority,\n"
            "        cast(null as {{ dbt.type_string() }}) as description\n"
            "    where false"
        )
    return f"""-- {GENERATED}
-- Every rule segment a customer matches at the run date, one row per customer and segment;
-- is_top_priority marks the customer's highest-priority segment (lowest priority number).
with

matches as (

{body}

),

final as (

    select
        customer_id,
        snapshot_date,
        segment,
        channel,
        priority,
        description,
        row_number() over (
            partition by customer_id order by priority asc, segment asc
        ) = 1 as is_top_priority
    from matches

)

select * from final
"""


def docs_yml(segments: list[Segment]) -> str:
    models: list[dict] = [
        {
            "name": "customer_rule_segments",
            "description": (
                "Rule segments (dbt_project/segments.yml) every customer matches at the run "
                "date: one row per customer and segment, with the segment's channel, priority "
                "and description. is_top_priority marks the customer's highest-priority "
                "segment. " + GENERATED
            ),
            "columns": [
                {"name": "customer_id", "data_tests": ["not_null"]},
                {"name": "snapshot_date", "description": "The run date the segments are as of."},
                {"name": "segment", "description": "Segment name.", "data_tests": ["not_null"]},
                {
                    "name": "channel",
                    "description": "Channel the segment is meant for.",
                    "data_tests": [{"accepted_values": {"arguments": {"values": list(CHANNELS)}}}],
                },
                {"name": "priority", "description": "1 = highest."},
                {"name": "description", "description": "What the segment is for."},
                {
                    "name": "is_top_priority",
                    "description": "True on the customer's highest-priority segment.",
                },
            ],
            "data_tests": [
                {"unique_combination": {"arguments": {"columns": ["customer_id", "segment"]}}}
            ],
        }
    ]
    for s in segments:
        models.append(
            {
                "name": s.model,
                "description": (
                    f"Rule segment {s.name!r} ({s.channel}, priority {s.priority}): "
                    f"{s.description} Condition over customer_features at the run date: "
                    f"{s.condition}. {GENERATED}"
                ),
                "columns": [{"name": "customer_id", "data_tests": ["unique", "not_null"]}],
            }
        )
    return f"# {GENERATED}\n" + yaml.safe_dump(
        {"version": 2, "models": models}, sort_keys=False, width=100, allow_unicode=True
    )


def compiled_files(segments: list[Segment]) -> dict[str, str]:
    """Relative path (under the dbt project) -> content of every generated file."""
    files = {str(OUTPUT_DIR / f"{s.model}.sql"): segment_model(s) for s in segments}
    files[str(OUTPUT_DIR / "customer_rule_segments.sql")] = union_model(segments)
    files[str(OUTPUT_DIR / "_rule_segments__models.yml")] = docs_yml(segments)
    return files


def stale_files(settings: Settings, segments: list[Segment]) -> list[str]:
    """Generated files that are missing, differ, or belong to a segment no longer defined."""
    project = settings.dbt_project_dir
    wanted = compiled_files(segments)
    stale = [rel for rel, text in wanted.items() if _read(project / rel) != text]
    present = {str(p.relative_to(project)) for p in (project / OUTPUT_DIR).glob("*")}
    return sorted(stale + sorted(present - set(wanted)))


def _read(path: Path) -> str | None:
    return path.read_text() if path.exists() else None


def check_segments(settings: Settings) -> list[Segment]:
    """Validate segments.yml (raises SegmentDefinitionError); nothing is written."""
    return load_segments(settings.segments_file, settings.dbt_project_dir)


def compile_segments(settings: Settings) -> dict:
    """Validate segments.yml and (re)write the generated models that differ from it."""
    segments = check_segments(settings)
    project = settings.dbt_project_dir
    wanted = compiled_files(segments)
    changed = stale_files(settings, segments)
    for rel in changed:
        target = project / rel
        if rel in wanted:
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_suffix(target.suffix + ".tmp")
            tmp.write_text(wanted[rel])
            tmp.replace(target)  # never a half-written model
        else:
            target.unlink()
    return {"segments": [s.name for s in segments], "written": changed}
