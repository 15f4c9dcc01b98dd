"""The price checks: each fails on its own kind of broken data and passes on the demo's candles;
the gap pass of a price run asks once more for a missing candle and records what stays missing."""

import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import dagster as dg
import pandas as pd
import pytest

from platform_pkg.market.demo import DemoMarket
from platform_pkg.market.resources import MarketData
from platform_pkg.prices import anomalies
from platform_pkg.prices.assets import prices_1d, prices_1h
from platform_pkg.prices.checks import Evaluation, PriceChecks, prices_1d_checks, prices_1h_checks
from platform_pkg.warehouse.connection import connect
from platform_pkg.warehouse.resources import Warehouse
from platform_tests.conftest import NOW, range_tags, resources_for, rows, scripted
from platform_tests.fakes.coingecko import FakeCoinGecko
from platform_tests.fakes.market import real_market
from platform_tests.fakes.server import Fault

CHECKS_1H = ["keys", "ohlc", "gaps", "freshness", "spikes"]
CHECKS_1D = [*CHECKS_1H, "cross_source"]


def materialize(path, instance, symbol, first, last, market=None, assets=None):
    assets = assets or [prices_1h, prices_1d, prices_1h_checks, prices_1d_checks]
    result = dg.materialize(
        assets,
        instance=instance,
        resources={**resources_for(path, market), "price_checks": PriceChecks()},
        tags=range_tags(symbol, first, last),
    )
    assert result.success
    return result


def evaluate(path, table="prices_1h", interval="1h", now=NOW, **settings) -> dict:
    """The checks of ``table`` over the whole table, by name."""
    evaluation = Evaluation(table, interval, now, None, PriceChecks(**settings))
    names = CHECKS_1D if interval == "1d" else CHECKS_1H
    warehouse = Warehouse(path=str(path), lock_timeout_seconds=30)
    results = list(evaluation.run(warehouse, MarketData(now=now.isoformat()), names))
    return {r.check_name: r for r in results}


def execute(path, sql, params=None):
    with connect(path) as con:
        con.execute(sql, params or [])


def meta(result, key):
    return getattr(result.metadata[key], "value", result.metadata[key])


@pytest.fixture(scope="module")
def synced_once(tmp_path_factory):
    """Three weeks of AAPL (a session market) and BTC-USDT (always open), stored by real runs."""
    path = tmp_path_factory.mktemp("synced") / "warehouse.duckdb"
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("symbols", ["AAPL", "BTC-USDT"])
        for symbol in ("AAPL", "BTC-USDT"):
            materialize(path, instance, symbol, "2026-11-03", "2026-11-24")
    return path


@pytest.fixture
def synced(synced_once, warehouse_file):
    """A copy of the synced warehouse for one test to break."""
    shutil.copy(synced_once, warehouse_file)
    return warehouse_file


def test_the_checks_run_after_a_materialisation_on_its_windows_and_pass(warehouse_file, instance):
    result = materialize(warehouse_file, instance, "AAPL", "2026-11-16", "2026-11-24")
    evaluations = {
        (e.asset_key.path[-1], e.check_name): e for e in result.get_asset_check_evaluations()
    }
    assert set(evaluations) == {("prices_1h", n) for n in CHECKS_1H} | {
        ("prices_1d", n) for n in CHECKS_1D
    }
    assert all(e.passed for e in evaluations.values()), [
        (k, e.description) for k, e in evaluations.items() if not e.passed
    ]
    keys = evaluations[("prices_1h", "keys")].metadata
    assert keys["scope"].value == "1 symbol(s), 2026-11-16..2026-11-24"
    assert keys["rows"].value == 6 * 7  # 6 weekdays × 7 session hours; today's opens at 14:00
    gaps = evaluations[("prices_1h", "gaps")].metadata
    assert gaps["expected_candles"].value == 42 and gaps["missing_candles"].value == 0
    cross = evaluations[("prices_1d", "cross_source")]
    assert "demo market" in cross.description and cross.metadata["api_requests"].value == 0


def test_every_check_passes_on_the_whole_table_of_demo_candles(synced):
    for table, interval in (("prices_1h", "1h"), ("prices_1d", "1d")):
        results = evaluate(synced, table, interval)
        assert all(r.passed for r in results.values()), {
            n: r.description for n, r in results.items() if not r.passed
        }
        assert meta(results["keys"], "scope") == "the whole table"
        assert meta(results["keys"], "symbols") == 2


