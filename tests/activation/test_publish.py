"""Publication on a copy of the nightly run: atomic swap, idempotent days, segment movements."""

from __future__ import annotations

import hashlib
import shutil
from datetime import timedelta
from pathlib import Path

import pytest

from journeys.publish import publish_segments
from journeys.settings import get_settings
from journeys.warehouse import connect


@pytest.fixture
def published_copy(nightly_run, tmp_path: Path):
    """A JOURNEYS_HOME holding a copy of the nightly run's warehouse (already published once)."""
    home, _ = nightly_run
    settings = get_settings({"JOURNEYS_HOME": str(tmp_path / "home")})
    settings.warehouse.parent.mkdir(parents=True, exist_ok=True)
    with connect(home.settings) as con:
        con.execute("checkpoint")
    shutil.copy(home.settings.warehouse, settings.warehouse)
    return settings, home.run_date


def _state(settings) -> tuple:
    with connect(settings) as con:
        return con.execute(
            "select count(*), max(published_at), "
            "(select count(*) from marts.customer_segments_history) "
            "from marts.customer_segments"
        ).fetchall()[0]


def _checksums(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.suffix in (".csv", ".parquet")
    }


def test_a_failed_publication_leaves_the_previous_version_readable(published_copy) -> None:
    settings, run_date = published_copy
    publish_segments(settings, run_date)
    before = _state(settings)
    exported = _checksums(settings.activation)
    with connect(settings) as con:
        # A history table a broken release left with the wrong type: the swap must not stick.
        con.execute(
            "create or replace table marts.customer_segments_history as "
            "select 1 as customer_id, snapshot_date, segment_id from marts.customer_segments "
            "limit 0"
        )
    with pytest.raises(Exception, match="(?i)conver"):
        publish_segments(settings, run_date)
    with connect(settings) as con:
        rows, published_at = con.execute(
            "select count(*), max(published_at) from marts.customer_segments"
        ).fetchall()[0]
        leftovers = con.execute(
            "select table_name from information_schema.tables where table_name like '%__next'"
        ).fetchall()
    assert (rows, published_at) == before[:2]
    assert leftovers == []
    assert _checksums(settings.activation) == exported


def test_republishing_a_day_is_idempotent(published_copy) -> None:
    settings, run_date = published_copy
    first = publish_segments(settings, run_date)
    files = _checksums(settings.activation)
    rows, _, history = _state(settings)
    second = publish_segments(settings, run_date)
    assert _state(settings)[::2] == (rows, history) == (first["rows"], first["rows"])
    assert second["segment_sizes"] == first["segment_sizes"]
    assert second["activation"]["audiences"] == first["activation"]["audiences"]
    assert _checksums(settings.activation) == files
    assert [p.name for p in settings.activation.iterdir()] == [run_date.isoformat()]


def test_movements_say_who_moved_from_which_segment_to_which_and_when(published_copy) -> None:
    settings, run_date = published_copy
    next_day = run_date + timedelta(days=1)
    with connect(settings) as con:
        moved, gone = (
            [r[0] for r in rows]
            for rows in (
                con.execute(
                    "select customer_id from marts.customer_segments where snapshot_date = ? "
                    "order by customer_id limit 5",
                    [run_date],
                ).fetchall(),
                con.execute(
                    "select customer_id from marts.customer_segments where snapshot_date = ? "
                    "order by customer_id desc limit 1",
                    [run_date],
                ).fetchall(),
            )
        )
        # The next day's scores: five customers change segment, one is no longer scored.
        con.execute(
            "insert into ml.customer_scores by name "
            "select * replace (cast(? as date) as snapshot_date, "
            "  case when list_contains(?, customer_id) then 99 else segment_id end as segment_id, "
            "  case when list_contains(?, customer_id) then 'Moved' else segment_name end "
            "    as segment_name) "
            "from ml.customer_scores where snapshot_date = ? and customer_id <> ?",
            [next_day, moved, moved, run_date, gone[0]],
        )
        previous = dict(
            con.execute(
                "select customer_id, segment_name from marts.customer_segments "
                "where list_contains(?, customer_id)",
                [moved + gone],
            ).fetchall()
        )
    publish_segments(settings, next_day)
    with connect(settings) as con:
        movements = con.execute(
            "select customer_id, from_segment, to_segment, previous_snapshot_date "
            "from marts.customer_segment_movements where moved_on = ? order by customer_id",
            [next_day],
        ).fetchall()
        first_day = con.execute(
            "select count(*), count(from_segment) from marts.customer_segment_movements "
            "where moved_on = ?",
            [run_date],
        ).fetchall()[0]
        published = con.execute("select count(*) from marts.customer_segments").fetchall()[0][0]
    expected = [(c, previous[c], "Moved", run_date) for c in moved]
    expected += [(gone[0], previous[gone[0]], None, run_date)]
    assert movements == sorted(expected)
    assert first_day == (published + 1, 0)  # everybody's first publication: from nowhere
    assert (settings.activation / next_day.isoformat() / "customer_segments.csv").exists()
