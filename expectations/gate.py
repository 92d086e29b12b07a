"""The quality gate: validate the marts with Great Expectations before anything is published.

`run_checkpoint` validates pandas frames (pure: no warehouse, no report file) through one GX
Checkpoint per table and, given a folder, builds Data Docs there. `validate_warehouse` reads the
two marts from the DuckDB warehouse (read-only), runs the checkpoints, writes the report JSON and
raises `QualityGateError` when a critical expectation failed.

GX is validated against DataFrames on purpose: its SQL datasource on DuckDB returns wrong
results (see shared STACK notes). Heavy libraries (GX ~5 s, pandas, duckdb) are imported inside
the functions, so importing this module is cheap.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from expectations.suites import (
    CRITICAL,
    CUSTOMER_FEATURES,
    FCT_ORDERS,
    WARNING,
    build_suite,
    import_gx,
    qualified,
)
from journeys.errors import PipelineError

if TYPE_CHECKING:  # pragma: no cover
    import pandas

    from journeys.settings import Settings

DATASOURCE = "journeys_marts"
BATCH_DEFINITION = "whole_frame"
DOCS_SITE = "journeys_quality_gate"
CHECKPOINT_PREFIX = "publication_gate"
# Values of unexpected rows shown in reports and messages (Data Docs show GX's own sample).
SAMPLE_SIZE = 5
RESULT_FORMAT = {"result_format": "SUMMARY", "partial_unexpected_count": 20}


class QualityGateError(PipelineError):
    """A critical expectation failed: the data must not be published.

    The message lists every failed critical expectation as
    ``table.column: expectation (observed ...)``; `.report` is the full report (dict).
    """

    def __init__(self, report: dict[str, Any]) -> None:
        self.report = report
        lines = failure_lines(report, severity=CRITICAL)
        message = f"quality gate failed: {len(lines)} critical expectation(s) failed"
        message += "".join(f"\n  {line}" for line in lines)
        if report.get("data_docs"):
            message += f"\nData Docs: {report['data_docs']}"
        super().__init__(message)


def failure_lines(report: Mapping[str, Any], severity: str | None = None) -> list[str]:
    """``table.column: expectation (observed ...)`` for each failure (of `severity`, if given)."""
    lines = []
    for table, outcome in report.get("tables", {}).items():
        for failure in outcome.get("failed", []):
            if severity is not None and failure.get("severity") != severity:
                continue
            where = f"{table}.{failure['column']}" if failure.get("column") else table
            lines.append(f"{where}: {failure['expectation']} (observed {failure['observed']})")
    return lines


def run_checkpoint(
    tables: Mapping[str, pandas.DataFrame],
    docs_dir: Path | None,
    *,
    run_name: str | None = None,
) -> dict[str, Any]:
    """Validate `tables` (``marts.fct_orders`` / ``fct_orders`` -> frame) with their suites.

    Each table runs through its own Checkpoint (a Checkpoint's batch parameters, i.e. the
    dataframe, are shared by all its validation definitions). With `docs_dir`, every Checkpoint
    ends with `UpdateDataDocsAction` on a local site rooted at `docs_dir` (open
    ``docs_dir/index.html``); the context is ephemeral, so each run rebuilds the site with this
    run's results only and a rerun in the same folder replaces it.

    Returns a JSON-serialisable report::

        {"success": bool,
         "tables": {table: {"success", "rows", "evaluated",
                            "failed": [{"expectation", "column", "severity", "observed",
                                        "kwargs"}]}},
         "data_docs": "<docs_dir>/index.html" or None}

    A table succeeds when none of its critical expectations failed; warnings are listed in
    "failed" with severity "warning" and do not affect success.
    """
    if not tables:
        raise ValueError("run_checkpoint needs at least one table")
    frames = {qualified(name): frame for name, frame in tables.items()}
    if len(frames) != len(tables):
        raise ValueError(f"a table is given twice: {sorted(tables)}")

    gx, _ = import_gx()
    from great_expectations.checkpoint import UpdateDataDocsAction
    from great_expectations.core.run_identifier import RunIdentifier

    docs_dir = Path(docs_dir).resolve() if docs_dir is not None else None
    context = _ephemeral_context(docs_dir)
    source = context.data_sources.add_pandas(name=DATASOURCE)
    run_id = RunIdentifier(run_name=run_name or CHECKPOINT_PREFIX, run_time=datetime.now(UTC))

    outcomes: dict[str, Any] = {}
    for table, frame in frames.items():
        suite = context.suites.add_or_update(build_suite(table, [str(c) for c in frame.columns]))
        batch_definition = source.add_dataframe_asset(
            name=table
        ).add_batch_definition_whole_dataframe(BATCH_DEFINITION)
        validation = context.validation_definitions.add_or_update(
            gx.ValidationDefinition(name=f"{table} gate", data=batch_definition, suite=suite)
        )
        actions = []
        if docs_dir is not None:
            actions.append(UpdateDataDocsAction(name="update_data_docs", site_names=[DOCS_SITE]))
        checkpoint = context.checkpoints.add_or_update(
            gx.Checkpoint(
                name=f"{CHECKPOINT_PREFIX} {table}",
                validation_definitions=[validation],
                actions=actions,
                result_format=RESULT_FORMAT,
            )
        )
        result = checkpoint.run(batch_parameters={"dataframe": frame}, run_id=run_id)
        outcomes[table] = _table_outcome(result, rows=len(frame))

    return {
        "success": all(outcome["success"] for outcome in outcomes.values()),
        "tables": outcomes,
        "data_docs": str(docs_dir / "index.html") if docs_dir is not None else None,
    }


def validate_warehouse(settings: Settings, run_date: date) -> dict[str, Any]:
    """The gate of the nightly run: validate the marts in `settings.warehouse` for `run_date`.

    Reads all of ``marts.fct_orders`` and the ``run_date`` snapshot of
    ``marts.customer_features`` (connection closed before validating), builds Data
    Docs in ``<home>/gx/data_docs`` and writes the report to
    ``<home>/gx/reports/<run_date>.json``. Raises `QualityGateError` if a critical expectation
    failed; otherwise returns a short summary.
    """
    from journeys.warehouse import connect

    if not settings.warehouse.is_file():
        raise FileNotFoundError(f"warehouse not found: {settings.warehouse}")
    # The pipeline's own connection discipline (see journeys.warehouse): read-write config,
    # because dbt may hold the file open in this process; nothing is written.
    with connect(settings) as con:
        orders = con.sql(f"select * from {FCT_ORDERS}").df()
        features = con.sql(
            f"select * from {CUSTOMER_FEATURES} where snapshot_date = $run_date",
            params={"run_date": run_date},
        ).df()

    gx_home = settings.home / "gx"
    report = run_checkpoint(
        {FCT_ORDERS: orders, CUSTOMER_FEATURES: features},
        docs_dir=gx_home / "data_docs",
        run_name=f"{CHECKPOINT_PREFIX} {run_date.isoformat()}",
    )
    report = {
        "run_date": run_date.isoformat(),
        "warehouse": str(settings.warehouse),
        **report,
    }
    report_path = gx_home / "reports" / f"{run_date.isoformat()}.json"
    _write_json(report_path, report)

    if not report["success"]:
        raise QualityGateError(report)
    return {
        "run_date": report["run_date"],
        "tables": {t: o["rows"] for t, o in report["tables"].items()},
        "expectations_evaluated": sum(o["evaluated"] for o in report["tables"].values()),
        "warnings": failure_lines(report, severity=WARNING),
        "report": str(report_path),
        "data_docs": report["data_docs"],
    }


# --- internals -------------------------------------------------------------------------------


def _ephemeral_context(docs_dir: Path | None) -> Any:
    """An in-memory context whose only Data Docs site (if any) is a local folder."""
    gx, _ = import_gx()
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    sites: dict[str, Any] = {}
    if docs_dir is not None:
        sites[DOCS_SITE] = {
            "class_name": "SiteBuilder",
            "show_how_to_buttons": False,
            "store_backend": {
                "class_name": "TupleFilesystemStoreBackend",
                "base_directory": str(docs_dir),
            },
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        }
    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(),
        data_docs_sites=sites,  # not the default temporary-folder site
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False),  # no tqdm bars in nightly logs
    )
    return gx.get_context(mode="ephemeral", project_config=config)


def _table_outcome(checkpoint_result: Any, rows: int) -> dict[str, Any]:
    failed: list[dict[str, Any]] = []
    evaluated = 0
    for validation_result in checkpoint_result.run_results.values():
        for result in validation_result.results:
            evaluated += 1
            if bool(result.success):
                continue
            config = result.expectation_config
            kwargs = dict(config.kwargs)
            column = kwargs.pop("column", None)
            column_list = kwargs.pop("column_list", None)
            if column is None and column_list:
                column = f"({', '.join(column_list)})"
            kwargs.pop("batch_id", None)
            severity = (config.meta or {}).get("severity", CRITICAL)  # unmarked: fail safe
            failed.append(
                {
                    "expectation": config.type,
                    "column": column,
                    "severity": severity if severity in (CRITICAL, WARNING) else CRITICAL,
                    "observed": _observed(
                        config.type, result.result or {}, _exception_message(result)
                    ),
                    "kwargs": {k: _jsonable(v) for k, v in kwargs.items() if v is not None},
                }
            )
    return {
        "success": not any(f["severity"] == CRITICAL for f in failed),
        "rows": rows,
        "evaluated": evaluated,
        "failed": failed,
    }


def _exception_message(result: Any) -> str | None:
    info = result.exception_info or {}
    # Either {"raised_exception": ..., "exception_message": ...} or one such dict per metric.
    candidates = [info] if "raised_exception" in info else list(info.values())
    for candidate in candidates:
        if isinstance(candidate, Mapping) and candidate.get("raised_exception"):
            return str(candidate.get("exception_message") or "exception")
    return None


def _observed(expectation: str, result: Mapping[str, Any], exception: str | None) -> str:
    if exception:
        return f"error: {exception}"
    if "unexpected_count" in result:
        count, total = result["unexpected_count"], result.get("element_count")
        what = "null" if expectation == "expect_column_values_to_not_be_null" else "unexpected"
        text = f"{count} of {total} rows {what}"
        if result.get("unexpected_percent") is not None:
            text += f" ({float(result['unexpected_percent']):.3g}%)"
        sample = [
            _show(item["value"])
            for item in result.get("partial_unexpected_counts") or []
            if not _is_missing(item.get("value"))
        ][:SAMPLE_SIZE]
        if sample:
            text += f", e.g. {', '.join(sample)}"
        return text
    if "observed_value" in result:
        return _show(result["observed_value"])
    return "no details"


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        import pandas

        return bool(pandas.isna(value))
    except (TypeError, ValueError):  # containers: not a missing scalar
        return False


def _show(value: Any) -> str:
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, tuple | list):
        return "(" + ", ".join(_show(v) for v in value) + ")"
    if hasattr(value, "item") and not hasattr(value, "__len__"):  # numpy scalar -> Python
        value = value.item()
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _jsonable(value: Any) -> Any:
    if isinstance(value, bool | int | str) or value is None:
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, list | tuple | set):
        return [_jsonable(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return str(value)


def _write_json(path: Path, payload: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    tmp.replace(path)
