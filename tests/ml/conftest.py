"""Fixtures for the model-behaviour tests: read the shared nightly run, or copy its warehouse."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from journeys.settings import get_settings
from journeys.warehouse import connect


@pytest.fixture
def warehouse_copy(nightly_run, tmp_path: Path):
    """A fresh JOURNEYS_HOME with a copy of the nightly run's warehouse, minus every model trace.

    Its MLflow store is empty and its `ml` schema dropped: a warehouse no model has seen yet.
    """
    home, _ = nightly_run
    settings = get_settings({"JOURNEYS_HOME": str(tmp_path / "home")})
    settings.warehouse.parent.mkdir(parents=True, exist_ok=True)
    with connect(home.settings) as con:
        con.execute("checkpoint")  # everything in the file itself, nothing left in the WAL
    shutil.copy(home.settings.warehouse, settings.warehouse)
    with connect(settings) as con:
        con.execute("drop schema if exists ml cascade")  # no scores, no model decisions yet
    return settings, home.run_date
