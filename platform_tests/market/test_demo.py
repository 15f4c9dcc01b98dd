"""The demo market: deterministic candles, exact daily aggregates, open candles, sessions, paging."""

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from platform_pkg.market.demo import DEMO_LISTINGS, DemoMarket
from platform_pkg.market.source import UnknownSymbolError

NOW = datetime(2026, 11, 24, 10, 30, tzinfo=UTC)


def at(moment: datetime) -> DemoMarket:
    return DemoMarket(clock=lambda: moment)


def test_serves_the_promised_symbols():
    for symbol in ("BTC-USDT", "ETH-USDT", "SOL-USDT", "AAPL", "MSFT", "EURUSD=X", "GC=F"):
        assert symbol in DEMO_LISTINGS


def test_same_candle_same_values_whoever_asks_whenever():
    start, end = datetime(2025, 3, 1, tzinfo=UTC), datetime(2025, 3, 3, tzinfo=UTC)
    early = at(datetime(2025, 6, 1, tzinfo=UTC)).candles("ETH-USDT", "1h", start, end)
    late = at(NOW).candles("ETH-USDT", "1h", start, end)
    pd.testing.assert_frame_equal(early, late)
    assert len(early) == 48


def test_daily_candle_is_the_aggregate_of_its_hours():
    market = at(NOW)
    for symbol in ("BTC-USDT", "AAPL", "GC=F"):
        start, end = datetime(2026, 11, 2, tzinfo=UTC), datetime(2026, 11, 25, tzinfo=UTC)
        hourly = market.candles(symbol, "1h", start, end)
        daily = market.candles(symbol, "1d", start, end)
        grouped = hourly.groupby(hourly["ts"].dt.floor("D"))
        assert list(daily["ts"]) == list(grouped.groups)
        assert daily["open"].tolist() == grouped["open"].first().tolist()
        assert daily["close"].tolist() == grouped["close"].last().tolist()
        assert daily["high"].tolist() == grouped["high"].max().tolist()
        assert daily["low"].tolist() == grouped["low"].min().tolist()
        assert daily["volume"].tolist() == pytest.approx(grouped["volume"].sum().tolist())


def test_the_current_candle_is_open_and_settles_when_it_closes():
    hour = datetime(2026, 11, 24, 10, tzinfo=UTC)
    seen = []
    for minutes in (10, 40, 60, 120):
        frame = at(hour + timedelta(minutes=minutes)).candles(
            "BTC-USDT", "1h", hour, hour + timedelta(hours=1)
        )
        seen.append(frame.iloc[0])
    assert [c["is_final"] for c in seen] == [False, False, True, True]
    assert seen[0]["close"] != seen[1]["close"] and seen[0]["volume"] < seen[1]["volume"]
    assert seen[2].equals(seen[3])
    assert seen[0]["open"] == seen[3]["open"]


def test_stocks_trade_only_in_session_and_never_on_weekends():
    market = at(NOW)
    week = market.candles(
        "AAPL", "1h", datetime(2026, 11, 16, tzinfo=UTC), datetime(2026, 11, 23, tzinfo=UTC)
    )
    assert set(week["ts"].dt.day_of_week) == {0, 1, 2, 3, 4}
    assert set(week["ts"].dt.hour) == set(range(14, 21))
    days = market.candles(
        "AAPL", "1d", datetime(2026, 11, 16, tzinfo=UTC), datetime(2026, 11, 23, tzinfo=UTC)
    )
    assert len(days) == 5
    crypto = market.candles(
        "BTC-USDT", "1d", datetime(2026, 11, 16, tzinfo=UTC), datetime(2026, 11, 23, tzinfo=UTC)
    )
    assert len(crypto) == 7


def test_never_serves_the_future_or_before_listing():
    market = at(NOW)
    frame = market.candles(
        "SOL-USDT", "1d", datetime(2019, 1, 1, tzinfo=UTC), datetime(2030, 1, 1, tzinfo=UTC)
    )
    assert frame["ts"].min() == pd.Timestamp("2020-04-10", tz="UTC")
    assert frame["ts"].max() == pd.Timestamp("2026-11-24", tz="UTC")


def test_pages_are_limited_and_every_request_is_counted():
    market = DemoMarket(clock=lambda: NOW, page_limit=100)
    page = market.fetch_page("BTC-USDT", "1h", datetime(2026, 1, 1, tzinfo=UTC), NOW)
    assert len(page) == 100 and market.meter.requests["demo"] == 1
    market.fetch_page("BTC-USDT", "1h", datetime(2026, 1, 1, tzinfo=UTC), NOW)
    assert market.meter.total == 2


def test_unknown_symbol_is_a_clear_error():
    with pytest.raises(UnknownSymbolError, match="does not list 'NOPE'.*BTC-USDT"):
        at(NOW).fetch_page("NOPE", "1h", datetime(2026, 1, 1, tzinfo=UTC), NOW)


def test_prices_are_sane_candles():
    frame = at(NOW).candles("SOL-USDT", "1h", datetime(2020, 4, 10, tzinfo=UTC), NOW)
    assert (frame["low"] <= frame[["open", "close"]].min(axis=1)).all()
    assert (frame["high"] >= frame[["open", "close"]].max(axis=1)).all()
    assert (frame["low"] > 0).all() and (frame["volume"] >= 0).all()
