"""What the price schedules refresh: the active tracked symbols whose market was open.

A schedule asks for one day of several symbols at once. A run covers a *range* of partition
keys, and a multi-partition range is a rectangle (days × a contiguous run of symbols in the order
the symbols were added), so the wanted symbols are grouped into contiguous blocks of that order:
usually one block, so one run per tick.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from platform_pkg.market.candles import floor_time
from platform_pkg.market.demo import ALWAYS, DEMO_LISTINGS, FUTURES, FX, US_EQUITY, Session

HOUR = timedelta(hours=1)
_SESSION_BY_CLASS = {
    "crypto": ALWAYS,
    "stock": US_EQUITY,
    "etf": US_EQUITY,
    "fx": FX,
    "commodity": FUTURES,
}


def session_of(symbol: str, asset_class: str | None) -> Session:
    """When ``symbol``'s market prints candles (UTC): its listing's session, else its class's."""
    if symbol in DEMO_LISTINGS:
        return DEMO_LISTINGS[symbol].session
    return _SESSION_BY_CLASS.get(asset_class or "", ALWAYS)


def in_session(session: Session, candle_open: datetime) -> bool:
    if session.weekdays_only and candle_open.weekday() >= 5:
        return False
    return session.first_hour <= candle_open.hour < session.end_hour


def traded_between(session: Session, start: datetime, end: datetime) -> bool:
    """Whether an hourly candle of ``session`` was trading at some moment of ``(start, end]``."""
    moment = floor_time(start, "1h")
    while moment < end:
        if in_session(session, moment):
            return True
        moment += HOUR
    return False


def open_symbols(active: dict[str, str], start: datetime, end: datetime) -> list[str]:
    """The active symbols (symbol → asset class) whose market traded during ``(start, end]``."""
    return [
        s for s, cls in sorted(active.items()) if traded_between(session_of(s, cls), start, end)
    ]


@dataclass(frozen=True)
class Block:
    """A contiguous run of symbol partitions, ``first``..``last`` in partition order."""

    first: str
    last: str
    symbols: tuple[str, ...]


def contiguous_blocks(ordered_partitions: Sequence[str], wanted: Iterable[str]) -> list[Block]:
    """Group ``wanted`` into runs of neighbours in ``ordered_partitions``; unknown ones are left
    out (a symbol gets its partition from the holdings sensor before any schedule asks for it)."""
    want = set(wanted)
    blocks: list[Block] = []
    current: list[str] = []
    for key in [*ordered_partitions, None]:
        if key is not None and key in want:
            current.append(key)
            continue
        if current:
            blocks.append(Block(current[0], current[-1], tuple(current)))
            current = []
    return blocks
