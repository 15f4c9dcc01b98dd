"""What the holdings sensor asks for when the portfolio changes: the tracking plan.

The sensor keeps, in its cursor, the portfolio state it last acted on (a digest of the file, how
many lines it had, and per symbol the first acquisition date, whether it was held and by how many
accounts). Each change is the difference between that state and the file's, read against the
watermarks (what the warehouse really holds):

* a symbol new to tracking → its history from a year before its first acquisition to today;
* a symbol bought again while held → nothing to fetch (the reference count changes);
* an acquisition dated earlier than the tracked history → only the missing older range;
* sold to zero in every account → inactive (history kept, refreshes stop);
* held again after that → the gap since its newest candle.

Every requested range is clamped to the partitions' first day and to what the source serves,
and each clamp is noted. Requests carry a run key made of the range, so no range is asked twice.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from platform_pkg.partitions import SymbolWindow, day_start
from platform_pkg.portfolio.positions import SymbolHolding
from platform_pkg.warehouse.watermarks import Coverage

HISTORY_DAYS = 365
# The price assets and their candle intervals, daily first: it is the cheaper of the two.
PRICE_ASSETS: tuple[tuple[str, str], ...] = (("prices_1d", "1d"), ("prices_1h", "1h"))
CURSOR_VERSION = 1


@dataclass(frozen=True)
class TrackedSymbol:
    """What the sensor last acted on for one symbol."""

    first_acquired: date
    active: bool
    accounts: int


@dataclass
class HoldingsCursor:
    """The sensor's high-water mark over portfolio changes, kept in its Dagster cursor."""

    digest: str | None = None  # sha256 of the file content last acted on
    lines: int = 0  # data lines in that content (the append position)
    symbols: dict[str, TrackedSymbol] = field(default_factory=dict)
    prices_checked_at: str | None = None  # when last_price_update was last refreshed (ISO)

    @classmethod
    def parse(cls, raw: str | None) -> HoldingsCursor:
        if not raw:
            return cls()
        data = json.loads(raw)
        if data.get("v") != CURSOR_VERSION:
            raise ValueError(
                f"holdings sensor cursor version {data.get('v')!r} is not {CURSOR_VERSION}"
            )
        symbols = {
            key: TrackedSymbol(
                date.fromisoformat(item["first"]), bool(item["active"]), int(item["accounts"])
            )
            for key, item in data.get("symbols", {}).items()
        }
        return cls(
            data.get("digest"), int(data.get("lines", 0)), symbols, data.get("prices_checked_at")
        )

    def dump(self) -> str:
        return json.dumps(
            {
                "v": CURSOR_VERSION,
                "digest": self.digest,
                "lines": self.lines,
                "symbols": {
                    key: {
                        "first": s.first_acquired.isoformat(),
                        "active": s.active,
                        "accounts": s.accounts,
                    }
                    for key, s in sorted(self.symbols.items())
                },
                "prices_checked_at": self.prices_checked_at,
            },
            separators=(",", ":"),
        )


@dataclass(frozen=True)
class PriceRequest:
    """One ranged run: ``data_type`` of ``window.symbol`` over the window's days."""

    data_type: str
    window: SymbolWindow
    reason: str

    @property
    def first_day(self) -> date:
        return self.window.start.date()

    @property
    def last_day(self) -> date:
        return (self.window.end - timedelta(days=1)).date()

    @property
    def run_key(self) -> str:
        return f"{self.data_type}:{self.window.symbol}:{self.first_day}:{self.last_day}"


@dataclass
class TrackingPlan:
    requests: list[PriceRequest] = field(default_factory=list)
    new_partitions: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    symbols: dict[str, TrackedSymbol] = field(default_factory=dict)


@dataclass(frozen=True)
class Calendar:
    """The days a request may cover: the partitions' first day up to today (or the last
    partition that exists, if the partitions stop before today)."""

    first_day: date
    last_day: date
    history_days: int = HISTORY_DAYS


Earliest = Callable[[str, str], datetime | None]
CoverageOf = Callable[[str, str], Coverage | None]


