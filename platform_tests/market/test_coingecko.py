"""The CoinGecko source against a local server: samples into honest rows, limits, key, faults."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from platform_pkg.market.coingecko import CoinGeckoSource
from platform_pkg.market.demo import DemoMarket
from platform_pkg.market.retry import SourceUnavailable
from platform_pkg.market.source import RequestMeter, UnknownSymbolError, paginate
from platform_tests.conftest import NOW
from platform_tests.fakes.coingecko import FakeCoinGecko
from platform_tests.fakes.market import real_market
from platform_tests.fakes.server import HTML_503, Fault


@pytest.fixture
def gecko():
    with FakeCoinGecko(DemoMarket(clock=lambda: NOW)) as fake:
        yield fake


def source(fake, tmp_path, meter=None, **fields) -> CoinGeckoSource:
    market = real_market(
        tmp_path, crypto_source="coingecko", coingecko_api_url=fake.url + "/api/v3", **fields
    )
    return market.source_for("BTC-USDT", meter or RequestMeter())


def fetch(src, interval, start, end=NOW, symbol="BTC-USDT"):
    return pd.concat(list(paginate(src, symbol, interval, start, end, NOW)), ignore_index=True)


def test_hourly_rows_are_the_samples_inside_each_hour(gecko, tmp_path):
    meter = RequestMeter()
    got = fetch(source(gecko, tmp_path, meter), "1h", NOW - timedelta(days=10))
    hours = DemoMarket(clock=lambda: NOW).candles("BTC-USDT", "1h", NOW - timedelta(days=10), NOW)
    assert list(got["ts"]) == list(hours["ts"])  # on the hour, though samples are not
    closed = got.iloc[:-1]
    assert (closed["open"] == closed["close"]).all() and (closed["high"] == closed["low"]).all()
    assert np.allclose(closed["open"], hours["open"].iloc[:-1])  # the one sample: the open
    assert got["volume"].isna().all()  # a rolling 24 h total is not the candle's volume
    assert got["is_final"].tolist() == [True] * (len(got) - 1) + [False]
    # The open hour has two samples: its first, and the latest price appended at "now".
    assert got["close"].iloc[-1] == pytest.approx(hours["close"].iloc[-1])
    assert meter.total == 1
    # Always 2+ days, so the samples are hourly even for a short range near now.
    q = gecko.requests[0].query
    assert int(q["to"]) - int(q["from"]) >= 2 * 86400


def test_daily_rows_aggregate_a_days_samples(gecko, tmp_path):
    got = fetch(source(gecko, tmp_path), "1d", NOW - timedelta(days=200))
    assert len(gecko.requests) == 3  # 89 days a request keeps the samples hourly
    day = got[got["ts"] == pd.Timestamp("2026-10-01", tz="UTC")].iloc[0]
    hours = DemoMarket(clock=lambda: NOW).candles(
        "BTC-USDT", "1h", day["ts"].to_pydatetime(), day["ts"].to_pydatetime() + timedelta(days=1)
    )
    assert day["open"] == pytest.approx(hours["open"].iloc[0])
    assert day["close"] == pytest.approx(hours["open"].iloc[-1])
    assert day["high"] == pytest.approx(hours["open"].max())  # sampled: narrower than true
    assert day["high"] <= hours["high"].max() and day["low"] >= hours["low"].min()


def test_the_free_plan_serves_a_year_and_says_so(gecko, tmp_path):
    src = source(gecko, tmp_path)
    earliest = src.earliest("BTC-USDT", "1h")
    assert NOW - timedelta(days=366) < earliest < NOW - timedelta(days=364)
    with pytest.raises(SourceUnavailable, match="free plan serves only the last 365 days"):
        src.fetch_page("BTC-USDT", "1h", NOW - timedelta(days=400), NOW)
    assert gecko.requests == []
    with pytest.raises(UnknownSymbolError, match="no coin mapped for FOO-USDT"):
        src.fetch_page("FOO-USDT", "1h", NOW - timedelta(days=4), NOW)


def test_the_api_key_travels_in_a_header_only(gecko, tmp_path):
    src = source(gecko, tmp_path, coingecko_api_key="CG-SECRET")
    fetch(src, "1h", NOW - timedelta(days=3))
    request = gecko.requests[0]
    assert request.headers["x-cg-demo-api-key"] == "CG-SECRET"
    assert "CG-SECRET" not in request.query_string and "CG-SECRET" not in repr(src)


def test_429_and_5xx_are_retried(gecko, tmp_path):
    gecko.faults += [
        Fault(
            "market_chart",
            429,
            headers={"Retry-After": "0.2"},
            body={"status": {"error_code": 429, "error_message": "Rate limit"}},
        ),
        Fault("market_chart", 502, body=HTML_503, content_type="text/html"),
        Fault("market_chart", delay=1.0),
    ]
    got = fetch(source(gecko, tmp_path), "1h", NOW - timedelta(days=3))
    assert len(got) == 3 * 24 and len(gecko.requests) == 4


def test_gives_up_naming_the_source_and_range(gecko, tmp_path):
    gecko.faults.append(Fault("market_chart", 500, times=9, body={"error": "internal"}))
    with pytest.raises(
        SourceUnavailable, match=r"coingecko: BTC-USDT 1h \[2026-11-21 10:30.*HTTP 500"
    ):
        source(gecko, tmp_path, coingecko_api_key="CG-SECRET").fetch_page(
            "BTC-USDT", "1h", NOW - timedelta(days=3), NOW
        )
