"""Price assets through the real machinery: ranged runs, watermarks, re-runs, crashes, corrections."""

from datetime import UTC, datetime, timedelta

import dagster as dg
import pandas as pd
import pytest

from platform_pkg.market.demo import DemoMarket
from platform_pkg.market.resources import MarketData
from platform_pkg.prices.assets import prices_1d, prices_1h
from platform_pkg.warehouse.io_manager import PARTITION_ROWS, run_metadata
from platform_tests.conftest import NOW, range_tags, resources_for, rows, scripted, stored


def run(instance, path, asset, symbol, first, last, market=None, now=NOW, config=None, ok=True):
    result = dg.materialize(
        [asset],
        instance=instance,
        resources=resources_for(path, market, now),
        tags=range_tags(symbol, first, last),
        run_config={"ops": {asset.key.path[-1]: {"config": config}}} if config else None,
        raise_on_error=False,
    )
    assert result.success is ok, [e.message for e in result.all_events if e.is_failure]
    return run_figures(result, asset)


def run_figures(result, asset) -> dict | None:
    """The run's figures: on a ranged run's newest partition (``run_*``), or its only one."""
    mats = result.asset_materializations_for_node(asset.key.path[-1])
    figures = [f for m in mats if (f := run_metadata(m.metadata)) is not None]
    assert len(figures) == (1 if mats else 0), "one event carries the run's figures"
    return {k: v.value for k, v in figures[0].items()} if figures else None


def partition_metadata(result, asset) -> dict[str, dict]:
    """Each partition's materialisation metadata, by partition key."""
    mats = result.asset_materializations_for_node(asset.key.path[-1])
    return {m.partition: {k: v.value for k, v in m.metadata.items()} for m in mats}


def expected(symbol, interval, first, last, now=NOW):
    start = datetime.fromisoformat(first).replace(tzinfo=UTC)
    end = datetime.fromisoformat(last).replace(tzinfo=UTC) + timedelta(days=1)
    frame = DemoMarket(clock=lambda: now).candles(symbol, interval, start, end)
    return frame.drop(columns="source").reset_index(drop=True)


def assert_same(actual, wanted):
    pd.testing.assert_frame_equal(actual.reset_index(drop=True), wanted, check_dtype=False)


def test_a_year_is_one_ranged_run_with_paginated_fetches(instance, warehouse_file):
    meta = run(instance, warehouse_file, prices_1h, "BTC-USDT", "2025-11-25", "2026-11-24")
    assert len(instance.get_runs()) == 1
    assert meta["api_requests"] == 9  # 8,747 candles in pages of 1,000
    assert meta["rows_inserted"] == meta["rows_fetched"] == 8747
    assert meta["watermark_before"] == "none"
    assert meta["watermark_after"] == "2025-11-25 00:00 .. 2026-11-24 10:00"
    assert_same(
        stored(warehouse_file, "prices_1h", "BTC-USDT"),
        expected("BTC-USDT", "1h", "2025-11-25", "2026-11-24"),
    )
    (log,) = rows(
        warehouse_file,
        "SELECT status, rows_fetched, rows_inserted, api_requests, api_units, source FROM sync_log",
    )
    assert log == ("success", 8747, 8747, 9, 9.0, "demo")


def test_a_rerun_changes_nothing_and_rereads_only_the_lookback(instance, warehouse_file):
    run(instance, warehouse_file, prices_1d, "ETH-USDT", "2026-06-01", "2026-06-30")
    before = stored(warehouse_file, "prices_1d", "ETH-USDT")
    meta = run(instance, warehouse_file, prices_1d, "ETH-USDT", "2026-06-01", "2026-06-30")
    assert meta["api_requests"] <= 1
    assert meta["rows_inserted"] == meta["rows_updated"] == 0
    assert_same(stored(warehouse_file, "prices_1d", "ETH-USDT"), before)
    # A range well inside what is synced costs nothing at all.
    meta = run(instance, warehouse_file, prices_1d, "ETH-USDT", "2026-06-05", "2026-06-10")
    assert meta["api_requests"] == 0


