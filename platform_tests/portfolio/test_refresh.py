"""What the schedules refresh: market sessions per symbol and contiguous blocks of partitions."""

from datetime import UTC, datetime, timedelta

import pytest

from platform_pkg.portfolio.refresh import (
    Block,
    contiguous_blocks,
    open_symbols,
    session_of,
    traded_between,
)

ACTIVE = {"BTC-USDT": "crypto", "AAPL": "stock", "EURUSD=X": "fx", "NEWCO": "stock"}
QUARTER = timedelta(minutes=15)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        ("2026-11-24T10:15", ["BTC-USDT", "EURUSD=X"]),  # Tuesday morning: the US is closed
        ("2026-11-24T14:15", ["AAPL", "BTC-USDT", "EURUSD=X", "NEWCO"]),
        ("2026-11-24T21:00", ["AAPL", "BTC-USDT", "EURUSD=X", "NEWCO"]),  # the 20:00 candle closes
        ("2026-11-24T21:15", ["BTC-USDT", "EURUSD=X"]),
        ("2026-11-28T15:00", ["BTC-USDT"]),  # Saturday
    ],
)
def test_stocks_only_while_their_exchange_is_open_crypto_always(now, expected):
    end = at(now)
    assert open_symbols(ACTIVE, end - QUARTER, end) == expected


def test_sessions_come_from_the_listing_else_the_asset_class():
    assert session_of("AAPL", None).first_hour == 14
    assert session_of("NEWCO", "stock") == session_of("MSFT", None)
    assert not session_of("NEW-USDT", "crypto").weekdays_only


def test_a_day_traded_or_not():
    aapl = session_of("AAPL", None)
    assert traded_between(aapl, at("2026-11-23T00:00"), at("2026-11-24T00:00"))  # Monday
    assert not traded_between(aapl, at("2026-11-22T00:00"), at("2026-11-23T00:00"))  # Sunday


def test_contiguous_blocks_follow_the_partition_order():
    order = ["BTC-USDT", "ETH-USDT", "SOL-USDT", "AAPL", "MSFT"]
    assert contiguous_blocks(order, ["ETH-USDT", "BTC-USDT", "MSFT", "UNKNOWN"]) == [
        Block("BTC-USDT", "ETH-USDT", ("BTC-USDT", "ETH-USDT")),
        Block("MSFT", "MSFT", ("MSFT",)),
    ]
    assert contiguous_blocks(order, []) == []
