"""Price requests grouped into as few runs as the machine can use: a block of symbols × days.

Each run costs a process start (~2.5 s of CPU) before it fetches anything, so twenty new
holdings as forty single-symbol runs spent most of their time starting. A ranged run covers a
box of partitions: the days between its two date ends × the symbols between its two symbol
ends, in the order the symbol partitions were added. So requests that want the same days (and
the same repair attempt) are put together when their symbols are consecutive in that order,
both price assets in one run when they want the same days. The sensor adds a tick's new
partitions sorted so that the symbols wanting the same days are consecutive.

What each symbol asks for is unchanged: a block only ever holds symbols whose requested days
are identical. A symbol that fails in a block leaves the others' partitions materialised (the IO
manager reports the complete symbols before the failure).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from math import ceil

from platform_pkg.portfolio.refresh import contiguous_blocks
from platform_pkg.portfolio.tracking import PRICE_ASSETS, PriceRequest

# Runs a block of symbols is split into, at most: two cores start and fetch two runs at once.
PARALLEL_RUNS = 2
# Symbols in one run, at most: bounds a run's length (300 new symbols are 12 runs of 25).
MAX_BLOCK_SYMBOLS = 25
_ASSET_ORDER = {data_type: i for i, (data_type, _) in enumerate(PRICE_ASSETS)}


@dataclass(frozen=True)
class PriceBlock:
    """One ranged run: ``data_types`` of ``symbols`` (consecutive in the symbol partitions'
    order) over the days ``first_day``..``last_day``."""

    data_types: tuple[str, ...]
    symbols: tuple[str, ...]
    first_day: date
    last_day: date
    reason: str
    repair: int = 0

    @property
    def run_key(self) -> str:
        who = self.symbols[0]
        if len(self.symbols) > 1:
            who = f"{self.symbols[0]}..{self.symbols[-1]}({len(self.symbols)})"
        key = f"{'+'.join(self.data_types)}:{who}:{self.first_day}:{self.last_day}"
        return f"{key}:repair{self.repair}" if self.repair else key


def new_partition_order(new: Sequence[str], requests: Sequence[PriceRequest]) -> list[str]:
    """``new`` symbols sorted so that those wanting the same days are consecutive."""
    wants: dict[str, list[tuple]] = defaultdict(list)
    for r in requests:
        wants[r.window.symbol].append((r.first_day, r.last_day, r.repair, r.data_type))
    return sorted(new, key=lambda s: (sorted(wants.get(s, [])), s))


def blocks(
    requests: Sequence[PriceRequest],
    order: Sequence[str],
    *,
    parallel: int = PARALLEL_RUNS,
    max_symbols: int = MAX_BLOCK_SYMBOLS,
) -> list[PriceBlock]:
    """``requests`` as the fewest runs of consecutive symbols (in ``order``, the symbol
    partitions' order) wanting the same days, each group split into ``parallel`` runs (or more,
    of at most ``max_symbols``)."""
    # Per symbol and days: the assets that want exactly those days.
    assets: dict[tuple[str, date, date, int], list[PriceRequest]] = defaultdict(list)
    for r in requests:
        assets[(r.window.symbol, r.first_day, r.last_day, r.repair)].append(r)
    groups: dict[tuple, list[tuple[str, list[PriceRequest]]]] = defaultdict(list)
    for (symbol, first, last, repair), wanted in assets.items():
        types = tuple(sorted({r.data_type for r in wanted}, key=_ASSET_ORDER.get))
        groups[(types, first, last, repair)].append((symbol, wanted))
    position = {symbol: i for i, symbol in enumerate(order)}
    result: list[PriceBlock] = []
    for (types, first, last, repair), members in groups.items():
        reasons = {s: wanted[0].reason for s, wanted in members}
        # Symbols the order does not hold (none: the sensor adds them first) run alone.
        runs = [b.symbols for b in contiguous_blocks(order, reasons)]
        runs += [(s,) for s in sorted(reasons) if s not in position]
        for run in runs:
            size = ceil(len(run) / max(min(parallel, len(run)), ceil(len(run) / max_symbols)))
            for i in range(0, len(run), size):
                chunk = tuple(run[i : i + size])
                result.append(
                    PriceBlock(types, chunk, first, last, _reason(chunk, reasons), repair)
                )
    return sorted(result, key=lambda b: (position.get(b.symbols[0], len(position)), b.run_key))


def _reason(symbols: tuple[str, ...], reasons: Mapping[str, str]) -> str:
    distinct = sorted({reasons[s] for s in symbols})
    if len(symbols) == 1:
        return distinct[0]
    said = distinct[0] if len(distinct) == 1 else f"{distinct[0]} (and {len(distinct) - 1} more)"
    return f"{len(symbols)} symbols: {said}"