def test_a_crash_after_page_k_keeps_pages_and_a_rerun_completes_exactly(instance, warehouse_file):
    flaky = scripted("flaky", DemoMarket(clock=lambda: NOW, page_limit=100, fail_on_request=3))
    run(
        instance,
        warehouse_file,
        prices_1h,
        "SOL-USDT",
        "2026-10-01",
        "2026-10-10",
        market=flaky,
        ok=False,
    )
    kept = stored(warehouse_file, "prices_1h", "SOL-USDT")
    assert len(kept) == 200  # two pages committed before the connection dropped
    newest = rows(
        warehouse_file, "SELECT last_timestamp FROM ingestion_state WHERE data_type = 'prices_1h'"
    )
    assert (
        pd.Timestamp(newest[0][0]) == kept["ts"].max()
    )  # the watermark claims exactly what is stored
    (log,) = rows(warehouse_file, "SELECT status, rows_inserted, error FROM sync_log")
    assert log[:2] == ("partial", 200) and "connection reset on request 3" in log[2]

    meta = run(instance, warehouse_file, prices_1h, "SOL-USDT", "2026-10-01", "2026-10-10")
    assert meta["api_requests"] == 1  # resumes from the watermark minus the lookback
    assert_same(
        stored(warehouse_file, "prices_1h", "SOL-USDT"),
        expected("SOL-USDT", "1h", "2026-10-01", "2026-10-10"),
    )


def test_late_corrections_inside_the_lookback_are_picked_up_outside_are_not(
    instance, warehouse_file
):
    run(instance, warehouse_file, prices_1h, "BTC-USDT", "2026-11-23", "2026-11-24")
    inside, outside = datetime(2026, 11, 24, 8, tzinfo=UTC), datetime(2026, 11, 24, 2, tzinfo=UTC)
    revised = scripted(
        "revised",
        DemoMarket(
            clock=lambda: NOW,
            revisions={
                ("BTC-USDT", "1h", inside): {"close": 1.0},
                ("BTC-USDT", "1h", outside): {"close": 2.0},
            },
        ),
    )
    meta = run(
        instance, warehouse_file, prices_1h, "BTC-USDT", "2026-11-24", "2026-11-24", market=revised
    )
    assert meta["api_requests"] == 1 and meta["rows_updated"] == 1
    closes = dict(
        rows(
            warehouse_file, "SELECT ts, close FROM prices_1h WHERE ts IN (?, ?)", [inside, outside]
        )
    )
    assert closes[inside] == 1.0 and closes[outside] != 2.0


def test_the_open_candle_is_updated_then_finalised(instance, warehouse_file):
    run(
        instance,
        warehouse_file,
        prices_1h,
        "AAPL",
        "2026-11-24",
        "2026-11-24",
        now=datetime(2026, 11, 24, 15, 20, tzinfo=UTC),
    )
    first = stored(warehouse_file, "prices_1h", "AAPL")
    assert first["is_final"].tolist() == [True, False]
    later = datetime(2026, 11, 24, 16, 5, tzinfo=UTC)
    run(instance, warehouse_file, prices_1h, "AAPL", "2026-11-24", "2026-11-24", now=later)
    assert_same(
        stored(warehouse_file, "prices_1h", "AAPL"),
        expected("AAPL", "1h", "2026-11-24", "2026-11-24", now=later),
    )
    assert stored(warehouse_file, "prices_1h", "AAPL")["is_final"].tolist() == [True, True, False]


class SilentMarket(DemoMarket):
    """A source that answers every request with no candles."""

    def fetch_page(self, symbol, interval, start, end):
        return super().fetch_page(symbol, interval, start, end).iloc[0:0]


