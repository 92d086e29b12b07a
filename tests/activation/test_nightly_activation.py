"""The nightly run's activation output: every audience exported with its manifest, consent held."""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from journeys.publish import publish_segments
from journeys.warehouse import connect

pytestmark = pytest.mark.e2e


def test_the_nightly_run_exports_every_audience_with_a_manifest(nightly_run) -> None:
    home, results = nightly_run
    activation = results["publish"]["activation"]
    folder = Path(activation["folder"])
    assert folder == home.settings.activation / home.run_date.isoformat()
    assert activation["audiences"], "no audience was exported"
    with connect(home.settings) as con:
        consented = {
            (customer, channel)
            for customer, channel in con.execute(
                "select customer_id, channel from marts.customer_consent where is_consented"
            ).fetchall()
        }
        statuses = con.execute(
            "select count(distinct consent_status), count(*) filter (is_consented), count(*) "
            "from marts.customer_consent"
        ).fetchall()[0]
    assert statuses[0] == 3 and 0 < statuses[1] < statuses[2]  # opt_in, opt_out and none
    for audience in activation["audiences"]:
        stem = folder / audience["channel"] / audience["audience"]
        manifest = json.loads(stem.with_name(f"{stem.name}.manifest.json").read_text())
        for kind in ("csv", "parquet"):
            path = stem.with_name(f"{stem.name}.{kind}")
            assert (
                manifest["files"][kind]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
            )
        exported = pd.read_parquet(stem.with_name(f"{stem.name}.parquet"))
        counts = manifest["counts"]
        assert len(exported) == counts["exported"] == audience["exported"]
        assert counts["members"] == sum(v for k, v in counts.items() if k != "members")
        assert manifest["snapshot_date"] == home.run_date.isoformat()
        assert manifest["model_versions"] and manifest["model_decisions"]
        assert all((c, audience["channel"]) in consented for c in exported["customer_id"])


def test_ads_exports_of_a_real_run_carry_hashes_only(nightly_run, tmp_path: Path) -> None:
    home, _ = nightly_run
    settings = replace(
        home.settings,
        home=tmp_path,
        warehouse=tmp_path / "warehouse.duckdb",
        activation=tmp_path / "activation",
        activation_default_channel="ads",
    )
    with connect(home.settings) as con:
        con.execute("checkpoint")
    shutil.copy(home.settings.warehouse, settings.warehouse)
    summary = publish_segments(settings, home.run_date)["activation"]
    # Model segments now go to ads; rule segments keep the channel their definition names.
    model_audiences = [a for a in summary["audiences"] if a["audience"].startswith("model_")]
    assert model_audiences
    assert {a["channel"] for a in model_audiences} == {"ads"}
    assert sum(a["exported"] for a in model_audiences) > 0
    files = list((settings.activation / home.run_date.isoformat() / "ads").iterdir())
    assert files
    for path in files:
        if path.suffix == ".parquet":
            frame = pd.read_parquet(path)
            assert not frame.map(lambda v: isinstance(v, str) and "@" in v).any().any(), path
            if not path.name.endswith(".diff.parquet"):
                assert frame["email_sha256"].dropna().str.fullmatch("[0-9a-f]{64}").all()
                assert frame["email_sha256"].notna().any()
        else:
            assert "@" not in path.read_text(), path
