"""What the platform status is made of: plain values, built by :mod:`.build` from what the
warehouse and the Dagster instance already record, and shown by :mod:`.render`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

# The windows API use is added up over, by the name figures carry.
PERIODS: dict[str, timedelta] = {"24h": timedelta(days=1), "7d": timedelta(days=7)}
FAILED_RUNS_WINDOW = timedelta(days=1)


@dataclass(frozen=True)
class TrackedAsset:
    """A symbol prices are (or were) fetched for, from ``tracked_assets``."""

    asset_id: str
    asset_class: str | None
    is_active: bool
    tracking_users: int
    last_price_update: datetime | None


@dataclass(frozen=True)
class Account:
    """An account the warehouse knows, from its holdings and its syncs; active while it holds an
    open position."""

    account: str
    is_active: bool
    open_positions: int
    positions: int
    last_transaction_at: datetime | None
    last_sync_at: datetime | None


@dataclass(frozen=True)
class Freshness:
    """The active symbols of one price table served by one source (the source of each symbol's
    newest candle), against what their market calendars say should be stored by now."""

    source: str
    data_type: str
    symbols: int
    stale: int
    newest: datetime | None  # the newest candle of any of them
    most_behind: str | None  # the symbol whose newest candle is the oldest
    most_behind_newest: datetime | None


@dataclass(frozen=True)
class Stale:
    """An active symbol whose newest candle is older than its calendar's newest closed one."""

    symbol: str
    data_type: str
    source: str
    calendar: str
    newest: datetime | None
    due: datetime


@dataclass(frozen=True)
class Deferred:
    """A fetch put off (``deferred_fetches``): a long rate-limit cooldown or a spent budget."""

    symbol: str
    data_type: str
    source: str | None
    status: str | None  # the sync_log status that put it off: rate_limited, budget_exhausted
    deferred_at: datetime | None
    retry_after: datetime | None  # the next run that starts after this fetches it first
    reason: str | None


@dataclass(frozen=True)
class Usage:
    """What one source was asked over one period (``sync_log``), and what its incremental syncs
    saved against re-exporting the whole history each time (see :mod:`.usage`)."""

    source: str
    period: str
    syncs: int
    requests: int
    units: float
    rate_limited: int  # fetches deferred after a 429/418 whose cooldown was too long to wait
    budget_exhausted: int
    failed: int
    incremental_syncs: int
    incremental_units: float
    full_export_units: float
    throttled: int = 0  # answers that throttled its requests (429, 418), waited out or deferred

    @property
    def units_saved(self) -> float:
        return self.full_export_units - self.incremental_units


@dataclass(frozen=True)
class FailedRun:
    run_id: str
    job_name: str
    ended_at: datetime | None
    trigger: str  # "schedule <name>", "sensor <name>", "backfill <id>" or "manual"
    reason: str


@dataclass(frozen=True)
class InstanceFacts:
    """What the Dagster instance says; ``note`` says what could not be read and why."""

    failed_runs: tuple[FailedRun, ...] | None = None  # None: not read
    failed_runs_total: int = 0  # more than listed when there were many
    symbol_partitions: tuple[str, ...] | None = None
    instance_bytes: int | None = None
    note: str | None = None


@dataclass(frozen=True)
class KnownGaps:
    data_type: str
    reason: str
    gaps: int
    candles: int
    symbols: int


@dataclass(frozen=True)
class Anomaly:
    anomaly_id: str
    symbol: str
    data_type: str
    ts: datetime
    change: float


@dataclass(frozen=True)
class Status:
    """How the platform is doing at ``now``: fresh, stuck, and what it cost."""

    now: datetime
    market_now: datetime  # the clock candles are judged by ($PLATFORM_NOW when frozen)
    tracked: tuple[TrackedAsset, ...]
    accounts: tuple[Account, ...]
    freshness: tuple[Freshness, ...]
    stale: tuple[Stale, ...]
    deferred: tuple[Deferred, ...]
    usage: tuple[Usage, ...]
    known_gaps: tuple[KnownGaps, ...]
    unreviewed_anomalies: int
    anomalies: tuple[Anomaly, ...]  # the newest unreviewed ones
    warehouse_bytes: int | None
    instance: InstanceFacts
    notes: tuple[str, ...] = ()

    @property
    def active_symbols(self) -> int:
        return sum(a.is_active for a in self.tracked)

    @property
    def untracked_partitions(self) -> tuple[str, ...] | None:
        """Symbol partitions no holding tracks (markets synced for trades only, or added by
        hand), when the partitions were read."""
        if self.instance.symbol_partitions is None:
            return None
        tracked = {a.asset_id for a in self.tracked}
        return tuple(p for p in self.instance.symbol_partitions if p not in tracked)

    def usage_of(self, period: str) -> tuple[Usage, ...]:
        return tuple(u for u in self.usage if u.period == period)
