"""End to end: a run process killed mid-fetch is started again by the daemon and loses nothing."""

import os
import re
import signal
from datetime import UTC, datetime

import pandas as pd
import pytest

from platform_pkg.market.demo import DemoMarket
from platform_pkg.warehouse.connection import connect
from platform_tests.e2e.harness import LAUNCH_RUN, TERMINAL, DagsterDev
from platform_tests.fakes.binance import FakeBinance
from platform_tests.fakes.server import Fault

pytestmark = pytest.mark.slow

NOW = datetime(2026, 6, 15, 10, 30, tzinfo=UTC)
START, END = datetime(2026, 6, 1, tzinfo=UTC), datetime(2026, 6, 11, tzinfo=UTC)
KLINES = "/api/v3/klines"

RUN_LOGS = """
query Logs($runId: ID!) {
  logsForRun(runId: $runId) {
    __typename
    ... on EventConnection { events { __typename ... on MessageEvent { message } } }
  }
}
"""


def worker_pid(dev: DagsterDev, run_id: str) -> int | None:
    """The run's process, from the engine event it logs when it starts."""
    logs = dev.graphql(RUN_LOGS, {"runId": run_id})["logsForRun"]
    for event in logs.get("events", []):
        found = re.search(r"Started process for run \(pid: (\d+)\)", event.get("message") or "")
        if found:
            return int(found.group(1))
    return None


def sync_rows(dev: DagsterDev) -> list[tuple]:
    try:
        with connect(dev.warehouse, max_wait_seconds=5) as con:
            return con.execute(
                "SELECT run_id, status, rows_inserted, error FROM sync_log ORDER BY started_at"
            ).fetchall()
    except Exception:  # the table does not exist yet, or a writer holds the file
        return []


def test_a_killed_run_is_retried_by_the_daemon_and_resumes_exactly(tmp_path):
    market = DemoMarket(clock=lambda: NOW)
    with FakeBinance(market) as exchange:
        exchange.short = 100  # 240 hourly candles: three requests
        # Two answers, then one that hangs as a stalled connection would, then answers again.
        exchange.faults += [Fault(KLINES, times=2), Fault(KLINES, delay=600)]
        dev = DagsterDev(tmp_path, env={"PLATFORM_NOW": NOW.isoformat()})
        dev.portfolio.write_text(
            "date,account,symbol,asset_class,side,quantity,price,currency,fee\n"
        )
        with dev:
            dev.add_symbols("BTC-USDT")
            market_config = {
                "crypto_source": "ccxt",
                "ccxt_api_url": exchange.url,
                "crypto_fallback": "none",
                "request_timeout": 900,
            }
            launched = dev.graphql(
                LAUNCH_RUN,
                {
                    "params": {
                        "selector": {
                            "repositoryLocationName": "platform",
                            "repositoryName": "__repository__",
                            "jobName": "prices_job",
                            "assetSelection": [{"path": ["prices_1h"]}],
                        },
                        "runConfigData": {"resources": {"market": {"config": market_config}}},
                        "executionMetadata": {
                            "tags": [
                                {
                                    "key": "dagster/asset_partition_range_start",
                                    "value": "2026-06-01|BTC-USDT",
                                },
                                {
                                    "key": "dagster/asset_partition_range_end",
                                    "value": "2026-06-10|BTC-USDT",
                                },
                            ]
                        },
                    }
                },
            )["launchRun"]
            assert launched["__typename"] == "LaunchRunSuccess", launched
            first = launched["run"]["runId"]

            def hung_after_two_pages():
                klines = [r for r in exchange.requests if r.path == KLINES]
                rows = [r for r in sync_rows(dev) if r[0] == first]
                if len(klines) == 3 and rows and rows[0][2] == 200:
                    return worker_pid(dev, first)
                return None

            pid = dev.wait_for("the run to hang after two pages", hung_after_two_pages, 120)
            os.kill(pid, signal.SIGKILL)

            def retried_and_done():
                runs = {r["runId"]: r for r in dev.runs()}
                if runs.get(first, {}).get("status") not in TERMINAL:
                    return None
                retries = [
                    r for r in runs.values() if r["tags"].get("dagster/parent_run_id") == first
                ]
                if retries and retries[0]["status"] in TERMINAL:
                    return runs[first], retries
                return None

            original, retries = dev.wait_for("the daemon's retry", retried_and_done, 180)
            assert original["status"] == "FAILURE"
            assert len(retries) == 1 and retries[0]["status"] == "SUCCESS", retries
            retry = retries[0]
            assert retry["tags"]["dagster/retry_number"] == "1"
            assert retry["tags"]["dagster/asset_partition_range_start"] == "2026-06-01|BTC-USDT"

            with connect(dev.warehouse, max_wait_seconds=60) as con:
                stored = con.execute(
                    "SELECT ts, open, high, low, close, volume FROM prices_1h "
                    "WHERE symbol = 'BTC-USDT' ORDER BY ts"
                ).df()
            log = sync_rows(dev)

    want = market.candles("BTC-USDT", "1h", START, END)
    stored["ts"] = pd.to_datetime(stored["ts"], utc=True)
    pd.testing.assert_frame_equal(
        stored,
        want[["ts", "open", "high", "low", "close", "volume"]].reset_index(drop=True),
        check_dtype=False,
    )
    by_run = {run_id: (status, inserted, error) for run_id, status, inserted, error in log}
    status, inserted, error = by_run[first]
    assert (status, inserted) == ("partial", 200)
    assert f"abandoned: run {first} ended (FAILURE)" in error
    assert by_run[retry["runId"]][:2] == (
        "success",
        40,
    )  # the rest; the lookback re-read is unchanged
    klines = [r for r in exchange.requests if r.path == KLINES]
    assert len(klines) == 4, "two pages, the hung one, and one for the rest after the retry"
