"""Price schedules through the real machinery: which symbols and days each tick asks for, as ranged runs."""

from datetime import UTC, datetime, timedelta

import dagster as dg
import duckdb
import pytest

from platform_pkg.market.resources import MarketData
from platform_pkg.portfolio import tracked
from platform_pkg.prices.assets import prices_1d, prices_1h
from platform_pkg.prices.schedules import (
    RefreshSettings,
    daily_close,
    intraday_minutes,
    intraday_refresh,
    weekly_reconcile,
)
from platform_pkg.runs import SCHEDULE_TAG
from platform_pkg.warehouse.upsert import upsert
from platform_tests.conftest import resources_for, rows

TUESDAY_MORNING = datetime(2026, 6, 16, 10, 15, tzinfo=UTC)
ORDER = ["BTC-USDT", "EURUSD=X", "AAPL", "SOL-USDT"]
ACTIVE = {"BTC-USDT": "crypto", "EURUSD=X": "fx", "AAPL": "stock"}


@pytest.fixture
def instance():
    with dg.instance_for_test() as inst:
        inst.add_dynamic_partitions("symbols", ORDER)
        yield inst


@pytest.fixture
def warehouse(tmp_path):
    path = tmp_path / "warehouse.duckdb"
    summary = {
        s: {"first": "2026-01-01", "class": c, "accounts": ["broker"]} for s, c in ACTIVE.items()
    }
    summary["SOL-USDT"] = {"first": "2026-01-01", "class": "crypto", "accounts": []}
    con = duckdb.connect(str(path))
    try:
        upsert(con, tracked.SPEC, tracked.tracked_rows(summary, None, {}, TUESDAY_MORNING))
    finally:
        con.close()
    return path


def evaluate(schedule, instance, warehouse, now):
    resources = resources_for(warehouse, MarketData(now=now.isoformat())) | {
        "refresh": RefreshSettings()
    }
    with dg.build_schedule_context(
        instance=instance, scheduled_execution_time=now, resources=resources
    ) as context:
        return schedule.evaluate_tick(context)


def ranges(result):
    return [
        (
            r.tags["dagster/asset_partition_range_start"],
            r.tags["dagster/asset_partition_range_end"],
        )
        for r in result.run_requests
    ]


def test_intraday_asks_for_today_of_symbols_whose_market_is_open_in_one_run(instance, warehouse):
    result = evaluate(intraday_refresh, instance, warehouse, TUESDAY_MORNING)
    # AAPL's exchange is closed at 10:15 UTC; BTC and EURUSD trade, and are neighbours.
    assert ranges(result) == [("2026-06-16|BTC-USDT", "2026-06-16|EURUSD=X")]
    assert result.run_requests[0].tags[SCHEDULE_TAG] == "intraday_refresh"

    afternoon = datetime(2026, 6, 16, 15, 0, tzinfo=UTC)
    assert ranges(evaluate(intraday_refresh, instance, warehouse, afternoon)) == [
        ("2026-06-16|BTC-USDT", "2026-06-16|AAPL")
    ]
    saturday = datetime(2026, 6, 20, 15, 0, tzinfo=UTC)
    assert ranges(evaluate(intraday_refresh, instance, warehouse, saturday)) == [
        ("2026-06-20|BTC-USDT", "2026-06-20|BTC-USDT")
    ]


def test_a_block_run_fetches_every_symbol_of_the_block(instance, warehouse):
    (request,) = evaluate(intraday_refresh, instance, warehouse, TUESDAY_MORNING).run_requests
    result = dg.materialize(
        [prices_1h, prices_1d],
        instance=instance,
        resources=resources_for(warehouse, MarketData(now=TUESDAY_MORNING.isoformat())),
        tags=request.tags,
    )
    assert result.success
    assert rows(warehouse, "SELECT symbol, count(*) FROM prices_1h GROUP BY 1 ORDER BY 1") == [
        ("BTC-USDT", 11),  # 00:00 .. the open 10:00 candle
        ("EURUSD=X", 11),
    ]


def test_a_refresh_still_running_is_not_stacked(instance, warehouse):
    instance.add_run(
        dg.DagsterRun(
            job_name="prices_job",
            run_id="0" * 36,
            status=dg.DagsterRunStatus.STARTED,
            tags={SCHEDULE_TAG: "intraday_refresh"},
        )
    )
    result = evaluate(intraday_refresh, instance, warehouse, TUESDAY_MORNING)
    assert result.run_requests == []
    assert "is still STARTED" in result.skip_message
    # another schedule is not blocked by it
    assert evaluate(daily_close, instance, warehouse, TUESDAY_MORNING).run_requests


def test_daily_close_finalises_yesterday_of_symbols_that_traded(instance, warehouse):
    wednesday = datetime(2026, 6, 17, 0, 10, tzinfo=UTC)
    assert ranges(evaluate(daily_close, instance, warehouse, wednesday)) == [
        ("2026-06-16|BTC-USDT", "2026-06-16|AAPL")
    ]
    sunday = datetime(2026, 6, 21, 0, 10, tzinfo=UTC)
    assert ranges(evaluate(daily_close, instance, warehouse, sunday)) == [
        ("2026-06-20|BTC-USDT", "2026-06-20|BTC-USDT")
    ]


def test_weekly_reconcile_rereads_the_window_in_full(instance, warehouse):
    sunday = datetime(2026, 6, 21, 1, 30, tzinfo=UTC)
    result = evaluate(weekly_reconcile, instance, warehouse, sunday)
    assert ranges(result) == [("2026-06-14|BTC-USDT", "2026-06-20|AAPL")]
    config = result.run_requests[0].run_config["ops"]
    assert config["prices_1h"]["config"]["full_refresh"] is True
    assert config["prices_1d"]["config"]["full_refresh"] is True


def test_nothing_tracked_is_a_skip(instance, tmp_path):
    result = evaluate(intraday_refresh, instance, tmp_path / "empty.duckdb", TUESDAY_MORNING)
    assert result.skip_message == "no active tracked symbols"


def test_the_intraday_period_comes_from_the_environment_and_is_checked(monkeypatch):
    monkeypatch.delenv("PLATFORM_INTRADAY_MINUTES", raising=False)
    assert intraday_minutes() == 15
    monkeypatch.setenv("PLATFORM_INTRADAY_MINUTES", "7")
    with pytest.raises(ValueError, match="divisor of 60"):
        intraday_minutes()


def test_intraday_skips_a_day_that_has_no_partition(instance, warehouse):
    beyond = datetime.now(UTC) + timedelta(days=2)
    result = evaluate(intraday_refresh, instance, warehouse, beyond)
    assert result.run_requests == []
    assert f"there is no date partition for {beyond.date()} yet" in result.skip_message
