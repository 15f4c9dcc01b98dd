"""Which (account, market) pairs a trade sync covers for its symbols, and why."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from platform_pkg.accounts.model import ExchangeAccount
from platform_pkg.partitions import SymbolWindow
from platform_pkg.trades.markets import describe, merged_windows, plan_tasks

DAY = timedelta(days=1)
D1 = datetime(2026, 11, 1, tzinfo=UTC)

LISTED = ExchangeAccount("binance-main", "binance", "K", "S", markets=("BTC-USDT", "ETH-USDT"))
OPEN = ExchangeAccount("kraken-main", "kraken", "K2", "S2")  # no markets: held, traded, tracked


def window(symbol: str, first: int = 0, days: int = 1) -> SymbolWindow:
    return SymbolWindow(symbol, D1 + first * DAY, D1 + (first + days) * DAY)


def plan(windows, accounts, traded=None, tracked=()):
    tasks = plan_tasks(windows, accounts, traded=traded or {}, tracked=set(tracked))
    return [(t.account.name, t.symbol, t.reason, t.explicit) for t in tasks]


def test_an_account_with_markets_syncs_exactly_those():
    windows = [window(s) for s in ("BTC-USDT", "ETH-USDT", "SOL-USDT", "AAPL")]
    assert plan(windows, [LISTED], traded={"binance-main": {"SOL-USDT"}}, tracked=["SOL-USDT"]) == [
        ("binance-main", "BTC-USDT", "listed in markets", True),
        ("binance-main", "ETH-USDT", "listed in markets", True),
    ]


def test_an_account_without_markets_syncs_what_the_ledger_has_for_it_and_what_is_tracked():
    windows = [window(s) for s in ("BTC-USDT", "ETH-USDT", "SOL-USDT", "DOGE-USDT")]
    traded = {"kraken-main": {"BTC-USDT", "ETH-USDT"}, "someone-else": {"DOGE-USDT"}}
    assert plan(windows, [OPEN], traded=traded, tracked=["ETH-USDT", "SOL-USDT"]) == [
        ("kraken-main", "BTC-USDT", "in the ledger", False),
        ("kraken-main", "ETH-USDT", "in the ledger and tracked", False),
        ("kraken-main", "SOL-USDT", "tracked", False),
    ]


def test_symbols_that_are_not_crypto_are_ignored_for_implicit_markets():
    windows = [window(s) for s in ("AAPL", "EURUSD=X", "GC=F", "SPY")]
    traded = {"kraken-main": {"AAPL", "SPY"}}
    assert plan(windows, [OPEN], traded=traded, tracked=["AAPL", "EURUSD=X", "GC=F"]) == []


def test_a_symbol_nobody_holds_trades_or_tracks_is_not_synced_implicitly():
    assert plan([window("SOL-USDT")], [OPEN]) == []


def test_every_account_that_syncs_a_symbol_gets_its_own_task():
    got = plan([window("BTC-USDT")], [LISTED, OPEN], tracked=["BTC-USDT"])
    assert got == [
        ("binance-main", "BTC-USDT", "listed in markets", True),
        ("kraken-main", "BTC-USDT", "tracked", False),
    ]


def test_windows_of_a_symbol_are_merged_into_one_span():
    windows = [window("BTC-USDT", 0), window("BTC-USDT", 5, 2), window("ETH-USDT", 3)]
    tasks = plan_tasks(windows, [LISTED], traded={}, tracked=set())
    assert [(t.symbol, t.window) for t in tasks] == [
        ("BTC-USDT", SymbolWindow("BTC-USDT", D1, D1 + 7 * DAY)),
        ("ETH-USDT", SymbolWindow("ETH-USDT", D1 + 3 * DAY, D1 + 4 * DAY)),
    ]
    assert [t.asset_id for t in tasks] == ["binance-main:BTC-USDT", "binance-main:ETH-USDT"]


def test_merged_windows_are_sorted_by_symbol_and_span_earliest_to_latest():
    merged = merged_windows([window("SOL-USDT", 4), window("BTC-USDT", 9), window("SOL-USDT", 1)])
    assert merged == [window("BTC-USDT", 9), window("SOL-USDT", 1, 4)]
    assert merged_windows([]) == []


def test_describe_says_per_account_what_is_synced_and_why():
    tasks = plan_tasks(
        [window("BTC-USDT"), window("SOL-USDT")],
        [LISTED, OPEN],
        traded={"kraken-main": {"SOL-USDT"}},
        tracked=set(),
    )
    assert describe(tasks) == [
        "binance-main: syncing BTC-USDT (listed in markets)",
        "kraken-main: syncing SOL-USDT (in the ledger)",
    ]
    assert describe([]) == []
