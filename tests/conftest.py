"""Shared fixtures: small sample exports generated once per session in a temp folder."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pytest

# Nothing in a test may reach the network or leave tracking state behind.
for key, value in {
    "DO_NOT_TRACK": "true",
    "DBT_SEND_ANONYMOUS_USAGE_STATS": "False",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "GX_ANALYTICS_ENABLED": "False",
}.items():
    os.environ.setdefault(key, value)

from journeys.settings import Settings, get_settings  # noqa: E402

SAMPLE_CUSTOMERS = 800
SAMPLE_DAYS = 300
SAMPLE_START = date(2025, 1, 1)
SAMPLE_SEED = 7


@dataclass(frozen=True)
class SampleHome:
    """A JOURNEYS_HOME with sample exports; `run_date` is the last delivery day."""

    home: Path
    settings: Settings
    run_date: date


def _home(path: Path) -> SampleHome:
    return SampleHome(
        path,
        get_settings({"JOURNEYS_HOME": str(path)}),
        SAMPLE_START + timedelta(days=SAMPLE_DAYS - 1),
    )


@pytest.fixture(scope="session")
def sample_exports(tmp_path_factory: pytest.TempPathFactory) -> SampleHome:
    """Generated once per session; treat as read-only (copy it with `sample_home`)."""
    from journeys.sample import generate

    sample = _home(tmp_path_factory.mktemp("sample"))
    generate(
        customers=SAMPLE_CUSTOMERS,
        days=SAMPLE_DAYS,
        start=SAMPLE_START,
        seed=SAMPLE_SEED,
        exports_dir=sample.settings.exports,
        truth_dir=sample.settings.truth,
        progress=False,
    )
    return sample


@pytest.fixture
def sample_home(sample_exports: SampleHome, tmp_path: Path) -> SampleHome:
    """A fresh JOURNEYS_HOME holding a copy of the session's sample exports and truth."""
    home = _home(tmp_path / "home")
    shutil.copytree(sample_exports.settings.exports, home.settings.exports)
    shutil.copytree(sample_exports.settings.truth, home.settings.truth)
    return home


@pytest.fixture(scope="session")
def nightly_run(sample_exports: SampleHome, tmp_path_factory: pytest.TempPathFactory):
    """One full nightly run on the sample, shared by the end-to-end tests that only read it."""
    from journeys import pipeline

    home = _home(tmp_path_factory.mktemp("nightly"))
    shutil.copytree(sample_exports.settings.exports, home.settings.exports)
    shutil.copytree(sample_exports.settings.truth, home.settings.truth)
    results = pipeline.run(home.run_date, home.settings)
    return home, results


@pytest.fixture(scope="session")
def process_env():
    """Builds the environment of a subprocess a test starts: this process's without any
    JOURNEYS_* variable (a developer's shell may set some), plus the given ones. The child sees
    exactly the home the test names, whatever ran before it in this process."""

    def build(**variables: str) -> dict[str, str]:
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("JOURNEYS_")}
        return {**inherited, **variables}

    return build
