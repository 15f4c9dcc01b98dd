"""A long rate-limit cooldown defers a symbol: others go on, the run says so, next run serves it first."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from platform_pkg.market.demo import DemoMarket
from platform_pkg.prices.assets import prices_1h
from platform_tests.conftest import NOW, rows
from platform_tests.fakes.binance import FakeBinance
from platform_tests.fakes.market import (
    clear_market_env,
    failure_message,
    materialize,
    real_market,
    stored,
)
from platform_tests.fakes.server import Fault

TAGS = {
    "dagster/asset_partition_range_start": "2026-11-20|BTC-USDT",
    "dagster/asset_partition_range_end": "2026-11-24|AAPL",
}


@pytest.fixture(autouse=True)
def _no_market_env(monkeypatch):
    clear_market_env(monkeypatch)


def klines_order(fake) -> list[str]:
    return [r.query["symbol"] for r in fake.requests if r.path.endswith("klines")]


def test_deferred_symbols_are_recorded_and_served_first_next_time(
    instance, warehouse_file, tmp_path
):
    with FakeBinance(DemoMarket(clock=lambda: NOW)) as binance:
        binance.faults += [
            Fault("klines"),  # BTC is served
            Fault(
                "klines", 418, headers={"Retry-After": "2"}, body={"code": -1003, "msg": "banned"}
            ),
        ]
        market = real_market(
            tmp_path, crypto_source="ccxt", crypto_fallback="none", ccxt_api_url=binance.url
        )
        result, _ = materialize(instance, warehouse_file, prices_1h, TAGS, market, ok=False)
        message = failure_message(result)
        assert "RateLimitedError" in message
        assert "2 of 4 fetches deferred (rate_limited) until" in message
        assert "ETH-USDT 2026-11-20..2026-11-24, SOL-USDT 2026-11-20..2026-11-24" in message
        # ETH got the ban; SOL was deferred without a request (the exchange is banned for all).
        assert klines_order(binance) == ["BTCUSDT", "ETHUSDT"]
        statuses = dict(rows(warehouse_file, "SELECT symbol, status FROM sync_log"))
        assert statuses == {
            "BTC-USDT": "success",
            "ETH-USDT": "rate_limited",
            "SOL-USDT": "rate_limited",
            "AAPL": "success",  # the demo market serves stocks: other sources go on
        }
        deferred = rows(
            warehouse_file,
            "SELECT symbol, source, requested_start, reason FROM deferred_fetches ORDER BY ALL",
        )
        assert [d[:3] for d in deferred] == [
            ("ETH-USDT", "ccxt-binance", datetime(2026, 11, 20, tzinfo=UTC)),
            ("SOL-USDT", "ccxt-binance", datetime(2026, 11, 20, tzinfo=UTC)),
        ]
        assert all("HTTP 418, Retry-After 2" in d[3] for d in deferred)
        assert len(stored(warehouse_file, "prices_1h", "BTC-USDT")) == 4 * 24 + 11
        assert stored(warehouse_file, "prices_1h", "ETH-USDT").empty

        time.sleep(2.1)  # the ban is over
        binance.requests.clear()
        materialize(instance, warehouse_file, prices_1h, TAGS, market)
        assert klines_order(binance) == ["ETHUSDT", "SOLUSDT", "BTCUSDT"]  # deferred first
        assert rows(warehouse_file, "SELECT count(*) FROM deferred_fetches") == [(0,)]
        for symbol in ("ETH-USDT", "SOL-USDT"):
            assert len(stored(warehouse_file, "prices_1h", symbol)) == 4 * 24 + 11
