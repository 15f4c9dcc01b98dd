"""Symbol × date partitions, and the one parser that turns partition keys into symbols and days."""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import dagster as dg

from platform_pkg.symbols import canonical_symbols

DEFAULT_FIRST_DATE = "2020-01-01"


def first_partition_date() -> str:
    """The first date partition: ``PLATFORM_FIRST_DATE`` (YYYY-MM-DD) or 2020-01-01.

    Read when the definitions are built because a partitions definition is fixed at import;
    an unset or invalid value falls back to / fails with a clear message rather than a wrong key.
    """
    raw = os.environ.get("PLATFORM_FIRST_DATE", DEFAULT_FIRST_DATE)
    try:
        return date.fromisoformat(raw).isoformat()
    except ValueError as exc:
        raise ValueError(f"PLATFORM_FIRST_DATE={raw!r} is not a date (YYYY-MM-DD)") from exc


symbols_partitions = dg.DynamicPartitionsDefinition(name="symbols")
# end_offset=1: today has a partition, so the open candles of today can be fetched and refreshed.
daily_partitions = dg.DailyPartitionsDefinition(
    start_date=first_partition_date(), timezone="UTC", end_offset=1
)
symbol_date_partitions = dg.MultiPartitionsDefinition(
    {"date": daily_partitions, "symbol": symbols_partitions}
)
# On-chain wallets are partitioned by their account name (a dynamic set) and the same days.
wallets_partitions = dg.DynamicPartitionsDefinition(name="wallets")
wallet_date_partitions = dg.MultiPartitionsDefinition(
    {"date": daily_partitions, "wallet": wallets_partitions}
)


def add_symbols(instance: dg.DagsterInstance, raw: Sequence[str]) -> list[str]:
    """Validate ``raw`` and add the new ones to the ``symbols`` partitions; returns the added keys."""
    keys = canonical_symbols(list(raw))
    known = set(instance.get_dynamic_partitions(symbols_partitions.name))
    new = [k for k in keys if k not in known]
    if new:
        instance.add_dynamic_partitions(symbols_partitions.name, new)
    return new


def day_start(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


@dataclass(frozen=True)
class SymbolWindow:
    """A symbol (or, for wallet partitions, a wallet) and a half-open UTC window ``[start, end)``
    of whole days."""

    symbol: str
    start: datetime
    end: datetime

    @property
    def days(self) -> int:
        return (self.end - self.start).days

    def __str__(self) -> str:
        last = (self.end - timedelta(days=1)).date()
        return f"{self.symbol} {self.start.date()}..{last}"


def windows_from_keys(
    keys: Iterable[str | dg.MultiPartitionKey], dimension: str = "symbol"
) -> list[SymbolWindow]:
    """Group partition keys into one window per symbol (or ``dimension``'s key) and run of
    consecutive days.

    A ranged run of 365 days for one symbol gives one window; a run over several symbols for one
    day gives one window per symbol; gaps in the days split a symbol's keys into several windows.
    """
    days_by_symbol: dict[str, set[date]] = defaultdict(set)
    for key in keys:
        mk = key if isinstance(key, dg.MultiPartitionKey) else _parse(key, dimension)
        dims = mk.keys_by_dimension
        days_by_symbol[dims[dimension]].add(date.fromisoformat(dims["date"]))
    windows: list[SymbolWindow] = []
    for symbol in sorted(days_by_symbol):
        days = sorted(days_by_symbol[symbol])
        run_start = prev = days[0]
        for day in days[1:] + [None]:
            if day is not None and day == prev + timedelta(days=1):
                prev = day
                continue
            windows.append(
                SymbolWindow(symbol, day_start(run_start), day_start(prev + timedelta(days=1)))
            )
            if day is not None:
                run_start = prev = day
    return windows


def _parse(key: str, dimension: str = "symbol") -> dg.MultiPartitionKey:
    # Dagster writes a multi-partition key's dimensions in name order: "date" comes first.
    date_part, sep, other = key.partition("|")
    if not sep:
        raise ValueError(
            f"partition key {key!r} is not of the form 'YYYY-MM-DD|{dimension.upper()}'"
        )
    return dg.MultiPartitionKey({"date": date_part, dimension: other})


def windows_for_context(
    context: dg.AssetExecutionContext | dg.InputContext, dimension: str = "symbol"
) -> list[SymbolWindow]:
    """The windows a step (or a downstream input) covers, whatever launched it."""
    if isinstance(context, dg.InputContext):
        return windows_from_keys(context.asset_partition_keys, dimension)
    return windows_from_keys(context.partition_keys, dimension)


RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"
RANGE_TAGS = (RANGE_START_TAG, RANGE_END_TAG)


def partition_range_tags(window: SymbolWindow) -> dict[str, str]:
    """Run tags that make one run cover ``window`` (the same tags the backfill daemon sets)."""
    last = (window.end - timedelta(days=1)).date().isoformat()
    return {
        RANGE_START_TAG: f"{window.start.date().isoformat()}|{window.symbol}",
        RANGE_END_TAG: f"{last}|{window.symbol}",
    }


def block_range_tags(
    first_key: str, last_key: str, first_day: date, last_day: date, dimension: str = "symbol"
) -> dict[str, str]:
    """Run tags that make one run cover the days ``first_day``..``last_day`` × the keys of
    ``dimension`` from ``first_key`` to ``last_key`` in the partitions' order (a rectangle)."""
    start = dg.MultiPartitionKey({"date": first_day.isoformat(), dimension: first_key})
    end = dg.MultiPartitionKey({"date": last_day.isoformat(), dimension: last_key})
    return {RANGE_START_TAG: str(start), RANGE_END_TAG: str(end)}


def range_symbols(tags: Mapping[str, str], order: Sequence[str]) -> set[str]:
    """The symbols a ranged run covers: those from one end of its range to the other in
    ``order`` (the symbol partitions' order); its two ends when ``order`` lacks one."""
    ends = range_end_symbols(tags)
    if len(ends) < 2:
        return ends
    first, last = (_parse(tags[t]).keys_by_dimension["symbol"] for t in RANGE_TAGS)
    try:
        return set(order[order.index(first) : order.index(last) + 1]) | ends
    except ValueError:
        return ends


def range_end_symbols(tags: Mapping[str, str]) -> set[str]:
    """The symbols of a ranged run's two ends, from its tags (none for a run without a range)."""
    ends = [tags.get(RANGE_START_TAG), tags.get(RANGE_END_TAG)]
    if None in ends:
        return set()
    return {_parse(key).keys_by_dimension["symbol"] for key in ends}
