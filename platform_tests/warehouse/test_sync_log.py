"""sync_log: rows left ``running`` by a run that has ended are closed, others are left alone."""

from datetime import UTC, datetime

import duckdb
import pytest

from platform_pkg.warehouse import sync_log
from platform_pkg.warehouse.sync_log import SyncEntry

STARTED = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


def entry(sync_id: str, run_id: str | None, status: str = "running", inserted: int = 0):
    return SyncEntry(
        sync_id, run_id, "BTC-USDT", "prices_1h", "demo", STARTED, rows_inserted=inserted,
        status=status,
    )  # fmt: skip


def test_rows_of_ended_runs_are_closed_and_the_rest_left_alone():
    con = duckdb.connect()
    for e in (
        entry("killed-with-pages", "r-killed", inserted=200),
        entry("killed-before-pages", "r-killed"),
        entry("done-earlier", "r-killed", status="success", inserted=5),
        entry("still-running", "r-live", inserted=100),
        entry("other-instance", "r-unknown"),
        entry("no-run", None),
    ):
        sync_log.save(con, e)
    assert sync_log.running_runs(con) == ["r-killed", "r-live", "r-unknown"]
    ended = {"r-killed": "FAILURE"}

    assert sync_log.close_runs(con, ended, NOW) == 2
    got = dict(
        (sid, (status, finished is not None, error))
        for sid, status, finished, error in con.execute(
            "SELECT sync_id, status, finished_at, error FROM sync_log"
        ).fetchall()
    )
    assert got["killed-with-pages"][:2] == ("partial", True)
    assert got["killed-before-pages"][:2] == ("failed", True)
    assert "abandoned: run r-killed ended (FAILURE)" in got["killed-with-pages"][2]
    assert got["done-earlier"] == ("success", False, None)
    for untouched in ("still-running", "other-instance", "no-run"):
        assert got[untouched] == ("running", False, None)
    assert sync_log.close_runs(con, ended, NOW) == 0, "closing twice changes nothing"
    assert sync_log.running_runs(con) == ["r-live", "r-unknown"]


def test_an_unknown_status_is_refused():
    with pytest.raises(ValueError, match="is not a valid SyncStatus"):
        sync_log.save(duckdb.connect(), entry("x", "r", status="done"))