def test_a_duplicate_a_future_and_an_off_grid_candle_fail_the_keys_check(synced):
    execute(
        synced,
        "INSERT INTO prices_1h SELECT * FROM prices_1h WHERE symbol = 'BTC-USDT' AND ts = ?",
        [datetime(2026, 11, 10, 5, tzinfo=UTC)],
    )
    execute(
        synced,
        "INSERT INTO prices_1h SELECT symbol, ts + INTERVAL 40 DAY, open, high, low, close, "
        "volume, source, is_final, fetched_at FROM prices_1h WHERE symbol = 'BTC-USDT' AND ts = ?",
        [datetime(2026, 11, 20, 5, tzinfo=UTC)],
    )
    execute(
        synced,
        "INSERT INTO prices_1h SELECT symbol, ts + INTERVAL 15 MINUTE, open, high, low, close, "
        "volume, source, is_final, fetched_at FROM prices_1h WHERE symbol = 'AAPL' AND ts = ?",
        [datetime(2026, 11, 20, 15, tzinfo=UTC)],
    )
    keys = evaluate(synced)["keys"]
    assert not keys.passed and keys.severity == dg.AssetCheckSeverity.ERROR
    assert (meta(keys, "duplicate_keys"), meta(keys, "future_candles"), meta(keys, "off_grid")) == (
        1,
        1,
        1,
    )
    sample = meta(keys, "sample")
    assert "duplicate key" in sample and "in the future" in sample and "off the 1h grid" in sample


def test_a_broken_candle_fails_the_ohlc_check_and_stays_stored(synced):
    when = datetime(2026, 11, 12, 15, tzinfo=UTC)
    execute(
        synced, "UPDATE prices_1h SET high = low * 0.9 WHERE symbol = 'AAPL' AND ts = ?", [when]
    )
    execute(synced, "UPDATE prices_1h SET volume = -1 WHERE symbol = 'BTC-USDT' AND ts = ?", [when])
    ohlc = evaluate(synced)["ohlc"]
    assert not ohlc.passed and ohlc.severity == dg.AssetCheckSeverity.ERROR
    assert meta(ohlc, "broken_candles") == 2
    assert rows(synced, "SELECT count(*) FROM prices_1h WHERE ts = ?", [when]) == [(2,)]


def test_a_missing_candle_fails_the_gaps_check_and_a_known_gap_passes_it(synced):
    gone = datetime(2026, 11, 12, 16, tzinfo=UTC)  # AAPL's session hours in the demo: 14-20 UTC
    execute(synced, "DELETE FROM prices_1h WHERE symbol = 'AAPL' AND ts = ?", [gone])
    gaps = evaluate(synced)["gaps"]
    assert not gaps.passed and gaps.severity == dg.AssetCheckSeverity.WARN
    assert meta(gaps, "missing_candles") == 1
    assert "2026-11-12 16:00" in meta(gaps, "sample")
    # The night and the weekend are not gaps: the calendar expects nothing then.
    execute(
        synced,
        "CREATE TABLE known_gaps AS SELECT 'AAPL' AS symbol, 'prices_1h' AS data_type,"
        " ?::TIMESTAMPTZ AS gap_start, ?::TIMESTAMPTZ AS gap_end",
        [gone, gone + timedelta(hours=1)],
    )
    gaps = evaluate(synced)["gaps"]
    assert gaps.passed and meta(gaps, "known_gaps") == 1


