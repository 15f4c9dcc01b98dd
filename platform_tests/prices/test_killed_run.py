"""A run process killed mid-fetch: its pages and watermark stay exact, its log row gets closed."""

import subprocess
import sys
import textwrap
import time

import dagster as dg
import duckdb
import pytest

from platform_pkg.prices.assets import prices_1h
from platform_tests.conftest import range_tags, resources_for, rows, stored
from platform_tests.prices.test_assets import assert_same, expected

pytestmark = pytest.mark.slow

# Materialises ten days of SOL-USDT in pages of 100 candles into the shared instance and
# warehouse; the third request hangs, as a stalled connection would, until the test kills it.
HANGING_WRITER = textwrap.dedent(
    """
    import sys, time
    import dagster as dg
    from platform_pkg.market.demo import DemoMarket
    from platform_pkg.prices.assets import prices_1h
    from platform_tests.conftest import NOW, SCENARIOS, ScriptedMarket, range_tags, resources_for

    class Hangs(DemoMarket):
        def fetch_page(self, *args):
            if self.meter.requests[self.name] == 2:
                time.sleep(600)
            return super().fetch_page(*args)

    home, path = sys.argv[1:3]
    SCENARIOS["hangs"] = Hangs(clock=lambda: NOW, page_limit=100)
    with dg.DagsterInstance.from_config(home) as instance:
        dg.materialize(
            [prices_1h],
            instance=instance,
            resources=resources_for(path, ScriptedMarket(scenario="hangs", now=NOW.isoformat())),
            tags=range_tags("SOL-USDT", "2026-10-01", "2026-10-10"),
        )
    """
)


def wait_for_committed_rows(path, want: int, proc: subprocess.Popen, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read()[-3000:]
        try:
            if rows(path, "SELECT max(rows_inserted) FROM sync_log") == [(want,)]:
                return
        except duckdb.Error:
            pass  # not created yet, or the writer holds the file for a moment
        time.sleep(0.2)
    raise AssertionError(f"the writer did not commit {want} rows within {timeout} s")


def log_rows(path):
    return rows(path, "SELECT status, rows_inserted, finished_at IS NOT NULL, error FROM sync_log")


def test_a_killed_runs_row_is_closed_once_dagster_knows_the_run_ended(instance, warehouse_file):
    writer = subprocess.Popen(
        [sys.executable, "-c", HANGING_WRITER, instance.root_directory, str(warehouse_file)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for_committed_rows(warehouse_file, 200, writer)
    finally:
        writer.kill()
        writer.wait(timeout=30)
    (killed,) = instance.get_runs()
    assert killed.status == dg.DagsterRunStatus.STARTED, "nobody told Dagster yet"
    assert len(stored(warehouse_file, "prices_1h", "SOL-USDT")) == 200
    assert log_rows(warehouse_file) == [("running", 200, False, None)]

    def rerun():
        result = dg.materialize(
            [prices_1h],
            instance=instance,
            resources=resources_for(warehouse_file),
            tags=range_tags("SOL-USDT", "2026-10-01", "2026-10-10"),
        )
        assert result.success

    # While Dagster still has the run as started, a later run resumes the data (from the exact
    # watermark) but leaves that run's row alone: it might be alive elsewhere.
    rerun()
    assert_same(
        stored(warehouse_file, "prices_1h", "SOL-USDT"),
        expected("SOL-USDT", "1h", "2026-10-01", "2026-10-10"),
    )
    assert ("running", 200, False, None) in log_rows(warehouse_file)

    # Run monitoring (the daemon) marks a run whose process died as failed; the next run closes
    # the row. Nothing else changes.
    instance.report_run_failed(killed)
    rerun()
    closed = [r for r in log_rows(warehouse_file) if r[1] == 200]
    assert len(closed) == 1
    status, _, finished, error = closed[0]
    assert (status, finished) == ("partial", True)
    assert f"abandoned: run {killed.run_id} ended (FAILURE)" in error
    assert sorted(r[0] for r in log_rows(warehouse_file)) == ["partial", "success", "success"]
    assert_same(
        stored(warehouse_file, "prices_1h", "SOL-USDT"),
        expected("SOL-USDT", "1h", "2026-10-01", "2026-10-10"),
    )
