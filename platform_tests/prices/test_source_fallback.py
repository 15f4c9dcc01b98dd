"""When the exchange gives up mid-window CoinGecko serves the rest; without a fallback, a clear failure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from platform_pkg.market.demo import DemoMarket
from platform_pkg.prices.assets import prices_1h
from platform_tests.conftest import NOW, range_tags, rows
from platform_tests.fakes.binance import FakeBinance
from platform_tests.fakes.coingecko import FakeCoinGecko
from platform_tests.fakes.market import (
    clear_market_env,
    failure_message,
    materialize,
    real_market,
    stored,
)
from platform_tests.fakes.server import HTML_503, Fault

TAGS = range_tags("BTC-USDT", "2026-11-10", "2026-11-24")
START = datetime(2026, 11, 10, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _no_market_env(monkeypatch):
    clear_market_env(monkeypatch)


@pytest.fixture
def servers():
    demo = DemoMarket(clock=lambda: NOW)
    with FakeBinance(demo) as binance, FakeCoinGecko(demo) as gecko:
        binance.short = 100
        binance.faults += [
            Fault("klines"),  # one page, then the exchange is down
            Fault("klines", 503, times=99, body=HTML_503, content_type="text/html"),
        ]
        yield binance, gecko


def test_coingecko_serves_the_rest_and_every_row_says_who_served_it(
    instance, warehouse_file, tmp_path, servers
):
    binance, gecko = servers
    market = real_market(
        tmp_path,
        crypto_source="ccxt",
        ccxt_api_url=binance.url,
        coingecko_api_url=gecko.url + "/api/v3",
    )
    _, meta = materialize(instance, warehouse_file, prices_1h, TAGS, market)
    got = stored(warehouse_file, "prices_1h", "BTC-USDT")
    truth = binance.market.candles("BTC-USDT", "1h", START, NOW)
    assert list(got["ts"]) == list(truth["ts"])
    assert got["source"].tolist() == ["ccxt:binance"] * 100 + ["coingecko"] * (len(truth) - 100)
    exchange, gecko_rows = got.iloc[:100], got.iloc[100:]
    assert np.allclose(exchange["close"], truth["close"].iloc[:100])
    assert np.allclose(gecko_rows["open"].iloc[:-1], truth["open"].iloc[100:-1])  # samples
    assert gecko_rows["volume"].isna().all()
    assert meta["rows_by_source"] == {"ccxt:binance": 100, "coingecko": len(truth) - 100}
    (log,) = rows(warehouse_file, "SELECT status, source FROM sync_log")
    assert log == ("success", "ccxt:binance → coingecko")
    assert len(binance.paths("klines")) == 1 + 4  # one page, then four attempts


def test_without_a_fallback_the_failure_is_clear_and_what_was_fetched_is_kept(
    instance, warehouse_file, tmp_path, servers
):
    binance, _ = servers
    market = real_market(
        tmp_path, crypto_source="ccxt", crypto_fallback="none", ccxt_api_url=binance.url
    )
    result, _ = materialize(instance, warehouse_file, prices_1h, TAGS, market, ok=False)
    message = failure_message(result)
    assert (
        "1 of 1 fetches failed: BTC-USDT 2026-11-10..2026-11-24: ccxt-binance: BTC-USDT 1h "
        "[2026-11-14 04:00, 2026-11-24 10:30): gave up after 4 attempts; last error (HTTP 503)"
    ) in message
    kept = stored(warehouse_file, "prices_1h", "BTC-USDT")
    assert len(kept) == 100 and kept["ts"].max() == START + timedelta(hours=99)
    newest = rows(
        warehouse_file,
        "SELECT last_timestamp FROM ingestion_state WHERE data_type = 'prices_1h'",
    )
    assert newest == [(START + timedelta(hours=99),)]  # exactly what is stored
    (log,) = rows(warehouse_file, "SELECT status, rows_inserted FROM sync_log")
    assert log == ("partial", 100)
