"""What the schedules refresh: symbols whose market traded, by the calendar of the source that
serves them, and contiguous blocks of partitions."""

from datetime import UTC, datetime, timedelta

import pytest

from platform_pkg.market.resources import MarketData
from platform_pkg.portfolio.refresh import Block, contiguous_blocks, open_symbols
from platform_tests.fakes.market import clear_market_env

ACTIVE = {"BTC-USDT": "crypto", "AAPL": "stock", "EURUSD=X": "fx", "NEWCO": "stock"}
QUARTER = timedelta(minutes=15)


def real(symbol: str, asset_class: str | None) -> str:
    return "ccxt:binance" if asset_class == "crypto" else "yfinance"


def demo(symbol: str, asset_class: str | None) -> str:
    return "demo"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture(autouse=True)
def _no_user_calendars(monkeypatch, tmp_path):
    monkeypatch.setenv("PLATFORM_CALENDARS", str(tmp_path / "absent.toml"))


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        ("2026-11-24T10:15", ["BTC-USDT", "EURUSD=X"]),  # Tuesday morning: the US is closed
        ("2026-11-24T14:15", ["BTC-USDT", "EURUSD=X"]),  # New York opens at 14:30 UTC in winter
        ("2026-11-24T14:30", ["AAPL", "BTC-USDT", "EURUSD=X", "NEWCO"]),  # open at the tick
        ("2026-11-24T21:00", ["AAPL", "BTC-USDT", "EURUSD=X", "NEWCO"]),  # the close, 16:00 EST
        ("2026-11-24T21:15", ["BTC-USDT", "EURUSD=X"]),
        ("2026-11-26T15:00", ["BTC-USDT", "EURUSD=X"]),  # Thanksgiving
        ("2026-11-28T15:00", ["BTC-USDT"]),  # Saturday
        ("2026-11-29T22:15", ["BTC-USDT", "EURUSD=X"]),  # FX reopens Sunday 17:00 New York
    ],
)
def test_stocks_only_while_their_exchange_is_open_crypto_always(now, expected):
    end = at(now)
    assert open_symbols(ACTIVE, end - QUARTER, end, real) == expected


def test_the_demo_market_keeps_its_own_sessions():
    # The demo's stocks trade 14:00-21:00 UTC all year; a symbol it does not list is real.
    end = at("2026-11-24T14:15")
    assert open_symbols(ACTIVE, end - QUARTER, end, demo) == ["AAPL", "BTC-USDT", "EURUSD=X"]


def test_the_market_resource_names_the_source_per_asset_class(monkeypatch):
    clear_market_env(monkeypatch)
    market = MarketData(stock_source="yfinance")
    assert market.source_name("AAPL") == "yfinance"
    assert market.source_name("BTC-USDT", "crypto") == "demo"
    end = at("2026-11-24T14:15")  # the demo's stocks are open, New York is not
    assert open_symbols(ACTIVE, end - QUARTER, end, market.source_name) == [
        "BTC-USDT",
        "EURUSD=X",
    ]


def test_a_day_traded_or_not():
    monday, sunday = at("2026-11-23T00:00"), at("2026-11-22T00:00")
    day = timedelta(days=1)
    assert open_symbols({"AAPL": "stock"}, monday, monday + day, real) == ["AAPL"]
    assert open_symbols({"AAPL": "stock"}, sunday, sunday + day, real) == []
    assert open_symbols({"AAPL": "stock"}, sunday, sunday + day, demo) == []


def test_contiguous_blocks_follow_the_partition_order():
    order = ["BTC-USDT", "ETH-USDT", "SOL-USDT", "AAPL", "MSFT"]
    assert contiguous_blocks(order, ["ETH-USDT", "BTC-USDT", "MSFT", "UNKNOWN"]) == [
        Block("BTC-USDT", "ETH-USDT", ("BTC-USDT", "ETH-USDT")),
        Block("MSFT", "MSFT", ("MSFT",)),
    ]
    assert contiguous_blocks(order, []) == []
