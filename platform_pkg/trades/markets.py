"""Which (account, market) pairs a run syncs for its symbols, and why.

An account that lists ``markets`` syncs exactly those. One that does not syncs every crypto
symbol it is known to hold or to have traded (the ledger) and every tracked crypto symbol — the
run then skips those its exchange does not list. Binance-style APIs answer trades per market
only, so a market nobody holds, trades or tracks is synced only when the account names it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from platform_pkg.accounts.model import ExchangeAccount
from platform_pkg.market.catalogue import asset_class_of
from platform_pkg.partitions import SymbolWindow
from platform_pkg.trades.ingest import TradeTask


def merged_windows(windows: Iterable[SymbolWindow]) -> list[SymbolWindow]:
    """One window per symbol, from its earliest start to its latest end (a trade sync walks
    from its watermarks, so the days in between cost nothing)."""
    spans: dict[str, SymbolWindow] = {}
    for w in windows:
        seen = spans.get(w.symbol)
        spans[w.symbol] = (
            w
            if seen is None
            else SymbolWindow(w.symbol, min(seen.start, w.start), max(seen.end, w.end))
        )
    return [spans[s] for s in sorted(spans)]


def plan_tasks(
    windows: Iterable[SymbolWindow],
    accounts: Iterable[ExchangeAccount],
    *,
    traded: Mapping[str, set[str]],
    tracked: set[str],
) -> list[TradeTask]:
    """The tasks for ``windows``: ``traded`` maps an account to the symbols the ledger has for
    it; ``tracked`` is every symbol in ``tracked_assets``."""
    tasks = []
    accounts = list(accounts)
    for window in merged_windows(windows):
        symbol = window.symbol
        for account in accounts:
            if account.markets is not None:
                if symbol in account.markets:
                    tasks.append(TradeTask(account, symbol, window, "listed in markets"))
                continue
            if asset_class_of(symbol) != "crypto":
                continue
            why = [
                reason
                for reason, hit in (
                    ("in the ledger", symbol in traded.get(account.name, set())),
                    ("tracked", symbol in tracked),
                )
                if hit
            ]
            if why:
                tasks.append(TradeTask(account, symbol, window, " and ".join(why), explicit=False))
    return tasks


def describe(tasks: Iterable[TradeTask]) -> list[str]:
    """One line per account: the markets this run syncs and why."""
    by_account: dict[str, list[str]] = {}
    for task in tasks:
        by_account.setdefault(task.account.name, []).append(f"{task.symbol} ({task.reason})")
    return [f"{account}: syncing {', '.join(items)}" for account, items in by_account.items()]
