"""Price assets on real sources through their local servers: exact candles, minimal requests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from platform_pkg.market.demo import DemoMarket
from platform_pkg.prices.assets import prices_1d, prices_1h
from platform_tests.conftest import NOW, range_tags, rows
from platform_tests.fakes.binance import FakeBinance
from platform_tests.fakes.coingecko import FakeCoinGecko
from platform_tests.fakes.market import clear_market_env, materialize, real_market, stored
from platform_tests.fakes.server import HTML_503, Fault
from platform_tests.fakes.yahoo import FakeYahoo


@pytest.fixture(autouse=True)
def _no_market_env(monkeypatch):
    clear_market_env(monkeypatch)


@pytest.fixture
def binance():
    with FakeBinance(DemoMarket(clock=lambda: NOW)) as fake:
        yield fake


def ccxt_market(tmp_path, fake, **fields):
    return real_market(
        tmp_path, crypto_source="ccxt", crypto_fallback="none", ccxt_api_url=fake.url, **fields
    )


def exchange_candles(fake, symbol, interval, first, last):
    start = datetime.fromisoformat(first).replace(tzinfo=UTC)
    end = datetime.fromisoformat(last).replace(tzinfo=UTC) + timedelta(days=1)
    return fake.market.candles(symbol, interval, start, end).reset_index(drop=True)


def assert_holds_exactly(path, table, symbol, want, source):
    got = stored(path, table, symbol)
    cols = ["ts", "open", "high", "low", "close", "volume", "is_final"]
    pd.testing.assert_frame_equal(got[cols], want[cols], check_dtype=False)
    assert set(got["source"]) == {source}


def test_a_backfill_holds_exactly_the_exchanges_candles_then_syncs_with_one_request(
    instance, warehouse_file, tmp_path, binance
):
    market = ccxt_market(tmp_path, binance)
    tags = range_tags("BTC-USDT", "2026-10-12", "2026-11-24")
    _, meta = materialize(instance, warehouse_file, prices_1h, tags, market)
    want = exchange_candles(binance, "BTC-USDT", "1h", "2026-10-12", "2026-11-24")
    assert_holds_exactly(warehouse_file, "prices_1h", "BTC-USDT", want, "ccxt:binance")
    assert meta["rows_inserted"] == len(want) == 1043
    assert meta["api_requests"] == 3  # markets, then 1,043 candles in two pages
    assert meta["api_units"] == 20 + 2 + 2  # Binance request weight
    assert meta["rows_rejected"] == 0 and meta["source"] == "ccxt:binance"
    # Incremental: the newest candle and the lookback, in one request (markets are cached).
    _, meta = materialize(instance, warehouse_file, prices_1h, tags, market)
    assert meta["api_requests"] == 1 and meta["rows_inserted"] == 0
    assert binance.requests[-1].query["startTime"] == str(
        int(datetime(2026, 11, 24, 7, tzinfo=UTC).timestamp() * 1000)
    )


def test_faults_during_a_backfill_leave_the_same_exact_table(
    instance, warehouse_file, tmp_path, binance
):
    binance.short, binance.overlap = 15, 3
    binance.faults += [
        Fault("klines"),  # the first page is served
        Fault("klines", 429, headers={"Retry-After": "0.3"}, body={"code": -1003}),
        Fault("klines", 503, body=HTML_503, content_type="text/html"),
        Fault("klines"),
        Fault("klines", 502, body={"code": -1001, "msg": "Internal error"}),
        Fault("klines", reset=True),
        Fault("klines"),
        Fault("klines", delay=1.0),  # past the 0.5 s timeout
    ]
    market = ccxt_market(tmp_path, binance, retry_attempts=6)
    _, meta = materialize(
        instance,
        warehouse_file,
        prices_1d,
        range_tags("ETH-USDT", "2026-09-25", "2026-11-24"),
        market,
    )
    want = exchange_candles(binance, "ETH-USDT", "1d", "2026-09-25", "2026-11-24")
    assert_holds_exactly(warehouse_file, "prices_1d", "ETH-USDT", want, "ccxt:binance")
    (status, requests, throttled) = rows(
        warehouse_file, "SELECT status, api_requests, api_throttled FROM sync_log"
    )[0]
    pages = -(-len(want) // (15 - 3))  # 15 a page, 3 of them already seen
    assert status == "success" and requests == meta["api_requests"] == 1 + pages + 5
    assert throttled == 1, "the 429 waited out is counted"


def test_stocks_from_yahoo_with_their_dividends(instance, warehouse_file, tmp_path):
    now = datetime(2026, 11, 24, 16, 10, tzinfo=UTC)
    with FakeYahoo(DemoMarket(clock=lambda: now)) as yahoo:
        yahoo.dividends[("AAPL", "2026-11-06")] = 0.26
        market = real_market(tmp_path, now=now, stock_source="yfinance", yahoo_api_url=yahoo.url)
        _, meta = materialize(
            instance,
            warehouse_file,
            prices_1d,
            range_tags("AAPL", "2026-11-02", "2026-11-24"),
            market,
        )
        want = yahoo.bars("AAPL", "1d", datetime(2026, 11, 2, tzinfo=UTC), now)
    got = stored(warehouse_file, "prices_1d", "AAPL")
    assert list(got["ts"]) == list(want["ts"].dt.floor("D"))  # under their trading dates
    assert np.allclose(got["close"], want["close"]) and set(got["source"]) == {"yfinance"}
    assert got["is_final"].tolist() == [True] * (len(got) - 1) + [False]
    assert rows(
        warehouse_file, "SELECT symbol, ex_date::VARCHAR, action, value FROM corporate_actions"
    ) == [("AAPL", "2026-11-06", "dividend", 0.26)]
    assert meta["rows_rejected"] == 0


def test_coingecko_as_the_crypto_source_stores_null_volume(instance, warehouse_file, tmp_path):
    with FakeCoinGecko(DemoMarket(clock=lambda: NOW)) as gecko:
        market = real_market(
            tmp_path, crypto_source="coingecko", coingecko_api_url=gecko.url + "/api/v3"
        )
        _, meta = materialize(
            instance,
            warehouse_file,
            prices_1h,
            range_tags("SOL-USDT", "2026-11-20", "2026-11-24"),
            market,
        )
    got = stored(warehouse_file, "prices_1h", "SOL-USDT")
    assert len(got) == 4 * 24 + 11 and got["volume"].isna().all()
    assert meta["api_requests"] == 1 and meta["source"] == "coingecko"
