"""dbt's own unit tests (`unit_tests:` in the models' yml): the logic of the SQL models."""

from datetime import date
from pathlib import Path

from journeys.landing import land_exports
from journeys.settings import get_settings
from journeys.transform import invoke


def test_dbt_unit_tests_pass(tmp_path: Path) -> None:
    settings = get_settings({"JOURNEYS_HOME": str(tmp_path)})
    land_exports(settings)  # no exports: every raw relation exists, empty, with its columns
    results = invoke(settings, ["test", "--select", "test_type:unit"], date(2025, 1, 1))
    assert results, "no dbt unit test was selected"
    assert {r["status"] for r in results} == {"pass"}, results
