"""Walking an account's trade history page by page: by id where the exchange has an id cursor,
else by time windows no longer than the exchange allows. No Dagster, no warehouse: each walker
yields :class:`TradePage` values saying what a page brings and where the watermarks move, and the
caller commits each page with its watermarks in one transaction.

The rule every walker keeps: **a page ends the walk only when it brings nothing new.** A short
page is not the end (an exchange may answer fewer than it has), so after a page with new trades
the walker asks again from that page's last position — by id, the boundary trade comes back and
is dropped; by time, the trades of the boundary millisecond come back and are dropped by id. A
page of only already-seen trades therefore stops the walk instead of looping.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pandas as pd

from platform_pkg.trades.rows import Checked
from platform_pkg.trades.source import Trade, TradeSource
from platform_pkg.warehouse.watermarks import Cursor, CursorMove, Order

NEWEST, OLDEST, SYNCED = "trades", "trades_oldest", "trades_synced"
# An id-cursor sync from the first trade covers the account's whole history of the market.
BEGINNING = datetime(1970, 1, 1, tzinfo=UTC)

Check = Callable[[list[Trade]], Checked]


class PagingStuck(RuntimeError):
    """Time paging cannot get past a millisecond holding more trades than a page."""


@dataclass(frozen=True)
class TradePage:
    """What one request brought that is new, and the watermark moves that commit with it."""

    rows: pd.DataFrame | None = None
    rejected: pd.DataFrame | None = None
    moves: tuple[CursorMove, ...] = ()

    @property
    def fetched(self) -> int:
        return sum(len(f) for f in (self.rows, self.rejected) if f is not None)


@dataclass(frozen=True)
class Watermarks:
    """Where an account's market stands (any may be None before its first sync)."""

    newest: Cursor | None = None
    oldest: Cursor | None = None
    synced: Cursor | None = None  # time paging: up to when the history is complete


def _newest_move(asset_id: str, rows: pd.DataFrame, order: Order) -> tuple[CursorMove, ...]:
    if rows.empty:
        return ()
    if order is Order.ID:
        last = rows.loc[rows["trade_id"].map(int).idxmax()]
    else:
        last = rows.sort_values(["ts", "trade_id"]).iloc[-1]
    cursor = Cursor(str(last["trade_id"]), last["ts"].to_pydatetime())
    return (CursorMove(asset_id, NEWEST, cursor, order),)


def walk_ids(
    source: TradeSource, symbol: str, asset_id: str, marks: Watermarks, check: Check
) -> Iterator[TradePage]:
    """Forward from the newest stored id (inclusive: the boundary comes back and is dropped), or
    from the account's first trade on a first sync, until a page brings nothing new. Within a
    walk the next page starts just after the last id seen (ids are integers here)."""
    cursor = marks.newest.last_id if marks.newest is not None else None
    high = int(cursor) if cursor is not None else -1
    first_sync = marks.oldest is None
    beginning = (CursorMove(asset_id, OLDEST, Cursor("0", BEGINNING), force=True),)
    while True:
        checked = check(source.trades_from_id(symbol, cursor))
        if checked.max_id is None or checked.max_id <= high:
            if first_sync:  # an account that never traded this market is synced all the same
                yield TradePage(moves=beginning)
            return
        rows = checked.rows[checked.rows["trade_id"].map(int) > high]
        rejected = checked.rejected[checked.rejected["id"].isna() | (checked.rejected["id"] > high)]
        moves = _newest_move(asset_id, rows, Order.ID)
        if not moves:  # only rejects are new: the cursor still moves past them
            moves = (CursorMove(asset_id, NEWEST, Cursor(str(checked.max_id), None)),)
        if first_sync:
            moves += beginning
            first_sync = False
        yield TradePage(rows, rejected, moves)
        high = checked.max_id
        cursor = str(high + 1)


