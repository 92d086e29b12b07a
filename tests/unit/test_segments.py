"""Rule segments as code: a bad definition stops the run up front, naming file, segment, reason."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from journeys import pipeline
from journeys.segments import (
    SegmentDefinitionError,
    check_segments,
    compiled_files,
    feature_columns,
    load_segments,
    stale_files,
)
from journeys.settings import DBT_PROJECT_DIR, get_settings

GOOD = {
    "name": "big_spenders",
    "description": "Spent a lot.",
    "condition": "monetary >= 500 and frequency > 1",
    "priority": 1,
    "channel": "email",
}


def _write(tmp_path: Path, *segments: dict) -> Path:
    path = tmp_path / "segments.yml"
    path.write_text(yaml.safe_dump({"segments": list(segments)}))
    return path


def test_shipped_segments_are_valid_and_compiled() -> None:
    settings = get_settings()
    segments = check_segments(settings)
    names = {s.name for s in segments}
    assert {"vip", "win_back", "abandoned_cart_24h", "new_customer_welcome", "at_risk"} <= names
    assert all(s.channel in {"email", "sms", "push", "ads"} for s in segments)
    # The committed models are exactly what segments.yml compiles to.
    assert stale_files(settings, segments) == []


def test_a_good_definition_compiles_to_a_model_over_customer_features(tmp_path: Path) -> None:
    [segment] = load_segments(_write(tmp_path, GOOD), DBT_PROJECT_DIR)
    files = compiled_files([segment])
    model = files["models/marts/rule_segments/rule_segment_big_spenders.sql"]
    assert "ref('customer_features')" in model
    assert "monetary >= 500 and frequency > 1" in model
    assert (
        "ref('rule_segment_big_spenders')"
        in files["models/marts/rule_segments/customer_rule_segments.sql"]
    )


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"condition": "monetery > 100"}, "unknown column 'monetery'"),
        ({"condition": "monetary >"}, "condition is not valid SQL"),
        ({"condition": "monetary > 1; drop table marts.dim_customers"}, "one SQL expression"),
        (
            {"condition": "customer_id in (select customer_id from marts.dim_customers)"},
            "subquery",
        ),
        ({"channel": "fax"}, "unknown channel 'fax'"),
        ({"priority": "high"}, "priority must be a whole number"),
        ({"name": "Big Spenders"}, "name must be lower-case"),
        ({"condition": None}, "missing condition"),
        ({"audience": "everyone"}, "unknown key audience"),
    ],
)
def test_bad_definition_names_file_segment_and_reason(
    tmp_path: Path, change: dict, reason: str
) -> None:
    path = _write(tmp_path, {**GOOD, **change})
    with pytest.raises(SegmentDefinitionError) as failure:
        load_segments(path, DBT_PROJECT_DIR)
    message = str(failure.value)
    assert str(path) in message
    assert reason in message
    assert "segment " in message


def test_duplicate_names_and_every_problem_are_reported_together(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        GOOD,
        {**GOOD, "priority": 2},
        {**GOOD, "name": "lapsed_fans", "condition": "lifecycle_stag = 'lapsed'"},
    )
    with pytest.raises(SegmentDefinitionError) as failure:
        load_segments(path, DBT_PROJECT_DIR)
    message = str(failure.value)
    assert "2 bad segment definition(s)" in message
    assert f"{path}: segment 'big_spenders': duplicate name" in message
    assert f"{path}: segment 'lapsed_fans': unknown column 'lifecycle_stag'" in message


def test_columns_come_from_the_documented_feature_table() -> None:
    columns = feature_columns(DBT_PROJECT_DIR)
    assert {"recency_days", "rfm_score", "is_vip", "lifecycle_stage"} <= set(columns)
    assert len(columns) == len(set(columns))


def test_cli_check_exits_1_with_the_reason(tmp_path: Path) -> None:
    from journeys.cli import app

    path = _write(tmp_path, {**GOOD, "channel": "pigeon"})
    result = CliRunner().invoke(
        app, ["segments", "check"], env={"JOURNEYS_SEGMENTS_FILE": str(path)}
    )
    assert result.exit_code == 1
    assert "unknown channel 'pigeon'" in result.output
    ok = CliRunner().invoke(
        app, ["segments", "check"], env={"JOURNEYS_SEGMENTS_FILE": str(_write(tmp_path, GOOD))}
    )
    assert ok.exit_code == 0, ok.output
    assert "big_spenders" in ok.output


@pytest.mark.parametrize("stage", ["run", "transform"])
def test_bad_segments_stop_the_run_before_anything_runs(tmp_path: Path, stage: str) -> None:
    settings = get_settings(
        {
            "JOURNEYS_HOME": str(tmp_path / "home"),
            "JOURNEYS_SEGMENTS_FILE": str(_write(tmp_path, {**GOOD, "condition": "nope >"})),
        }
    )
    with pytest.raises(SegmentDefinitionError, match="big_spenders"):
        getattr(pipeline, stage)(date(2025, 1, 31), settings)
    # Nothing ran: no warehouse, nothing landed.
    assert not settings.warehouse.exists()
    assert not settings.landed.exists()
