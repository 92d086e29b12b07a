import subprocess
import sys


def test_help_is_fast_and_imports_nothing_heavy() -> None:
    code = (
        "import sys; from typer.testing import CliRunner; from journeys.cli import app;"
        "r = CliRunner().invoke(app, ['--help']); assert r.exit_code == 0, r.output;"
        "heavy = {'duckdb', 'mlflow', 'dbt', 'great_expectations', 'sklearn', 'xgboost'};"
        "print(sorted(heavy & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"
