"""`journeys`: the command line. Each command calls the same stage function the DAGs call.

Heavy libraries (dbt, MLflow, Great Expectations, scikit-learn) are imported inside commands so
that `journeys --help` answers at once.
"""

from __future__ import annotations

import json
import sys
from datetime import date, datetime
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from journeys import pipeline
from journeys.settings import Settings, get_settings

app = typer.Typer(
    help="Customer Journeys: raw customer exports in, consent-filtered segments out.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)
console = Console()
err = Console(stderr=True)

RunDate = Annotated[
    datetime | None,
    typer.Option(
        "--date",
        formats=["%Y-%m-%d"],
        help="Run (delivery and snapshot) date. Default: the latest delivery in the exports.",
    ),
]


def _run_date(value: datetime | None, settings: Settings) -> date:
    if value is not None:
        return value.date()
    days = sorted(
        p.name for p in settings.exports.glob("*/*") if p.is_dir() and p.name[:2].isdigit()
    )
    if not days:
        err.print(f"[red]No deliveries under {settings.exports}[/]: pass --date or generate data.")
        raise typer.Exit(2)
    return date.fromisoformat(days[-1])


def _stage(name: str, run_date: datetime | None, **options) -> None:
    settings = get_settings()
    day = _run_date(run_date, settings)
    stage = dict(pipeline.STAGES)[name]
    with console.status(f"{name} {day} …"):
        summary = _guarded(lambda: stage(day, settings, **options))
    console.print_json(json.dumps(summary, default=str))


def _guarded(call):
    """Run a stage; turn the pipeline's own errors into a readable message and exit code 1."""
    from journeys.errors import PipelineError

    try:
        return call()
    except PipelineError as e:
        err.print(f"[bold red]{type(e).__name__}[/]: {e}")
        raise typer.Exit(1) from e


@app.command()
def generate(
    customers: Annotated[int, typer.Option(help="People to simulate.")] = 3000,
    days: Annotated[int, typer.Option(help="Days of daily deliveries.")] = 365,
    start: Annotated[
        datetime, typer.Option(formats=["%Y-%m-%d"], help="First delivery date.")
    ] = datetime(2025, 1, 1),
    seed: Annotated[int, typer.Option(help="Random seed: same seed, same bytes.")] = 42,
) -> None:
    """Write sample exports (and their ground truth, apart) under JOURNEYS_HOME."""
    from journeys.sample import generate as generate_exports

    settings = get_settings()
    summary = generate_exports(
        customers=customers,
        days=days,
        start=start.date(),
        seed=seed,
        exports_dir=settings.exports,
        truth_dir=settings.truth,
        progress=sys.stderr.isatty(),
    )
    console.print_json(json.dumps(summary, default=str))


@app.command()
def land(run_date: RunDate = None) -> None:
    """Land every export delivered up to the date; print per-file counts."""
    settings = get_settings()
    day = _run_date(run_date, settings)
    summary = _guarded(lambda: pipeline.land(day, settings))
    table = Table("file", "status", "received", "loaded", "quarantined", "note", title="Landing")
    for f in summary["files"]:
        note = f["reason"] or ", ".join(
            [f"extra: {c}" for c in f["extra_columns"]] + [f"new: {v}" for v in f["unknown_values"]]
        )
        table.add_row(
            f["file"],
            f["status"],
            str(f["received"]),
            str(f["loaded"]),
            str(f["quarantined"]),
            note,
        )
    if summary["files"]:
        console.print(table)
    console.print(
        f"{summary['files_loaded']} files loaded, {summary['files_rejected']} rejected, "
        f"{summary['files_duplicate']} re-deliveries skipped; rows received "
        f"{summary['rows_received']:,} = loaded {summary['rows_loaded']:,} + quarantined "
        f"{summary['rows_quarantined']:,}"
    )
    if summary.get("erasure", {}).get("requests"):
        console.print("Erasure requests applied:")
        console.print_json(json.dumps(summary["erasure"], default=str))


@app.command()
def transform(
    run_date: RunDate = None,
    full_refresh: Annotated[
        bool,
        typer.Option(
            "--full-refresh",
            help="Rebuild the incremental models from scratch (after an upgrade that changes "
            "their columns, or to restate their history).",
        ),
    ] = False,
) -> None:
    """Build and test the dbt project (staging, intermediate, marts) for the date."""
    _stage("transform", run_date, full_refresh=full_refresh)


@app.command()
def validate(run_date: RunDate = None) -> None:
    """Run the Great Expectations gate; exit 1 naming every failed critical expectation."""
    _stage("validate", run_date)


@app.command()
def train(run_date: RunDate = None) -> None:
    """Train segmentation and churn models and register them in MLflow."""
    _stage("train", run_date)


@app.command()
def score(run_date: RunDate = None) -> None:
    """Score every customer with the champion models."""
    _stage("score", run_date)


@app.command()
def publish(run_date: RunDate = None) -> None:
    """Publish marts.customer_segments atomically and write the activation exports."""
    _stage("publish", run_date)


@app.command()
def run(run_date: RunDate = None) -> None:
    """The whole nightly pipeline for one date: land, transform, validate, train, score, publish."""
    settings = get_settings()
    day = _run_date(run_date, settings)
    console.print(
        f"[bold]Customer Journeys nightly run for {day}[/]  (JOURNEYS_HOME={settings.home})"
    )
    timings: dict[str, float] = {}

    def done(name: str, summary: dict, seconds: float) -> None:
        timings[name] = seconds
        console.print(f"  [green]✓[/] {name:<10} {seconds:6.1f} s")

    results = _guarded(lambda: pipeline.run(day, settings, on_stage=done))
    print_summary(settings, results, timings)


def print_summary(settings: Settings, results: dict, timings: dict[str, float]) -> None:
    from journeys.warehouse import connect

    with connect(settings) as con:
        counts = con.execute(
            "select table_schema, table_name from information_schema.tables "
            "where table_schema in ('raw', 'marts', 'ml') order by 1, 2"
        ).fetchall()
        rows = Table("table", "rows", title="Warehouse")
        for schema, name in counts:
            n = con.execute(f'select count(*) from "{schema}"."{name}"').fetchall()[0][0]
            rows.add_row(f"{schema}.{name}", f"{n:,}")
        rule_segments = con.execute(
            "select segment, channel, min(priority), count(*) from marts.customer_rule_segments "
            "group by 1, 2 order by 3"
        ).fetchall()
    console.print(rows)
    rules = Table("rule segment", "channel", "priority", "customers", title="Rule segments")
    for name, channel, priority, n in rule_segments:
        rules.add_row(name, channel, str(priority), f"{n:,}")
    console.print(rules)
    segments = Table("segment", "customers", title="Published segments")
    for name, n in results["publish"]["segment_sizes"].items():
        segments.add_row(name, f"{n:,}")
    console.print(segments)
    audiences = Table(
        "channel", "audience", "members", "exported", "control", "no consent", title="Activation"
    )
    for a in results["publish"].get("activation", {}).get("audiences", []):
        eligible = a["exported"] + a["control"]
        share = f" ({a['control'] / eligible:.1%})" if eligible else ""
        audiences.add_row(
            a["channel"],
            a["audience"],
            f"{a['members']:,}",
            f"{a['exported']:,}",
            f"{a['control']:,}{share}",
            f"{a['no_consent']:,}",
        )
    console.print(audiences)
    console.print(_churn_line(results["train"].get("churn") or {}))
    land = results["land"]
    console.print(
        f"Landing: {land['files_loaded']} files, {land['rows_loaded']:,} rows loaded, "
        f"{land['rows_quarantined']:,} quarantined, {land['files_rejected']} files rejected"
    )
    console.print(
        f"Total {sum(timings.values()):.1f} s. Activation file: "
        f"{results['publish']['activation_file']}"
    )
    _analyst_lines(results)


def _analyst_lines(results: dict) -> None:
    """Where analysts read (#11), and what tonight's erasure requests removed."""
    erasure = results["land"].get("erasure") or {}
    if erasure.get("requests"):
        console.print(
            f"Erasure: {erasure['requests']} request(s), {erasure['customers']} customer(s); "
            f"{erasure['landed_rows_erased']:,} landed rows and "
            f"{erasure['warehouse_rows_deleted']:,} warehouse rows removed, "
            f"{len(erasure['output_files_rewritten'])} output files rewritten"
        )
        if erasure["exports_still_holding_person"]:
            console.print(
                "  delivered exports that still hold them (purge at the source): "
                + ", ".join(erasure["exports_still_holding_person"])
            )
    published = results["publish"].get("analyst_warehouse")
    if published:
        console.print(
            f"Analyst warehouse: {published['analyst_warehouse']} ({published['tables']} "
            f"tables, {published['seconds']} s); reconnect to see tonight's data"
        )


@app.command()
def evaluate(
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Judge identity, churn and segments against the sample generator's ground truth."""
    from journeys.evaluate import evaluate as evaluate_warehouse

    settings = get_settings()
    if not (settings.truth / "record_map.parquet").exists():
        err.print(f"No ground truth under {settings.truth}: evaluate needs generated sample data.")
        raise typer.Exit(2)
    figures = evaluate_warehouse(settings)
    if as_json:
        print(json.dumps(figures))
        return
    table = Table("area", "figure", "value", title="Evaluation against ground truth")
    for area, values in figures.items():
        for key, value in values.items():
            table.add_row(area, key, f"{value:.4f}" if isinstance(value, float) else str(value))
    console.print(table)


def _churn_line(churn: dict) -> str:
    """One line on the churn model: its holdout AUC next to every baseline it was judged with."""
    if churn.get("auc") is None:
        return f"Churn model: none this run ({churn.get('reason', 'no trained champion yet')})"
    baselines = ", ".join(
        f"{key.removeprefix('baseline_').removesuffix('_auc')} {value:.3f}"
        for key, value in churn.items()
        if key.startswith("baseline_")
        and key.endswith("_auc")
        and not key.endswith("_pr_auc")
        and value is not None
    )
    rows = f"; {churn['holdout_rows']:,} customers" if churn.get("holdout_rows") else ""
    rate = churn.get("holdout_churn_rate")
    rate = f", churn rate {rate:.1%}" if rate is not None else ""
    return (
        f"Churn model v{churn.get('version')}: holdout AUC [bold]{churn['auc']:.3f}[/] "
        f"(baselines: {baselines or 'none'}{rows}{rate})"
    )


@app.command()
def paths() -> None:
    """Print where this environment keeps its data (from JOURNEYS_* variables)."""
    for key, value in vars(get_settings()).items():
        if key == "erasure_salt" and value:
            value = "(set; secret)"
        console.print(f"{key:<20} {value}")


segments_app = typer.Typer(
    help="Rule segments as code (dbt_project/segments.yml): validate, compile to dbt models.",
    no_args_is_help=True,
)
app.add_typer(segments_app, name="segments")


@segments_app.command("check")
def segments_check() -> None:
    """Validate segments.yml; exit 1 naming the file, the segment and the reason."""
    from journeys.segments import check_segments, stale_files

    settings = get_settings()
    segments = _guarded(lambda: check_segments(settings))
    table = Table("segment", "priority", "channel", "condition", title=str(settings.segments_file))
    for s in sorted(segments, key=lambda s: s.priority):
        table.add_row(s.name, str(s.priority), s.channel, s.condition)
    console.print(table)
    stale = stale_files(settings, segments)
    if stale:
        console.print(f"[yellow]Compiled models out of date[/]: {', '.join(stale)}")
        console.print("Run `journeys segments compile` (transform does it too).")


@segments_app.command("compile")
def segments_compile() -> None:
    """Validate segments.yml and write its dbt models (only the files that changed)."""
    from journeys.segments import compile_segments

    summary = _guarded(lambda: compile_segments(get_settings()))
    console.print_json(json.dumps(summary))


@app.command()
def forget(
    email: Annotated[str | None, typer.Option(help="The person's e-mail address.")] = None,
    customer_id: Annotated[str | None, typer.Option(help="Their customer_id.")] = None,
    crm_id: Annotated[str | None, typer.Option(help="One of their CRM record ids.")] = None,
) -> None:
    """Record an erasure request (salted hashes only); the next run erases the person."""
    from journeys.erasure import ErasureError, record_request

    try:
        request = record_request(
            get_settings(), email=email, customer_id=customer_id, crm_id=crm_id
        )
    except ErasureError as e:
        err.print(f"[red]{e}[/]")
        raise typer.Exit(2) from e
    console.print(
        f"Erasure request {request.request_id} recorded ({len(request.identifiers)} salted "
        f"hash(es), no plain identifiers): the next `journeys run` erases the person."
    )


@app.command()
def explain(
    customer_id: Annotated[str, typer.Argument(help="The customer_id to explain.")],
) -> None:
    """Why a customer is where they are: records, match evidence, features, scores, consent."""
    from journeys.explain import CustomerNotFound
    from journeys.explain import explain as explain_customer

    try:
        explanation = explain_customer(get_settings(), customer_id)
    except CustomerNotFound as e:
        err.print(f"[red]{e}[/]")
        raise typer.Exit(1) from e
    console.rule(f"[bold]Customer {customer_id}")
    console.print(f"[dim]Read from the {explanation.source}[/]")
    for section in explanation.sections:
        if section.note and not section.rows:
            console.print(f"[bold]{section.title}[/]: [yellow]{section.note}[/]")
            continue
        table = Table(*section.columns, title=section.title, title_justify="left")
        for row in section.rows:
            table.add_row(*("" if v is None else str(v) for v in row))
        console.print(table)
        if not section.rows:
            console.print("  (none)")
        if section.total:
            console.print(f"  … {section.total:,} rows in all, first {len(section.rows)} shown")


@app.command("publish-analyst")
def publish_analyst(run_date: RunDate = None) -> None:
    """Re-publish the read-only analyst warehouse (the nightly run does it after publishing)."""
    from journeys.analyst import publish_analyst_warehouse

    settings = get_settings()
    day = _run_date(run_date, settings)
    console.print_json(json.dumps(publish_analyst_warehouse(settings, day), default=str))


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    app()