def test_an_empty_fetch_keeps_existing_rows(instance, warehouse_file):
    run(instance, warehouse_file, prices_1d, "GC=F", "2026-10-01", "2026-10-31")
    before = stored(warehouse_file, "prices_1d", "GC=F")
    state = rows(warehouse_file, "SELECT * EXCLUDE (updated_at) FROM ingestion_state ORDER BY ALL")
    silent = scripted("silent", SilentMarket(clock=lambda: NOW))
    meta = run(
        instance,
        warehouse_file,
        prices_1d,
        "GC=F",
        "2026-10-01",
        "2026-10-31",
        market=silent,
        config={"full_refresh": True},
    )
    assert meta["rows_fetched"] == 0 and meta["api_requests"] == 1
    assert_same(stored(warehouse_file, "prices_1d", "GC=F"), before)
    assert (
        rows(warehouse_file, "SELECT * EXCLUDE (updated_at) FROM ingestion_state ORDER BY ALL")
        == state
    )


def test_an_older_range_fetches_only_what_is_missing(instance, warehouse_file):
    run(instance, warehouse_file, prices_1d, "MSFT", "2026-06-01", "2026-06-30")
    meta = run(instance, warehouse_file, prices_1d, "MSFT", "2026-05-01", "2026-06-30")
    may = expected("MSFT", "1d", "2026-05-01", "2026-05-31")
    lookback = expected("MSFT", "1d", "2026-06-27", "2026-06-30")  # the newest end is re-read too
    assert meta["rows_fetched"] == len(may) + len(lookback)
    assert meta["watermark_after"].startswith("2026-05-01")


def test_a_range_before_listing_costs_no_request(instance, warehouse_file):
    meta = run(instance, warehouse_file, prices_1d, "SOL-USDT", "2020-01-01", "2020-03-31")
    assert meta["api_requests"] == 0 and meta["rows_fetched"] == 0


def test_one_run_over_several_symbols_fetches_each(instance, warehouse_file):
    result = dg.materialize(
        [prices_1d],
        instance=instance,
        resources=resources_for(warehouse_file),
        tags={
            "dagster/asset_partition_range_start": "2026-11-20|AAPL",
            "dagster/asset_partition_range_end": "2026-11-20|MSFT",
        },
    )
    assert result.success
    # Symbols are ordered as they were added: the range AAPL..MSFT is those two.
    assert rows(warehouse_file, "SELECT DISTINCT symbol FROM prices_1d ORDER BY 1") == [
        ("AAPL",),
        ("MSFT",),
    ]
    assert len(instance.get_runs()) == 1


def daily_block(instance, warehouse_file, first: str, last: str):
    """One prices_1d run over the partitions from ``first`` to ``last`` (``date|symbol`` keys)."""
    return dg.materialize(
        [prices_1d],
        instance=instance,
        resources=resources_for(warehouse_file, MarketData(now=NOW.isoformat())),
        tags={
            "dagster/asset_partition_range_start": first,
            "dagster/asset_partition_range_end": last,
        },
        raise_on_error=False,
    )


def test_an_unknown_symbol_fails_clearly_and_others_are_kept(instance, warehouse_file):
    instance.add_dynamic_partitions("symbols", ["ZZZZ"])
    result = daily_block(instance, warehouse_file, "2026-11-20|AAPL", "2026-11-20|ZZZZ")
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    message = failure.step_failure_data.error.to_string()
    assert (
        "1 of 6 fetches failed: ZZZZ 2026-11-20..2026-11-20: the demo market does not list 'ZZZZ'"
        in message
    )
    # AAPL, MSFT, SPY, EURUSD=X and GC=F were committed all the same.
    assert rows(warehouse_file, "SELECT count(DISTINCT symbol) FROM prices_1d")[0][0] == 5
    statuses = dict(rows(warehouse_file, "SELECT symbol, status FROM sync_log"))
    assert statuses["ZZZZ"] == "failed" and statuses["AAPL"] == "success"


