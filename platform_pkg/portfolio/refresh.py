"""What the price schedules refresh: the active tracked symbols whose market was open.

A schedule asks for one day of several symbols at once. A run covers a *range* of partition
keys, and a multi-partition range is a rectangle (days × a contiguous run of symbols in the order
the symbols were added), so the wanted symbols are grouped into contiguous blocks of that order:
usually one block, so one run per tick.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from platform_pkg.market.calendars import calendar_for

SourceOf = Callable[[str, str | None], str]


def open_symbols(
    active: dict[str, str], start: datetime, end: datetime, source_of: SourceOf
) -> list[str]:
    """The active symbols (symbol → asset class) whose market traded during ``(start, end]``.

    ``source_of(symbol, asset_class)`` names the source that serves the symbol: the demo market
    keeps its own sessions, every real one trades on its exchange's calendar.
    """
    wanted = []
    for symbol, asset_class in sorted(active.items()):
        calendar = calendar_for(symbol, asset_class, source_of(symbol, asset_class))
        if calendar.traded_between(start, end):
            wanted.append(symbol)
    return wanted


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
