"""The ccxt source against a local Binance: exact candles, few requests, faults, limits, secrets."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from platform_pkg.market.ccxt_source import CcxtSource
from platform_pkg.market.demo import DemoMarket
from platform_pkg.market.retry import SourceDeferred, SourceRequestError, SourceUnavailable
from platform_pkg.market.source import RequestMeter, UnknownSymbolError, paginate
from platform_tests.conftest import NOW
from platform_tests.fakes.binance import FakeBinance
from platform_tests.fakes.market import real_market
from platform_tests.fakes.server import HTML_503, Fault

START = NOW - timedelta(days=50)


@pytest.fixture
def binance():
    with FakeBinance(
        DemoMarket(clock=lambda: NOW), api_key="KEY-123", api_secret="SHH-456"
    ) as fake:
        yield fake


def source(fake, tmp_path, meter=None, **fields) -> CcxtSource:
    market = real_market(
        tmp_path, crypto_source="ccxt", crypto_fallback="none", ccxt_api_url=fake.url, **fields
    )
    return market.source_for("BTC-USDT", meter or RequestMeter())


def fetch(src, symbol="BTC-USDT", interval="1h", start=START, end=NOW):
    pages = list(paginate(src, symbol, interval, start, end, NOW))
    return pd.concat(pages, ignore_index=True) if pages else pd.DataFrame()


def truth(fake, symbol="BTC-USDT", interval="1h", start=START, end=NOW):
    return fake.market.candles(symbol, interval, start, end)


def assert_same(got, want):
    cols = ["ts", "open", "high", "low", "close", "volume"]
    pd.testing.assert_frame_equal(
        got[cols].reset_index(drop=True), want[cols].reset_index(drop=True), check_dtype=False
    )


def test_serves_exactly_the_exchanges_candles_with_the_fewest_requests(binance, tmp_path):
    meter = RequestMeter()
    got = fetch(source(binance, tmp_path, meter))
    assert_same(got, truth(binance))
    assert got["is_final"].tolist() == [True] * (len(got) - 1) + [False]  # 10:00 is still open
    assert set(got["source"]) == {"ccxt:binance"}
    # 1,211 candles: two pages, after the one market load; nothing but spot endpoints.
    assert binance.paths() == ["/api/v3/exchangeInfo", "/api/v3/klines", "/api/v3/klines"]
    assert meter.requests["ccxt:binance"] == 3 and meter.units["ccxt:binance"] == 20 + 2 + 2
    first = binance.requests[1].query
    assert (first["symbol"], first["interval"], first["limit"]) == ("BTCUSDT", "1h", "1000")


def test_markets_are_loaded_once_for_every_process_on_the_machine(binance, tmp_path):
    fetch(source(binance, tmp_path), end=START + timedelta(hours=5))
    fetch(source(binance, tmp_path), end=START + timedelta(hours=5))
    assert binance.paths().count("/api/v3/exchangeInfo") == 1


def test_a_pair_the_exchange_does_not_list_is_a_clear_error(binance, tmp_path):
    with pytest.raises(UnknownSymbolError, match="binance does not list DOGE/USDT"):
        fetch(source(binance, tmp_path), symbol="DOGE-USDT")
    with pytest.raises(UnknownSymbolError):  # as the demo market does, for symbol checks
        source(binance, tmp_path).earliest("DOGE-USDT", "1d")
    assert source(binance, tmp_path).earliest("BTC-USDT", "1d") is None


def test_every_endpoint_goes_to_the_base_url_and_nowhere_else(binance, tmp_path):
    src = source(binance, tmp_path, ccxt_api_key="KEY-123", ccxt_api_secret="SHH-456")
    urls = json.dumps(src.exchange.urls["api"])
    assert "binance.com" not in urls and urls.count(binance.url) == len(src.exchange.urls["api"])
    # A signed private endpoint reaches the local server, signature and key header checked.
    binance.trades["BTCUSDT"] = [
        {
            "symbol": "BTCUSDT",
            "id": 1,
            "orderId": 7,
            "orderListId": -1,
            "price": "50000.0",
            "qty": "0.1",
            "quoteQty": "5000.0",
            "commission": "0.0001",
            "commissionAsset": "BTC",
            "time": 1795000000000,
            "isBuyer": True,
            "isMaker": False,
            "isBestMatch": True,
        }
    ]
    trades = src.exchange.fetch_my_trades("BTC/USDT")
    assert [t["id"] for t in trades] == ["1"]
    # Anything that would leave for another host is refused before it is sent.
    src.exchange.urls["api"]["public"] = "https://api.binance.com/api/v3"
    sent = len(binance.requests)
    with pytest.raises(SourceRequestError, match="refusing GET https://api.binance.com"):
        src.fetch_page("BTC-USDT", "1h", START, NOW)
    assert len(binance.requests) == sent


def test_short_and_overlapping_pages_still_give_each_candle_once(binance, tmp_path):
    binance.short, binance.overlap = 300, 4
    got = fetch(source(binance, tmp_path))
    assert_same(got, truth(binance))
    assert len(binance.paths("klines")) == 5  # 1,211 candles, 300 at most (minus overlap) a page


def test_429_retry_after_is_honoured_and_shared_with_other_processes(binance, tmp_path):
    binance.faults.append(
        Fault("klines", 429, headers={"Retry-After": "1"}, body={"code": -1003, "msg": "Too many"})
    )
    src = source(binance, tmp_path)
    started = time.monotonic()
    got = fetch(src, end=START + timedelta(hours=30))
    assert time.monotonic() - started >= 0.95
    assert_same(got, truth(binance, end=START + timedelta(hours=30)))
    assert len(binance.paths("klines")) == 2
    state = json.loads((tmp_path / "sources" / "ccxt-binance.json").read_text())
    assert "HTTP 429" in state["reason"] and state["blocked_until"] > time.time() - 5


def test_a_ban_longer_than_the_cap_defers_and_stops_every_process(binance, tmp_path):
    binance.faults.append(
        Fault("klines", 418, headers={"Retry-After": "600"}, body={"code": -1003})
    )
    with pytest.raises(SourceDeferred, match="ccxt-binance is rate limited until") as err:
        fetch(source(binance, tmp_path))
    assert err.value.until > datetime.now(UTC) + timedelta(seconds=590)
    sent = len(binance.requests)
    with pytest.raises(SourceDeferred):  # a fresh source, as another process would build
        fetch(source(binance, tmp_path), symbol="ETH-USDT")
    assert len(binance.requests) == sent  # nobody calls a banned exchange


def test_5xx_timeouts_and_resets_are_retried_with_backoff(binance, tmp_path):
    binance.faults += [
        Fault("klines", 503, body=HTML_503, content_type="text/html"),
        Fault("klines", 500, body={"code": -1001, "msg": "Internal error; unable to process"}),
        Fault("klines", delay=1.0),  # longer than the 0.5 s timeout
        Fault("klines", reset=True),
        Fault("klines", 504, body="", content_type="text/plain"),
    ]
    got = fetch(source(binance, tmp_path, retry_attempts=6), end=START + timedelta(hours=30))
    assert_same(got, truth(binance, end=START + timedelta(hours=30)))
    assert len(binance.paths("klines")) == 6


def test_after_the_last_attempt_the_failure_names_source_symbol_range_and_cause(binance, tmp_path):
    binance.faults.append(Fault("klines", 503, times=99, body=HTML_503, content_type="text/html"))
    src = source(binance, tmp_path, ccxt_api_key="KEY-123", ccxt_api_secret="SHH-456")
    with pytest.raises(SourceUnavailable) as err:
        src.fetch_page("BTC-USDT", "1h", START, NOW)
    message = str(err.value)
    assert message.startswith(
        "ccxt-binance: BTC-USDT 1h [2026-10-05 10:30, 2026-11-24 10:30): gave up after 4 attempts"
    )
    assert "HTTP 503" in message and "503 Service Temporarily Unavailable" in message
    assert len(binance.paths("klines")) == 4
    assert "KEY-123" not in message + repr(src) and "SHH-456" not in message + repr(src)


def test_keys_stay_out_of_the_logs_even_at_debug(binance, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    src = source(binance, tmp_path, ccxt_api_key="KEY-123", ccxt_api_secret="SHH-456")
    src.exchange.fetch_my_trades("BTC/USDT")
    assert binance.requests[-1].headers["x-mbx-apikey"] == "KEY-123"  # it was sent
    assert "KEY-123" not in caplog.text and "SHH-456" not in caplog.text


WORKER = textwrap.dedent(
    """
    import sys
    from datetime import UTC, datetime, timedelta
    from pathlib import Path
    from platform_pkg.market.ccxt_source import CcxtSource
    from platform_pkg.market.ratelimit import RateLimit, SharedTokenBucket
    from platform_pkg.market.retry import RetryPolicy
    from platform_pkg.market.source import RequestMeter
    url, state = sys.argv[1], Path(sys.argv[2])
    now = datetime(2026, 11, 24, 10, 30, tzinfo=UTC)
    bucket = SharedTokenBucket("ccxt-binance", state / "ccxt-binance.json", RateLimit(40, 2))
    src = CcxtSource("binance", clock=lambda: now, meter=RequestMeter(), bucket=bucket,
                     policy=RetryPolicy(), timeout=5, state_dir=state, api_url=url)
    for i in range(15):
        start = now - timedelta(days=30) + timedelta(hours=i)
        src.fetch_page("BTC-USDT", "1h", start, start + timedelta(hours=1))
    """
)


def busiest_window(fake, seconds=2.0):
    hits = [(r.at, 2) for r in fake.requests if r.path.endswith("klines")]
    return max(sum(w for t, w in hits if s <= t < s + seconds) for s, _ in hits)


@pytest.mark.parametrize("shared", [True, False])
def test_two_processes_together_stay_under_the_shared_limit(binance, tmp_path, shared):
    fetch(source(binance, tmp_path), end=START + timedelta(hours=2))  # markets cached
    binance.requests.clear()
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    workers = []
    for i in range(2):
        state = tmp_path / "sources"
        if not shared:  # the control: each process with a private bucket (markets copied)
            state = tmp_path / f"own{i}"
            state.mkdir()
            for cached in (tmp_path / "sources").glob("markets-*.json"):
                (state / cached.name).write_text(cached.read_text())
        cmd = [sys.executable, str(script), binance.url, str(state)]
        workers.append(subprocess.Popen(cmd, cwd=str(tmp_path.parent)))
    for proc in workers:
        assert proc.wait(timeout=60) == 0
    assert len(binance.paths("klines")) == 30 and not binance.paths("exchangeInfo")
    if shared:
        assert busiest_window(binance) <= 40  # weight in any 2 s, both processes together
    else:
        assert busiest_window(binance) > 40
