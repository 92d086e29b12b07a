import subprocess
import sys
from pathlib import Path

from journeys.settings import REPO_ROOT, get_settings


def test_every_path_defaults_under_one_home(tmp_path: Path) -> None:
    settings = get_settings({"JOURNEYS_HOME": str(tmp_path)})
    for path in (
        settings.exports,
        settings.warehouse,
        settings.landed,
        settings.truth,
        settings.activation,
        settings.mlflow_artifacts,
    ):
        assert tmp_path in path.parents
    assert settings.mlflow_uri == f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}"


def test_default_home_is_the_repositorys_data_folder() -> None:
    assert get_settings({}).home == REPO_ROOT / "data"


def test_each_path_can_be_moved_alone(tmp_path: Path) -> None:
    settings = get_settings(
        {
            "JOURNEYS_HOME": str(tmp_path / "home"),
            "JOURNEYS_EXPORTS": str(tmp_path / "drop"),
            "JOURNEYS_REPORTING_CURRENCY": "usd",
        }
    )
    assert settings.exports == tmp_path / "drop"
    assert settings.warehouse == tmp_path / "home" / "warehouse.duckdb"
    assert settings.reporting_currency == "USD"


def test_importing_settings_does_no_work(tmp_path: Path) -> None:
    """No folder is created, no heavy library imported, by importing the settings module."""
    home = tmp_path / "never-created"
    code = (
        "import sys, journeys.settings as s; s.get_settings();"
        "heavy = {'duckdb', 'mlflow', 'dbt', 'pandas', 'great_expectations'} & set(sys.modules);"
        "print(sorted(heavy))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"JOURNEYS_HOME": str(home), "PATH": ""},
    )
    assert out.stdout.strip() == "[]"
    assert not home.exists()