def test_a_symbol_failing_in_a_block_leaves_the_others_materialised(instance, warehouse_file):
    """A run over a block of symbols × days: the failing symbol's partitions are marked failed,
    every other symbol's materialised with its own rows, and the run fails naming the symbol."""
    instance.add_dynamic_partitions("symbols", ["ZZZZ"])
    block = ["EURUSD=X", "GC=F", "ZZZZ"]
    assert instance.get_dynamic_partitions("symbols")[-3:] == block
    result = daily_block(instance, warehouse_file, "2026-11-16|EURUSD=X", "2026-11-20|ZZZZ")
    assert not result.success
    keys = [f"2026-11-{d}|{s}" for s in block for d in range(16, 21)]
    status = instance.get_status_by_partition(prices_1d.key, keys, prices_1d.partitions_def)
    by_symbol = {s: {status[k].value for k in keys if k.endswith(f"|{s}")} for s in block}
    assert by_symbol == {"EURUSD=X": {"MATERIALIZED"}, "GC=F": {"MATERIALIZED"}, "ZZZZ": {"FAILED"}}
    written = partition_metadata(result, prices_1d)
    assert sorted(written) == sorted(k for k in keys if "ZZZZ" not in k)
    assert {m[PARTITION_ROWS] for m in written.values()} == {1}  # Monday to Friday: one candle each
    assert rows(warehouse_file, "SELECT count(*) FROM prices_1d WHERE symbol = 'ZZZZ'") == [(0,)]


@pytest.mark.parametrize("asset", [prices_1h, prices_1d])
def test_downstream_loads_exactly_the_partitions_it_asks_for(instance, warehouse_file, asset):
    run(instance, warehouse_file, asset, "EURUSD=X", "2026-11-02", "2026-11-13")
    name = asset.key.path[-1]

    @dg.asset(partitions_def=asset.partitions_def, ins={"candles": dg.AssetIn(name)})
    def consumer(candles: pd.DataFrame) -> None:
        assert set(candles["symbol"]) == {"EURUSD=X"}
        assert candles["ts"].min() >= pd.Timestamp("2026-11-04", tz="UTC")
        assert candles["ts"].max() < pd.Timestamp("2026-11-06", tz="UTC")
        assert len(candles) == (2 if name == "prices_1d" else 48)

    result = dg.materialize(
        [consumer, asset.to_source_asset()],
        instance=instance,
        resources=resources_for(warehouse_file),
        tags=range_tags("EURUSD=X", "2026-11-04", "2026-11-05"),
    )
    assert result.success


def stored_per_day(path, table) -> dict[str, int]:
    """Stored rows per 'YYYY-MM-DD|SYMBOL' partition key."""
    found = rows(
        path,
        f"SELECT strftime(ts, '%Y-%m-%d') || '|' || symbol, count(*) FROM {table} GROUP BY ALL",
    )
    return dict(found)


def test_each_partition_of_a_ranged_run_reports_its_own_rows(instance, warehouse_file):
    days = [f"2026-11-{d}|BTC-USDT" for d in range(20, 25)]
    result = dg.materialize(
        [prices_1h],
        instance=instance,
        resources=resources_for(warehouse_file),
        tags=range_tags("BTC-USDT", "2026-11-20", "2026-11-24"),
    )
    by_key = partition_metadata(result, prices_1h)
    assert sorted(by_key) == days
    # A whole day is 24 candles; today (10:30) 11 so far — not the run's 107.
    assert (
        {k: m[PARTITION_ROWS] for k, m in by_key.items()}
        == stored_per_day(warehouse_file, "prices_1h")
        == dict(zip(days, [24, 24, 24, 24, 11], strict=True))
    )
    for key in days[:-1]:
        assert by_key[key] == {PARTITION_ROWS: 24}, "the other partitions carry their own rows only"
    newest = by_key[days[-1]]
    assert newest["run_partitions"] == 5
    assert newest["run_rows_written"] == newest["run_rows_inserted"] == 107
    assert (newest["run_api_requests"], newest["run_source"]) == (1, "demo")
    assert run_figures(result, prices_1h)["rows_written"] == 107

    # A re-run re-reads only the lookback (07:00..10:00 today): the other days wrote nothing.
    again = dg.materialize(
        [prices_1h],
        instance=instance,
        resources=resources_for(warehouse_file),
        tags=range_tags("BTC-USDT", "2026-11-20", "2026-11-24"),
    )
    by_key = partition_metadata(again, prices_1h)
    assert {k: m[PARTITION_ROWS] for k, m in by_key.items()} == dict(
        zip(days, [0, 0, 0, 0, 4], strict=True)
    )
    assert by_key[days[-1]]["run_rows_written"] == 4


