"""Malformed rows from a source go to rejected_rows with their reason, never into the prices."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from platform_pkg.market.demo import DemoMarket
from platform_pkg.prices.assets import prices_1h
from platform_tests.conftest import NOW, range_tags, rows
from platform_tests.fakes.binance import FakeBinance
from platform_tests.fakes.market import clear_market_env, materialize, real_market, stored


@pytest.fixture(autouse=True)
def _no_market_env(monkeypatch):
    clear_market_env(monkeypatch)


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def test_malformed_candles_are_rejected_counted_and_the_rest_stored(
    instance, warehouse_file, tmp_path
):
    day = datetime(2026, 11, 20, tzinfo=UTC)
    bad = {
        day + timedelta(hours=h): fix
        for h, fix in [
            (3, {"open": "NaN"}),
            (7, {"low": "-5.0"}),
            (11, {"high": "1.0"}),  # below its low
            (15, {"volume": "-1"}),
            (23, {"close": None}),  # the last of a page: the next page starts after it
        ]
    }
    with FakeBinance(DemoMarket(clock=lambda: NOW)) as binance:
        for ts, fix in bad.items():
            binance.corrupt[("BTCUSDT", "1h", ms(ts))] = fix
        binance.short = 24  # pages end on the rejected 23:00 candle
        market = real_market(
            tmp_path, crypto_source="ccxt", crypto_fallback="none", ccxt_api_url=binance.url
        )
        tags = range_tags("BTC-USDT", "2026-11-20", "2026-11-21")
        _, meta = materialize(instance, warehouse_file, prices_1h, tags, market)
        want = binance.market.candles("BTC-USDT", "1h", day, day + timedelta(days=2))
        # The watermark covers rejected candles (fetched, not missed): a re-run re-reads only
        # the lookback.
        _, again = materialize(instance, warehouse_file, prices_1h, tags, market)
        assert again["api_requests"] == 1 and again["rows_rejected"] == 0

    kept = stored(warehouse_file, "prices_1h", "BTC-USDT")
    assert list(kept["ts"]) == [t for t in want["ts"] if t.to_pydatetime() not in bad]
    assert meta["rows_rejected"] == 5 and meta["rows_fetched"] == len(want)
    rejected = rows(
        warehouse_file,
        "SELECT ts, reason, raw, source, data_type, symbol, run_id IS NOT NULL "
        "FROM rejected_rows ORDER BY ts",
    )
    assert [(r[0], r[1]) for r in rejected] == [
        (day + timedelta(hours=3), "open is not a number"),
        (day + timedelta(hours=7), "low is not positive"),
        (day + timedelta(hours=11), "high is below low"),
        (day + timedelta(hours=15), "volume is negative"),
        (day + timedelta(hours=23), "close is not a number"),
    ]
    assert json.loads(rejected[1][2])["low"] == -5.0
    assert {r[3:] for r in rejected} == {("ccxt:binance", "prices_1h", "BTC-USDT", True)}
    first, rerun = rows(
        warehouse_file,
        "SELECT status, rows_fetched, rows_rejected FROM sync_log ORDER BY started_at",
    )
    assert first == ("success", len(want), 5) and rerun == ("success", 4, 0)