def test_a_spike_is_recorded_for_review_and_the_check_passes_once_reviewed(synced):
    day = datetime(2026, 11, 10, tzinfo=UTC)
    execute(
        synced, "UPDATE prices_1d SET close = close * 3 WHERE symbol = 'BTC-USDT' AND ts = ?", [day]
    )
    first = evaluate(synced, "prices_1d", "1d")["spikes"]
    assert not first.passed and first.severity == dg.AssetCheckSeverity.WARN
    # Up 200 % into the day, and back down 67 % the day after: two moves over 50 %.
    assert meta(first, "new_anomalies") == 2 and meta(first, "unreviewed") == 2
    again = evaluate(synced, "prices_1d", "1d")["spikes"]
    assert meta(again, "new_anomalies") == 0 and meta(again, "unreviewed") == 2
    with connect(synced) as con:
        ids = list(anomalies.unreviewed(con, "prices_1d")["anomaly_id"])
        assert anomalies.review(con, [*ids, "nope"], "exchange outage", NOW) == ["nope"]
    assert evaluate(synced, "prices_1d", "1d")["spikes"].passed
    assert rows(synced, "SELECT count(*), count(reviewed_at) FROM price_anomalies") == [(2, 2)]
    assert evaluate(synced, "prices_1d", "1d", spike_threshold=5.0)["spikes"].passed


def test_a_stale_active_symbol_fails_the_freshness_check(synced):
    execute(
        synced,
        "CREATE TABLE tracked_assets AS SELECT * FROM (VALUES ('AAPL', 'stock', true),"
        " ('BTC-USDT', 'crypto', true), ('ETH-USDT', 'crypto', false))"
        " AS t(asset_id, asset_class, is_active)",
    )
    assert evaluate(synced)["freshness"].passed
    later = NOW + timedelta(hours=6)  # nothing fetched since: BTC-USDT lags, AAPL's market is shut
    fresh = evaluate(synced, now=later)["freshness"]
    assert not fresh.passed and meta(fresh, "stale_symbols") == 1
    assert "BTC-USDT" in meta(fresh, "sample") and "AAPL" not in meta(fresh, "sample")


def test_the_checks_of_a_table_never_materialised_pass_with_nothing_to_check(warehouse_file):
    results = evaluate(warehouse_file)
    assert all(r.passed for r in results.values())
    assert "not been materialised" in results["gaps"].description


@dataclass
class HolesMarket(DemoMarket):
    """The demo market leaving out some candles: on the first request only, or always."""

    holes: frozenset = frozenset()
    always: bool = False
    asked: list = field(default_factory=list)

    def fetch_page(self, symbol, interval, start, end):
        self.asked.append((interval, start, end))
        page = super().fetch_page(symbol, interval, start, end)
        first_time = sum(1 for a in self.asked if a[0] == interval) == 1
        if interval == "1h" and (self.always or first_time):
            page = page[~page["ts"].isin(self.holes)].reset_index(drop=True)
        return page


HOLE = pd.Timestamp("2026-11-20 07:00", tz="UTC")


@pytest.mark.parametrize("always", [False, True])
def test_a_price_run_asks_once_more_for_a_missing_candle(warehouse_file, instance, always):
    market = HolesMarket(clock=lambda: NOW, holes=frozenset({HOLE}), always=always)
    materialize(
        warehouse_file, instance, "BTC-USDT", "2026-11-18", "2026-11-24",
        scripted("holes", market), [prices_1h, prices_1h_checks],
    )  # fmt: skip
    hourly = [a for a in market.asked if a[0] == "1h"]
    assert hourly[-1][1:] == (HOLE.to_pydatetime(), HOLE.to_pydatetime() + timedelta(hours=1))
    stored = rows(
        warehouse_file,
        "SELECT count(*) FROM prices_1h WHERE symbol = 'BTC-USDT' AND ts = ?",
        [HOLE],
    )
    tables = {
        t for (t,) in rows(warehouse_file, "SELECT table_name FROM information_schema.tables")
    }
    if always:
        known = rows(warehouse_file, "SELECT symbol, gap_start, candles, reason FROM known_gaps")
        assert stored == [(0,)]
        assert [(s, pd.Timestamp(t), n, r) for s, t, n, r in known] == [
            ("BTC-USDT", HOLE, 1, "no_candle")
        ]
    else:
        assert stored == [(1,)] and "known_gaps" not in tables
    gaps = evaluate(warehouse_file)["gaps"]
    assert gaps.passed and meta(gaps, "known_gaps") == (1 if always else 0)
    # The next run does not ask for a known gap again.
    asked = len(market.asked)
    materialize(
        warehouse_file, instance, "BTC-USDT", "2026-11-18", "2026-11-24",
        scripted("holes", market), [prices_1h],
    )  # fmt: skip
    assert len(market.asked) == asked + 1  # the incremental re-read only


