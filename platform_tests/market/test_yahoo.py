"""yfinance at its HTTP layer against recorded-format Yahoo answers: bars, sessions, faults."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from platform_pkg.market.demo import DemoMarket
from platform_pkg.market.retry import SourceUnavailable
from platform_pkg.market.source import RequestMeter, UnknownSymbolError, paginate
from platform_pkg.market.yahoo import YahooSource
from platform_tests.fakes.market import real_market
from platform_tests.fakes.server import HTML_503, Fault
from platform_tests.fakes.yahoo import FakeYahoo

NOW = datetime(2026, 11, 24, 16, 10, tzinfo=UTC)  # a Tuesday, the session open


@pytest.fixture
def yahoo():
    with FakeYahoo(DemoMarket(clock=lambda: NOW)) as fake:
        yield fake


def source(fake, tmp_path, meter=None, **fields) -> YahooSource:
    market = real_market(
        tmp_path, now=NOW, stock_source="yfinance", yahoo_api_url=fake.url, **fields
    )
    return market.source_for("AAPL", meter or RequestMeter())


def fetch(src, interval, start, end=NOW, symbol="AAPL"):
    pages = list(paginate(src, symbol, interval, start, end, NOW))
    return pd.concat(pages, ignore_index=True) if pages else pd.DataFrame()


def test_hourly_bars_open_at_half_past_and_the_open_one_is_not_final(yahoo, tmp_path):
    start = datetime(2026, 11, 16, tzinfo=UTC)
    got = fetch(source(yahoo, tmp_path), "1h", start)
    want = yahoo.bars("AAPL", "1h", start, NOW)
    assert list(got["ts"]) == list(want["ts"])
    cols = ["open", "high", "low", "close"]
    assert np.allclose(got[cols].to_numpy(), want[cols].to_numpy())
    assert set(got["ts"].dt.minute) == {30} and set(got["source"]) == {"yfinance"}
    assert got["is_final"].tolist() == [True] * (len(got) - 1) + [False]  # 15:30 bar still open


def test_daily_bars_sit_under_their_trading_date_and_today_is_open(yahoo, tmp_path):
    yahoo.dividends[("AAPL", "2026-11-20")] = 0.26
    yahoo.splits[("AAPL", "2026-11-18")] = (4, 1)
    got = fetch(source(yahoo, tmp_path), "1d", datetime(2026, 11, 16, tzinfo=UTC))
    assert [t.strftime("%a %d") for t in got["ts"]] == [
        "Mon 16",
        "Tue 17",
        "Wed 18",
        "Thu 19",
        "Fri 20",
        "Mon 23",
        "Tue 24",
    ]
    assert (got["ts"].dt.hour == 0).all()
    assert got["is_final"].tolist() == [True] * 6 + [False]  # today's session closes at 21:00
    assert got.set_index(got["ts"].dt.day)["dividend"].to_dict()[20] == 0.26
    assert got.set_index(got["ts"].dt.day)["split"].to_dict()[18] == 4.0


def test_hourly_history_reaches_back_730_days(yahoo, tmp_path):
    src = source(yahoo, tmp_path)
    earliest = src.earliest("AAPL", "1h")
    assert NOW - timedelta(days=730) < earliest <= NOW - timedelta(days=728)
    assert src.earliest("AAPL", "1d") is None


def test_one_chart_request_per_window_once_the_session_is_warm(yahoo, tmp_path):
    meter = RequestMeter()
    src = source(yahoo, tmp_path, meter)
    fetch(src, "1d", datetime(2026, 11, 2, tzinfo=UTC))
    charts = len(yahoo.paths("/v8/finance/chart"))
    fetch(src, "1d", datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 10, 20, tzinfo=UTC))
    assert len(yahoo.paths("/v8/finance/chart")) == charts + 1
    assert meter.total == len(yahoo.requests)  # every HTTP request is counted


def test_unknown_symbol_is_a_clear_error(yahoo, tmp_path):
    with pytest.raises(UnknownSymbolError, match="No data found, symbol may be delisted"):
        fetch(source(yahoo, tmp_path), "1d", datetime(2026, 11, 2, tzinfo=UTC), symbol="NOPE")


def test_429_and_5xx_are_retried_not_juggled_by_yfinance(yahoo, tmp_path):
    fetch(source(yahoo, tmp_path), "1d", datetime(2026, 11, 2, tzinfo=UTC))  # warm: tz, crumb
    yahoo.requests.clear()
    yahoo.faults += [
        Fault("/v8/finance/chart", 429, body="Too Many Requests", content_type="text/plain"),
        Fault("/v8/finance/chart", 503, body=HTML_503, content_type="text/html"),
    ]
    got = fetch(
        source(yahoo, tmp_path),
        "1d",
        datetime(2026, 10, 1, tzinfo=UTC),
        datetime(2026, 10, 10, tzinfo=UTC),
    )
    assert len(got) == 7
    assert len(yahoo.paths("/v8/finance/chart")) == 3
    assert not yahoo.paths("/v1/test/getcrumb")  # no cookie-strategy toggling on errors


def test_gives_up_naming_the_source(yahoo, tmp_path):
    yahoo.faults.append(
        Fault("/v8/finance/chart", 502, times=99, body=HTML_503, content_type="text/html")
    )
    with pytest.raises(SourceUnavailable, match=r"yahoo: AAPL 1d \[2026-10-01 00:00.*HTTP 502"):
        source(yahoo, tmp_path).fetch_page(
            "AAPL", "1d", datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 10, 10, tzinfo=UTC)
        )
