"""What the holdings sensor asks for when the portfolio changes: the tracking plan.

The sensor keeps, in its cursor, the holdings it last acted on (per symbol the first acquisition
date, whether it was held and by how many accounts), and where it stands in the ledger's inputs.
Each change is the difference between that state and the holdings', read against the watermarks
(what the warehouse really holds):

* a symbol new to tracking → its history from a year before its first acquisition to today;
* a symbol bought again while held → nothing to fetch (the reference count changes);
* an acquisition dated earlier than the tracked history → only the missing older range;
* sold to zero in every account → inactive (history kept, refreshes stop);
* held again after that → the gap since its newest candle.

Every requested range is clamped to the partitions' first day and to what the source serves,
and each clamp is noted. Requests carry a run key made of the range, so no range is asked twice.

A history run can fail for good (a source down longer than its retries, a run cancelled): then
the history of an active symbol stays short of its start with no run in flight. Such a gap is
asked for again, spaced out (:data:`REPAIR_BACKOFF`), a bounded number of times; each repair run
fetches only what is still missing.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta

from platform_pkg.market.candles import PRICE_TABLES
from platform_pkg.partitions import SymbolWindow, day_start
from platform_pkg.portfolio.positions import SymbolHolding
from platform_pkg.warehouse.watermarks import Coverage

HISTORY_DAYS = 365
PRICE_ASSETS = PRICE_TABLES  # the price assets and their candle intervals, daily first
CURSOR_VERSION = 2
# A gap first seen with no run in flight is asked for again after 15 min, then after 1 h and 4 h
# more; after that it is left to the user (the sensor logs it), so a symbol the source will never
# serve cannot spend requests forever.
REPAIR_BACKOFF: tuple[timedelta, ...] = (
    timedelta(minutes=15),
    timedelta(hours=1),
    timedelta(hours=4),
)


@dataclass(frozen=True)
class TrackedSymbol:
    """What the sensor last acted on for one symbol."""

    first_acquired: date
    active: bool
    accounts: int


@dataclass(frozen=True)
class Repair:
    """A history gap being asked for again: repair runs requested so far, and since when the
    next one waits (the gap's first sighting, or the last repair)."""

    attempts: int
    since: datetime


@dataclass
class HoldingsCursor:
    """The sensor's high-water marks over the ledger's inputs and the holdings, kept in its
    Dagster cursor."""

    digest: str | None = None  # sha256 of the portfolio file a ledger run was requested for
    symbols: dict[str, TrackedSymbol] = field(default_factory=dict)
    prices_checked_at: str | None = None  # when history repairs were last looked for (ISO)
    repairs: dict[str, Repair] = field(default_factory=dict)  # "data_type:symbol" -> Repair
    # Input table → the storage id of its newest materialisation a ledger run was asked for.
    seen: dict[str, int | None] = field(default_factory=dict)
    holdings_seen: int | None = None  # storage id of the holdings materialisation acted on
    # Input table → the last runs whose changes a ledger run was asked for (judged once).
    acted: dict[str, list[str]] = field(default_factory=dict)

    def remember_runs(self, runs: dict[str, set[str]], keep: int = 50) -> None:
        for name, ids in runs.items():
            self.acted[name] = (self.acted.get(name, []) + sorted(ids))[-keep:]

    @classmethod
    def parse(cls, raw: str | None) -> HoldingsCursor:
        if not raw:
            return cls()
        data = json.loads(raw)
        if data.get("v") not in (1, CURSOR_VERSION):
            raise ValueError(
                f"holdings sensor cursor version {data.get('v')!r} is not {CURSOR_VERSION}"
            )
        symbols = {
            key: TrackedSymbol(
                date.fromisoformat(item["first"]), bool(item["active"]), int(item["accounts"])
            )
            for key, item in data.get("symbols", {}).items()
        }
        repairs = {
            key: Repair(int(item["attempts"]), datetime.fromisoformat(item["since"]))
            for key, item in data.get("repairs", {}).items()
        }
        # A version-1 cursor (the file was the only input) keeps its symbols and repairs; the
        # ledger is built once to take over.
        return cls(
            data.get("digest") if data.get("v") == CURSOR_VERSION else None,
            symbols,
            data.get("prices_checked_at"),
            repairs,
            dict(data.get("seen", {})),
            data.get("holdings_seen"),
            {k: list(v) for k, v in data.get("acted", {}).items()},
        )

    def dump(self) -> str:
        return json.dumps(
            {
                "v": CURSOR_VERSION,
                "digest": self.digest,
                "seen": dict(sorted(self.seen.items())),
                "holdings_seen": self.holdings_seen,
                "acted": dict(sorted(self.acted.items())),
                "symbols": {
                    key: {
                        "first": s.first_acquired.isoformat(),
                        "active": s.active,
                        "accounts": s.accounts,
                    }
                    for key, s in sorted(self.symbols.items())
                },
                "prices_checked_at": self.prices_checked_at,
                "repairs": {
                    key: {"attempts": r.attempts, "since": r.since.isoformat()}
                    for key, r in sorted(self.repairs.items())
                },
            },
            separators=(",", ":"),
        )


@dataclass(frozen=True)
class PriceRequest:
    """One ranged run: ``data_type`` of ``window.symbol`` over the window's days."""

    data_type: str
    window: SymbolWindow
    reason: str
    repair: int = 0  # which repair of a failed history this is (0: not a repair)

    @property
    def first_day(self) -> date:
        return self.window.start.date()

    @property
    def last_day(self) -> date:
        return (self.window.end - timedelta(days=1)).date()

    @property
    def run_key(self) -> str:
        key = f"{self.data_type}:{self.window.symbol}:{self.first_day}:{self.last_day}"
        return f"{key}:repair{self.repair}" if self.repair else key


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


def partition_start(first_acquired: date, calendar: Calendar) -> date:
    """A year before the first acquisition, clamped to the first partition: the history start
    before the source's say, which can only move it later."""
    return max(first_acquired - timedelta(days=calendar.history_days), calendar.first_day)


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
    start = partition_start(first_acquired, calendar)
    why = f"the first date partition is {calendar.first_day}" if start > wanted else ""
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


@dataclass
class RepairPlan:
    requests: list[PriceRequest] = field(default_factory=list)
    repairs: dict[str, Repair] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def plan_repairs(
    symbols: dict[str, TrackedSymbol],
    repairs: dict[str, Repair],
    *,
    coverage: CoverageOf,
    earliest: Earliest,
    calendar: Calendar,
    in_flight: set[tuple[str, str]],
    now: datetime,
) -> RepairPlan:
    """Repair runs for the history gaps of active symbols that no run in flight is filling.

    A gap is a history that starts after its :func:`history_start` (or no history at all). It is
    asked for :data:`REPAIR_BACKOFF` after it is first seen, then again after each further wait,
    and then no more. ``in_flight`` holds the (symbol, data type) pairs of queued or running runs.
    """
    plan = RepairPlan()
    for symbol, held in sorted(symbols.items()):
        if not held.active:
            continue
        for data_type, interval in PRICE_ASSETS:
            key = f"{data_type}:{symbol}"
            cov = coverage(symbol, data_type)
            # No need to ask the source when the history already reaches its partition start.
            if cov is not None and cov.oldest.date() <= partition_start(
                held.first_acquired, calendar
            ):
                continue
            try:
                start = history_start(
                    held.first_acquired, symbol, data_type, interval, earliest, calendar
                )
            except Exception as exc:  # the source: unknown symbol, network; the others go on
                if key in repairs:
                    plan.repairs[key] = repairs[key]
                plan.notes.append(
                    f"{symbol} {data_type}: could not ask the source where its history starts "
                    f"({type(exc).__name__}: {exc}); looking again at the next check"
                )
                continue
            last = calendar.last_day if cov is None else cov.oldest.date() - timedelta(days=1)
            if start > last:
                continue
            previous = repairs.get(key)
            if (symbol, data_type) in in_flight:
                if previous is not None:
                    plan.repairs[key] = previous
                continue
            if previous is None:
                plan.repairs[key] = Repair(0, now)
                plan.notes.append(
                    f"{symbol} {data_type}: history missing {start}..{last} with no run in flight; "
                    f"asking again at {now + REPAIR_BACKOFF[0]:%Y-%m-%d %H:%M} UTC unless filled"
                )
                continue
            plan.repairs[key] = previous
            if (
                previous.attempts >= len(REPAIR_BACKOFF)
                or now < previous.since + REPAIR_BACKOFF[previous.attempts]
            ):
                continue
            attempt = previous.attempts + 1
            reason = f"repair {attempt} of {len(REPAIR_BACKOFF)}: the history run did not fill it"
            for request in _window(data_type, symbol, start, last, reason, plan.notes):
                plan.requests.append(replace(request, repair=attempt))
            plan.repairs[key] = Repair(attempt, now)
            if attempt == len(REPAIR_BACKOFF):
                plan.notes.append(
                    f"{symbol} {data_type}: last automatic repair; if it fails too, re-execute "
                    "the run or launch a backfill of the range"
                )
    return plan
