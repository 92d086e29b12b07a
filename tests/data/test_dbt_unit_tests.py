"""dbt's own unit tests (`unit_tests:` in the models' yml): the logic of the SQL models."""

from datetime import date
from pathlib import Path

from journeys.identity.resolve import resolve_identities
from journeys.landing import land_exports
from journeys.settings import get_settings
from journeys.transform import invoke

DAY = date(2025, 1, 1)


def test_dbt_unit_tests_pass(tmp_path: Path) -> None:
    settings = get_settings({"JOURNEYS_HOME": str(tmp_path)})
    # Unit tests need their parents' relations (for column types): build every layer empty,
    # which also proves the pipeline runs on a company with no exports at all.
    land_exports(settings)
    invoke(settings, ["run", "--empty", "--select", "staging"], DAY)
    resolve_identities(settings, DAY)
    invoke(settings, ["run", "--empty", "--select", "intermediate", "marts"], DAY)
    results = invoke(settings, ["test", "--select", "test_type:unit"], DAY)
    assert results, "no dbt unit test was selected"
    assert {r["status"] for r in results} == {"pass"}, results
