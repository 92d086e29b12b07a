"""The whole nightly pipeline on generated sample exports: real DuckDB, dbt, GX and MLflow."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from datetime import timedelta

import pytest
from typer.testing import CliRunner

from journeys import pipeline
from journeys.cli import app
from journeys.contract import ENTITIES
from journeys.warehouse import connect

pytestmark = pytest.mark.e2e

SEGMENT_COLUMNS = {
    "customer_id",
    "snapshot_date",
    "segment_id",
    "segment_name",
    "churn_probability",
    "model_version",
}


def test_nightly_run_publishes_segments_and_activation_file(nightly_run) -> None:
    home, results = nightly_run
    with connect(home.settings) as con:
        columns = {
            r[0]
            for r in con.execute(
                "select column_name from information_schema.columns "
                "where table_schema = 'marts' and table_name = 'customer_segments'"
            ).fetchall()
        }
        rows, customers, dates = con.execute(
            "select count(*), count(distinct customer_id), list(distinct snapshot_date) "
            "from marts.customer_segments"
        ).fetchone()
        featured = con.execute(
            "select count(*) from marts.customer_features where snapshot_date = ?", [home.run_date]
        ).fetchone()[0]
    assert SEGMENT_COLUMNS <= columns
    assert rows == customers == featured > 0
    assert dates == [home.run_date]
    assert sum(results["publish"]["segment_sizes"].values()) == rows
    with open(results["publish"]["activation_file"], newline="") as f:
        exported = list(csv.DictReader(f))
    assert len(exported) == rows
    assert "email" not in exported[0]  # ids and scores only, no raw PII


def test_every_received_row_is_loaded_or_quarantined(nightly_run) -> None:
    home, results = nightly_run
    assert results["land"]["rows_received"] == (
        results["land"]["rows_loaded"] + results["land"]["rows_quarantined"]
    )
    assert results["land"]["rows_quarantined"] > 0  # the sample carries malformed rows on purpose
    with connect(home.settings) as con:
        mismatched = con.execute(
            "select file from raw.load_manifest where status = 'loaded' "
            "and rows_received <> rows_loaded + rows_quarantined"
        ).fetchall()
        assert mismatched == []
        for entity in ENTITIES:
            landed = con.execute(f"select count(*) from raw.{entity.table}").fetchone()[0]
            recorded = con.execute(
                "select coalesce(sum(rows_loaded), 0) from raw.load_manifest "
                "where status = 'loaded' and source = ? and entity = ?",
                [entity.source, entity.name],
            ).fetchone()[0]
            assert landed == recorded, entity.table
            quarantined = con.execute(
                "select count(*) from raw.quarantine where source = ? and entity = ?",
                [entity.source, entity.name],
            ).fetchone()[0]
            expected = con.execute(
                "select coalesce(sum(rows_quarantined), 0) from raw.load_manifest "
                "where source = ? and entity = ?",
                [entity.source, entity.name],
            ).fetchone()[0]
            assert quarantined == expected, entity.table


def test_models_are_tracked_in_mlflow_and_churn_beats_chance(nightly_run) -> None:
    import mlflow

    from ml import tracking

    home, results = nightly_run
    churn = results["train"]["churn"]
    assert churn["auc"] > 0.6
    assert churn["train_rows"] > 0 and churn["holdout_rows"] > 0
    tracking.configure(home.settings)
    client = mlflow.MlflowClient()
    for name in (tracking.SEGMENTATION_MODEL, tracking.CHURN_MODEL):
        champion = client.get_model_version_by_alias(name, tracking.CHAMPION)
        run = client.get_run(champion.run_id)
        assert run.data.params and run.data.metrics
    # Model artifacts live under the data folder, never in ./mlruns of the working directory.
    assert any(home.settings.mlflow_artifacts.rglob("MLmodel"))


def _published(settings):
    with connect(settings) as con:
        return con.execute(
            "select customer_id, snapshot_date, segment_id, segment_name, "
            "round(churn_probability, 6) from marts.customer_segments order by 1"
        ).fetchall()


def _contents(settings):
    with connect(settings) as con:
        return {
            table: con.execute(f"select * from {table} order by all").fetchall()
            for table in (
                "raw.shop_orders",
                "raw.quarantine",
                "marts.fct_orders",
                "marts.customer_features",
                "marts.dim_customers",
                "marts.customer_identifiers",
            )
        } | {
            "manifest": con.execute(
                "select file, status, rows_received, rows_loaded, rows_quarantined "
                "from raw.load_manifest order by all"
            ).fetchall(),
            "history": con.execute(
                "select snapshot_date, count(*) from marts.customer_segments_history "
                "group by 1 order by 1"
            ).fetchall(),
        }


def test_rerunning_the_same_day_changes_nothing(sample_home) -> None:
    settings, day = sample_home.settings, sample_home.run_date
    pipeline.run(day, settings)
    first, first_published = _contents(settings), _published(settings)
    second_results = pipeline.run(day, settings)
    assert second_results["land"]["files_loaded"] == 0
    assert _contents(settings) == first
    # Retraining on the same data gives the same models, so the same segments and scores.
    assert _published(settings) == first_published


def test_quality_gate_failure_stops_publication(sample_home) -> None:
    settings, day = sample_home.settings, sample_home.run_date
    pipeline.run(day, settings)
    before = _published(settings)

    # The next day's delivery carries an order with a negative amount: valid for the export
    # contract, but the gate's critical expectation amount >= 0 must stop publication.
    next_day = day + timedelta(days=1)
    folder = settings.exports / "shop" / next_day.isoformat()
    folder.mkdir(parents=True)
    (folder / "orders.csv").write_text(
        "order_id,ordered_at,status,currency,total_amount,customer_email\n"
        f"BAD-1,{next_day}T10:00:00Z,completed,EUR,-125.50,someone@example.org\n"
    )
    result = CliRunner().invoke(
        app, ["run", "--date", next_day.isoformat()], env={"JOURNEYS_HOME": str(sample_home.home)}
    )
    assert result.exit_code == 1, result.output
    assert "QualityGateError" in result.output
    assert "marts.fct_orders.amount" in result.output
    assert _published(settings) == before  # the last good version stays published


def test_evaluate_reports_figures_against_the_truth(nightly_run, process_env) -> None:
    home, _ = nightly_run
    # Its own process, as an analyst runs it: it opens the warehouse read-only.
    result = subprocess.run(
        [sys.executable, "-m", "journeys.cli", "evaluate", "--json"],
        env=process_env(JOURNEYS_HOME=str(home.home)),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(figures["identity"]) >= {"precision", "recall", "f1"}
    assert set(figures["churn"]) >= {"auc", "oracle_auc", "purchase_optimum_auc"}
    assert "ari" in figures["segments"]
    # The supervised ceiling knows the archetypes: the unsupervised segments stay below it,
    # up to its noise (a cross-validated estimate on a sample of a few thousand customers).
    segments = figures["segments"]
    assert 0 < segments["archetype_ceiling_ari"] <= 1
    assert segments["ari"] <= segments["archetype_ceiling_ari"] + 0.05
    # Sanity, not targets: e-mail linking is precise; the oracle knows more than any model.
    assert figures["identity"]["precision"] > 0.9
    assert figures["churn"]["oracle_auc"] > figures["churn"]["auc"] > 0.5