@dataclass
class StopsAnswering(DemoMarket):
    """Answers a request from ``after`` on with the candles before it only (an API ignoring the
    start it was given)."""

    after: datetime = NOW

    def fetch_page(self, symbol, interval, start, end):
        if start >= self.after:
            self.meter.count(self.name)
            return self.candles(symbol, interval, self.after - timedelta(hours=3), self.after)
        return super().fetch_page(
            symbol, interval, min(end, self.after) and start, min(end, self.after)
        )


def test_a_fetch_that_stops_early_asks_once_more_then_records_the_rest_as_a_known_gap(
    warehouse_file, instance
):
    cut = datetime(2026, 11, 24, 4, tzinfo=UTC)
    market = StopsAnswering(clock=lambda: NOW, after=cut)
    result = materialize(
        warehouse_file, instance, "BTC-USDT", "2026-11-23", "2026-11-24",
        scripted("stops", market), [prices_1h],
    )  # fmt: skip
    assert market.meter.total == 3  # the day and a half, then the empty page asked twice
    known = rows(warehouse_file, "SELECT gap_start, gap_end, candles, reason FROM known_gaps")
    assert [(pd.Timestamp(a), pd.Timestamp(b), n, r) for a, b, n, r in known] == [
        (pd.Timestamp(cut), pd.Timestamp("2026-11-24 10:00", tz="UTC"), 6, "stopped_early")
    ]
    assert result.success


def cross_source(path, gecko, tmp_path, **settings):
    """The cross-source check with ccxt as the crypto source and the fake CoinGecko as reference."""
    execute(
        path,
        "CREATE OR REPLACE TABLE tracked_assets AS SELECT * FROM (VALUES ('BTC-USDT', 'crypto', "
        "true), ('AAPL', 'stock', true)) AS t(asset_id, asset_class, is_active)",
    )
    market = real_market(
        tmp_path, crypto_source="ccxt", coingecko_api_url=gecko.url + "/api/v3", request_timeout=30
    )
    evaluation = Evaluation("prices_1d", "1d", NOW, "check-run", PriceChecks(**settings))
    warehouse = Warehouse(path=str(path), lock_timeout_seconds=30)
    (result,) = [
        r for r in evaluation.run(warehouse, market, CHECKS_1D) if r.check_name == "cross_source"
    ]
    return result


@pytest.fixture
def gecko():
    with FakeCoinGecko(DemoMarket(clock=lambda: NOW)) as fake:
        yield fake


def test_stored_daily_closes_agree_with_coingecko_for_one_request_a_symbol(synced, gecko, tmp_path):
    result = cross_source(synced, gecko, tmp_path)
    assert result.passed, result.metadata
    assert meta(result, "symbols") == "BTC-USDT" and meta(result, "closes_compared") == 5
    assert meta(result, "api_requests") == 1 and len(gecko.requests) == 1
    logged = rows(
        synced,
        "SELECT symbol, source, api_requests, status FROM sync_log "
        "WHERE data_type = 'prices_1d_crosscheck'",
    )
    assert logged == [("BTC-USDT", "coingecko", 1, "success")]


def test_a_close_far_from_coingecko_fails_the_cross_source_check(synced, gecko, tmp_path):
    day = datetime(2026, 11, 21, tzinfo=UTC)
    execute(
        synced,
        "UPDATE prices_1d SET close = close * 1.1 WHERE symbol = 'BTC-USDT' AND ts = ?",
        [day],
    )
    result = cross_source(synced, gecko, tmp_path)
    assert not result.passed and result.severity == dg.AssetCheckSeverity.WARN
    assert meta(result, "outside_tolerance") == 1 and "2026-11-21" in meta(result, "sample")
    assert cross_source(synced, gecko, tmp_path, cross_source_tolerance=0.2).passed


def test_coingecko_down_is_reported_not_taken_for_bad_data(synced, gecko, tmp_path):
    gecko.faults.append(Fault("market_chart", status=503, times=20))
    result = cross_source(synced, gecko, tmp_path)
    assert result.passed and "BTC-USDT" in meta(result, "reference_errors")
    assert rows(synced, "SELECT status FROM sync_log WHERE data_type = 'prices_1d_crosscheck'") == [
        ("failed",)
    ]