def test_partition_rows_are_exact_per_symbol_and_day(instance, warehouse_file):
    """Two stocks over a week: the weekend partitions stored nothing, and say so."""
    result = dg.materialize(
        [prices_1d],
        instance=instance,
        resources=resources_for(warehouse_file),
        tags={
            "dagster/asset_partition_range_start": "2026-11-16|AAPL",
            "dagster/asset_partition_range_end": "2026-11-22|MSFT",
        },
    )
    by_key = partition_metadata(result, prices_1d)
    stored_rows = stored_per_day(warehouse_file, "prices_1d")
    assert len(by_key) == 14 and len(stored_rows) == 10
    assert {k: m[PARTITION_ROWS] for k, m in by_key.items()} == {
        k: stored_rows.get(k, 0) for k in by_key
    }
    assert by_key["2026-11-21|AAPL"][PARTITION_ROWS] == 0
    # The run's figures sit on the newest partition: the last day, the last symbol.
    assert [k for k, m in by_key.items() if "run_rows_written" in m] == ["2026-11-22|MSFT"]
    assert by_key["2026-11-22|MSFT"]["run_rows_written"] == 10


def test_the_newest_daily_partition_carries_a_chart_of_the_closes(instance, warehouse_file):
    result = dg.materialize(
        [prices_1d],
        instance=instance,
        resources=resources_for(warehouse_file),
        tags=range_tags("ETH-USDT", "2026-09-01", "2026-11-24"),
    )
    by_key = partition_metadata(result, prices_1d)
    charted = [k for k, m in by_key.items() if "run_close_chart" in m]
    assert charted == ["2026-11-24|ETH-USDT"]
    chart = by_key["2026-11-24|ETH-USDT"]["run_close_chart"]
    assert chart.startswith("![prices_1d close, 2026-09-01..2026-11-24](data:image/png;base64,")
    # One day charts nothing: the schedules' runs stay small.
    single = run(instance, warehouse_file, prices_1d, "ETH-USDT", "2026-11-24", "2026-11-24")
    assert "close_chart" not in single and "run_close_chart" not in single
    hourly = run(instance, warehouse_file, prices_1h, "ETH-USDT", "2026-11-20", "2026-11-24")
    assert "close_chart" not in hourly


def test_the_price_assets_show_the_tracked_assets_that_drive_them_and_do_not_go_stale(
    instance, warehouse_file
):
    from dagster._core.definitions.data_version import StaleStatus
    from dagster._utils.test.data_versions import get_stale_status_resolver

    from platform_pkg.definitions import defs
    from platform_pkg.portfolio.assets import TRACKING_VERSION

    graph = defs.resolve_asset_graph()
    for asset in (prices_1h, prices_1d):
        assert graph.get(asset.key).parent_keys == {dg.AssetKey("tracked_assets")}
        assert "holdings_sensor" in asset.descriptions_by_key[asset.key]

    def ledger_run(version: dg.DataVersion | None = TRACKING_VERSION):
        @dg.asset(name="tracked_assets", io_manager_key="mem")
        def tracked_stand_in():
            return dg.Output(None, data_version=version) if version else None

        resources = {"mem": dg.InMemoryIOManager()}
        assert dg.materialize([tracked_stand_in], instance=instance, resources=resources).success

    def status(day: str) -> StaleStatus:
        resolver = get_stale_status_resolver(instance, list(defs.assets))
        return resolver.get_status(prices_1d.key, f"{day}|BTC-USDT")

    ledger_run()
    run(instance, warehouse_file, prices_1d, "BTC-USDT", "2026-11-01", "2026-11-02")
    ledger_run()  # a new tracked_assets: no candle changed
    assert status("2026-11-01") == status("2026-11-02") == StaleStatus.FRESH
    ledger_run(version=None)  # Dagster's default, a new version a run, would mark them unsynced
    assert status("2026-11-01") == StaleStatus.STALE