def walk_window(
    source: TradeSource,
    symbol: str,
    asset_id: str,
    start: datetime,
    end: datetime,
    check: Check,
    order: Order,
    seen: set[str],
) -> Iterator[TradePage]:
    """Every trade in ``[start, end)`` (one time window), asking again from the last trade's time
    until a page brings nothing new; ``seen`` holds what this sync already took (trade ids, and
    the raw text of rejects)."""
    cursor = start
    while True:
        checked = check(source.trades_between(symbol, cursor, end))
        rows = checked.rows[~checked.rows["trade_id"].isin(seen)]
        rejected = checked.rejected[~checked.rejected["raw"].isin(seen)]
        if rows.empty and rejected.empty:
            if len(checked.rows) >= source.page_limit and checked.rows["ts"].min() >= cursor:
                # A full page all at the cursor's millisecond: asking again from it returns the
                # same page, so the trades after it cannot be reached by time. Say so, never
                # stop quietly short (a reconcile would then delete what it did not see).
                raise PagingStuck(
                    f"{source.name}: more than {source.page_limit} {symbol} trades at "
                    f"{cursor:%Y-%m-%d %H:%M:%S.%f} UTC; paging by time cannot get past them"
                )
            return
        seen.update(rows["trade_id"])
        seen.update(rejected["raw"])
        yield TradePage(rows, rejected, _newest_move(asset_id, rows, order))
        if rows.empty:
            return  # only malformed rows were new: there is no time to go on from
        cursor = max(cursor, rows["ts"].max().to_pydatetime())


def windows(
    start: datetime, end: datetime, span: timedelta | None
) -> list[tuple[datetime, datetime]]:
    """``[start, end)`` cut into consecutive windows no longer than ``span``."""
    if span is None:
        return [(start, end)] if start < end else []
    out = []
    while start < end:
        out.append((start, min(start + span, end)))
        start = out[-1][1]
    return out


def walk_time(
    source: TradeSource,
    symbol: str,
    asset_id: str,
    marks: Watermarks,
    window_start: datetime,
    now: datetime,
    check: Check,
    order: Order,
) -> Iterator[TradePage]:
    """Time paging: forward from where the history is complete up to now, then — for a range
    older than the stored history — backward from the oldest watermark down to ``window_start``.
    A watermark moves only once a whole time window is in, so it never claims a gap."""
    seen: set[str] = set()
    synced = marks.synced.last_timestamp if marks.synced is not None else None
    oldest = marks.oldest.last_timestamp if marks.oldest is not None else None
    forward_from = synced if synced is not None else window_start
    for lo, hi in windows(forward_from, now, source.window):
        yield from walk_window(source, symbol, asset_id, lo, hi, check, order, seen)
        moves = [CursorMove(asset_id, SYNCED, Cursor(None, hi), Order.TIME)]
        if oldest is None:
            moves.append(
                CursorMove(asset_id, OLDEST, Cursor(None, forward_from), Order.TIME, forward=False)
            )
        yield TradePage(moves=tuple(moves))
    if oldest is None or window_start >= oldest:
        return
    for lo, hi in reversed(windows(window_start, oldest, source.window)):
        yield from walk_window(source, symbol, asset_id, lo, hi, check, order, seen)
        move = CursorMove(asset_id, OLDEST, Cursor(None, lo), Order.TIME, forward=False)
        yield TradePage(moves=(move,))


def walk_reconcile(
    source: TradeSource,
    symbol: str,
    asset_id: str,
    start: datetime,
    end: datetime,
    check: Check,
    order: Order,
) -> Iterator[TradePage]:
    """Re-read every trade in ``[start, end)`` whatever the watermarks say (no moves): the
    caller compares what came back with what is stored."""
    seen: set[str] = set()
    for lo, hi in windows(start, end, source.window):
        for page in walk_window(source, symbol, asset_id, lo, hi, check, order, seen):
            yield TradePage(page.rows, page.rejected)
