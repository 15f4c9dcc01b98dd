"""End to end with the real webserver and daemon: a new holding and a UI backfill become ranged runs."""

from datetime import UTC, date, datetime, timedelta

import pandas as pd
import pytest

from platform_pkg.market.demo import DemoMarket
from platform_pkg.market.demo_exchange import DemoExchange
from platform_pkg.warehouse.connection import connect
from platform_tests.e2e.harness import (
    BACKFILL_QUERY,
    LAUNCH_BACKFILL,
    LAUNCH_RUN,
    TERMINAL,
    DagsterDev,
)

pytestmark = pytest.mark.slow

NOW = datetime(2026, 6, 15, 10, 30, tzinfo=UTC)
RANGE_START = "dagster/asset_partition_range_start"
HEADER = "date,account,symbol,asset_class,side,quantity,price,currency,fee\n"
COLUMNS = ["ts", "open", "high", "low", "close", "volume", "is_final"]


@pytest.fixture(scope="module")
def dev(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("dagster_dev")
    server = DagsterDev(
        workdir,
        env={
            "PLATFORM_NOW": NOW.isoformat(),
            "PLATFORM_HOLDINGS_SENSOR_SECONDS": "2",
            "PLATFORM_ACCOUNTS_SENSOR_SECONDS": "2",
            "PLATFORM_INTRADAY_MINUTES": "60",
        },
    )
    server.portfolio.write_text(HEADER)
    with server:
        yield server


def stored(dev, table, symbol):
    with connect(dev.warehouse, max_wait_seconds=60) as con:
        frame = con.execute(
            f"SELECT {', '.join(COLUMNS)} FROM {table} WHERE symbol = ? ORDER BY ts",  # noqa: S608
            [symbol],
        ).df()
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
    return frame


def assert_exactly_the_demo_candles(dev, symbol, first_day, last_day):
    """Every stored candle of ``symbol`` is the demo market's, and it has all of them."""
    start = datetime.combine(first_day, datetime.min.time(), tzinfo=UTC)
    end = datetime.combine(last_day + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
    market = DemoMarket(clock=lambda: NOW)
    for table, interval in (("prices_1d", "1d"), ("prices_1h", "1h")):
        expected = market.candles(symbol, interval, start, end).drop(columns="source")
        assert len(expected) > 0
        pd.testing.assert_frame_equal(
            stored(dev, table, symbol), expected.reset_index(drop=True), check_dtype=False
        )


def test_a_new_holding_becomes_one_ranged_run_of_both_assets_and_exactly_the_demo_candles(dev):
    # The sensor's first look at the (empty) portfolio.
    dev.wait_for(
        "first portfolio run", lambda: dev.runs({"platform/trigger": "holdings_sensor"}), 60
    )
    with dev.portfolio.open("a") as f:
        f.write("2026-05-01T12:00:00Z,broker,ETH-USDT,crypto,buy,1.5,3000,USDT,1\n")

    def price_runs_done():
        assert not dev.sensor_errors("holdings_sensor")
        runs = [
            r
            for r in dev.runs({"platform/trigger": "holdings_sensor"})
            if r["assets"][0].startswith("prices") and "ETH-USDT" in r["tags"].get(RANGE_START, "")
        ]
        return runs if len(runs) == 1 and all(r["status"] in TERMINAL for r in runs) else None

    runs = dev.wait_for("the new symbol's price run", price_runs_done, 150)
    assert {r["status"] for r in runs} == {"SUCCESS"}
    # The price run went alongside the ledger run; the tests after this one start once both end.
    dev.wait_for(
        "the ledger run",
        lambda: all(
            r["status"] in TERMINAL for r in dev.runs({"platform/trigger": "holdings_sensor"})
        ),
        60,
    )
    assert [r["assets"] for r in runs] == [["prices_1d", "prices_1h"]]
    for run in runs:
        assert run["tags"]["dagster/asset_partition_range_start"] == "2025-05-01|ETH-USDT"
        assert run["tags"]["dagster/asset_partition_range_end"] == "2026-06-15|ETH-USDT"
    assert_exactly_the_demo_candles(dev, "ETH-USDT", date(2025, 5, 1), NOW.date())
    with connect(dev.warehouse, max_wait_seconds=60) as con:
        oldest = con.execute(
            "SELECT data_type, last_timestamp FROM ingestion_state "
            "WHERE asset_id = 'ETH-USDT' AND data_type LIKE '%_oldest' ORDER BY 1"
        ).fetchall()
        tracked = con.execute(
            "SELECT asset_id, is_active, tracking_users FROM tracked_assets"
        ).fetchall()
    assert [(dt, ts.date().isoformat()) for dt, ts in oldest] == [
        ("prices_1d_oldest", "2025-05-01"),
        ("prices_1h_oldest", "2025-05-01"),
    ]
    assert tracked == [("ETH-USDT", True, 1)]


PRICE_CHECKS = {"keys", "ohlc", "gaps", "freshness", "spikes"}


def test_the_checks_results_show_through_the_webserver_and_a_broken_candle_fails_them(dev):
    # The first test's price runs ran the checks of what they wrote.
    checks = dev.checks("prices_1h")
    assert set(checks) == PRICE_CHECKS
    assert {c["status"] for c in checks.values()} == {"SUCCEEDED"}, checks
    assert checks["gaps"]["metadata"]["missing_candles"] == 0
    assert set(dev.checks("prices_1d")) == PRICE_CHECKS | {"cross_source"}
    assert "demo market" in dev.checks("prices_1d")["cross_source"]["description"]
    # A ledger run that changed nothing skips its checks: the last evaluation stands.
    assert {c["status"] for c in dev.checks("transactions").values()} <= {"SUCCEEDED", "SKIPPED"}

    with connect(dev.warehouse, max_wait_seconds=60) as con:
        con.execute(
            "UPDATE prices_1h SET high = low / 2 WHERE symbol = 'ETH-USDT' AND ts = "
            "(SELECT min(ts) FROM prices_1h WHERE symbol = 'ETH-USDT')"
        )
    launched = dev.graphql(
        LAUNCH_RUN,
        {
            "params": {
                "selector": {
                    "repositoryLocationName": "platform",
                    "repositoryName": "__repository__",
                    "jobName": "__ASSET_JOB",
                    "assetSelection": [],
                    "assetCheckSelection": [
                        {"assetKey": {"path": ["prices_1h"]}, "name": name}
                        for name in sorted(PRICE_CHECKS)
                    ],
                }
            }
        },
    )["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    run_id = launched["run"]["runId"]

    def evaluated():
        found = dev.checks("prices_1h")
        ohlc = found["ohlc"]
        return found if ohlc["run_id"] == run_id and ohlc["status"] != "IN_PROGRESS" else None

    checks = dev.wait_for("the checks run from the UI", evaluated, 90)
    ohlc = checks["ohlc"]
    assert (ohlc["status"], ohlc["severity"]) == ("FAILED", "ERROR")
    assert ohlc["metadata"]["broken_candles"] == 1
    assert ohlc["metadata"]["scope"] == "the whole table"
    assert "ETH-USDT" in ohlc["metadata"]["sample"]
    assert checks["keys"]["status"] == "SUCCEEDED"


LAUNCH = {
    "assetSelection": [{"path": ["prices_1h"]}, {"path": ["prices_1d"]}],
    "partitionNames": [
        f"2026-06-0{day}|{symbol}" for symbol in ("BTC-USDT", "SOL-USDT") for day in range(1, 6)
    ],
    "fromFailure": False,
    "title": "e2e: 2 symbols x 5 days",
}


def test_a_ui_backfill_of_a_date_range_becomes_ranged_runs(dev):
    dev.add_symbols("BTC-USDT", "SOL-USDT")
    launched = dev.graphql(LAUNCH_BACKFILL, {"params": LAUNCH})["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    backfill_id = launched["backfillId"]

    def finished():
        state = dev.graphql(BACKFILL_QUERY, {"id": backfill_id})["partitionBackfillOrError"]
        return state if state["status"] not in ("REQUESTED", "CANCELING") else None

    state = dev.wait_for("the backfill", finished, 170, every=2)
    assert state["status"] == "COMPLETED_SUCCESS", state
    runs = dev.runs({"dagster/backfill": backfill_id})
    # 2 symbols x 5 days with a single-run backfill policy: one ranged run per symbol.
    assert len(runs) == 2
    ranges = sorted(
        (
            r["tags"]["dagster/asset_partition_range_start"],
            r["tags"]["dagster/asset_partition_range_end"],
        )
        for r in runs
    )
    assert ranges == [
        ("2026-06-01|BTC-USDT", "2026-06-05|BTC-USDT"),
        ("2026-06-01|SOL-USDT", "2026-06-05|SOL-USDT"),
    ]
    for symbol in ("BTC-USDT", "SOL-USDT"):
        assert_exactly_the_demo_candles(dev, symbol, date(2026, 6, 1), date(2026, 6, 5))


def test_a_trade_of_a_new_symbol_on_the_exchange_ends_with_its_price_history(dev):
    # SOL-USDT is held in no portfolio line; the UI backfill above stored five of its days.
    dev.accounts.write_text(
        '[[exchange]]\nname = "demo-exchange"\nexchange = "demo"\nmarkets = ["SOL-USDT"]\n'
    )
    exchange = DemoExchange(account="demo-exchange", clock=lambda: NOW)
    first_trade = datetime.fromtimestamp(
        exchange.all_trades("SOL-USDT")[0]["timestamp"] / 1000, UTC
    ).date()
    start = first_trade - timedelta(days=365)

    def sol_history():
        assert not dev.sensor_errors("accounts_sensor")
        assert not dev.sensor_errors("holdings_sensor")
        runs = [
            r
            for r in dev.runs({"platform/trigger": "holdings_sensor"})
            if r["assets"][0].startswith("prices") and "SOL-USDT" in r["tags"].get(RANGE_START, "")
        ]
        if not runs or any(r["status"] not in TERMINAL for r in runs):
            return None
        with connect(dev.warehouse, max_wait_seconds=60) as con:
            oldest = con.execute(
                "SELECT min(last_timestamp)::DATE FROM ingestion_state "
                "WHERE asset_id = 'SOL-USDT' AND data_type LIKE 'prices_%_oldest'"
            ).fetchall()[0][0]
        return runs if oldest is not None and oldest <= start else None

    runs = dev.wait_for("SOL-USDT's history after its first trade", sol_history, 170, every=2)
    assert {r["status"] for r in runs} == {"SUCCESS"}
    (sync,) = dev.runs({"platform/trigger": "accounts_sensor"})
    assert sync["status"] == "SUCCESS"
    with connect(dev.warehouse, max_wait_seconds=60) as con:
        stored_trades = con.execute(
            "SELECT count(*) FROM exchange_trades WHERE account = 'demo-exchange'"
        ).fetchall()[0][0]
        tracked = con.execute(
            "SELECT is_active, tracking_users FROM tracked_assets WHERE asset_id = 'SOL-USDT'"
        ).fetchall()
    assert stored_trades == len(exchange.all_trades("SOL-USDT")) > 0
    assert tracked == [(True, 1)]
    assert_exactly_the_demo_candles(dev, "SOL-USDT", start, NOW.date())