def plan_tracking(
    previous: dict[str, TrackedSymbol],
    holdings: dict[str, SymbolHolding],
    *,
    coverage: CoverageOf,
    earliest: Earliest,
    calendar: Calendar,
    known_partitions: set[str],
) -> TrackingPlan:
    """The requests, new partitions and notes that bring tracking in line with ``holdings``."""
    plan = TrackingPlan()
    for symbol, holding in holdings.items():
        prev = previous.get(symbol)
        plan.symbols[symbol] = TrackedSymbol(
            holding.first_acquired, holding.active, len(holding.accounts)
        )
        if not holding.active:
            if prev is not None and prev.active:
                plan.notes.append(
                    f"{symbol}: sold to zero in every account; inactive, history kept"
                )
            elif prev is None:
                plan.notes.append(f"{symbol}: no account holds it; not tracked")
            continue
        if symbol not in known_partitions:
            plan.new_partitions.append(symbol)
        if prev is not None and prev.active and prev.accounts != len(holding.accounts):
            plan.notes.append(
                f"{symbol}: held in {len(holding.accounts)} account(s), was {prev.accounts}; no backfill"
            )
        for data_type, interval in PRICE_ASSETS:
            plan.requests += _requests_for(
                holding,
                prev,
                data_type,
                interval,
                coverage(symbol, data_type),
                earliest,
                calendar,
                plan.notes,
            )
    # A symbol whose lines all left the file is no longer held by anyone.
    for symbol, prev in previous.items():
        if symbol not in holdings:
            plan.symbols[symbol] = TrackedSymbol(prev.first_acquired, False, 0)
            if prev.active:
                plan.notes.append(f"{symbol}: no longer in the portfolio; inactive, history kept")
    return plan


def history_start(
    first_acquired: date,
    symbol: str,
    data_type: str,
    interval: str,
    earliest: Earliest,
    calendar: Calendar,
    notes: list[str] | None = None,
) -> date:
    """A year before the first acquisition, clamped to the first partition and the source."""
    wanted = first_acquired - timedelta(days=calendar.history_days)
    start, why = wanted, ""
    if calendar.first_day > start:
        start, why = calendar.first_day, f"the first date partition is {calendar.first_day}"
    served = earliest(symbol, interval)
    if served is not None and served.date() > start:
        start = served.date()
        why = f"the source serves {symbol} {interval} candles from {served:%Y-%m-%d %H:%M}"
    if why and notes is not None:
        notes.append(
            f"{symbol} {data_type}: history wanted from {wanted}, clamped to {start} ({why})"
        )
    return start


def _requests_for(
    holding: SymbolHolding,
    prev: TrackedSymbol | None,
    data_type: str,
    interval: str,
    cov: Coverage | None,
    earliest: Earliest,
    calendar: Calendar,
    notes: list[str],
) -> list[PriceRequest]:
    symbol, end = holding.symbol, calendar.last_day
    start = history_start(
        holding.first_acquired, symbol, data_type, interval, earliest, calendar, notes
    )
    known = [cov.oldest.date()] if cov is not None else []
    if prev is not None:
        # Requested when the sensor acted on ``prev`` (its runs may not have finished yet).
        known.append(
            history_start(prev.first_acquired, symbol, data_type, interval, earliest, calendar)
        )
    if not known:
        return _window(data_type, symbol, start, end, "new symbol", notes)
    requests = []
    known_from = min(known)
    if start < known_from:
        reason = (
            f"acquired on {holding.first_acquired}, earlier than the tracked history ({known_from})"
        )
        requests += _window(data_type, symbol, start, known_from - timedelta(days=1), reason, notes)
    if prev is None or not prev.active:
        gap_from = cov.newest.date() if cov is not None else max(start, known_from)
        reason = "held again: filling the gap" if prev is not None else "tracked again"
        requests += _window(data_type, symbol, gap_from, end, f"{reason} since {gap_from}", notes)
    return requests


def _window(
    data_type: str, symbol: str, first: date, last: date, reason: str, notes: list[str]
) -> list[PriceRequest]:
    if first > last:
        notes.append(
            f"{symbol} {data_type}: nothing to fetch for {reason} ({first} is after {last})"
        )
        return []
    window = SymbolWindow(symbol, day_start(first), day_start(last + timedelta(days=1)))
    notes.append(f"{symbol} {data_type}: requesting {first}..{last} ({reason})")
    return [PriceRequest(data_type, window, reason)]
