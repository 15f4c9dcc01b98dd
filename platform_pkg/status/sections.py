"""The status as titled sections of rows: what both the Markdown summary and the terminal text
show, defined once."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from platform_pkg.status.build import GRACE_CANDLES
from platform_pkg.status.model import Status

LISTED = 10  # names listed inline before "and N more"
ROWS = 50  # stale symbols listed (all are in the JSON output)


@dataclass(frozen=True)
class Section:
    title: str
    headline: str
    columns: tuple[str, ...] = ()
    rows: tuple[tuple[Any, ...], ...] = ()


def sections(status: Status) -> list[Section]:
    """Every part of the status, in the order it is shown."""
    return [
        _tracked(status),
        _accounts(status),
        _freshness(status),
        _stale(status),
        _deferred(status),
        _failed(status),
        _usage(status),
        _gaps(status),
        _anomalies(status),
        _sizes(status),
    ]


def _tracked(status: Status) -> Section:
    classes = sorted({a.asset_class or "?" for a in status.tracked})
    rows = []
    for c in classes:
        members = [a for a in status.tracked if (a.asset_class or "?") == c]
        inactive = [a.asset_id for a in members if not a.is_active]
        rows.append((c, len(members) - len(inactive), len(inactive), names(inactive)))
    line = f"{status.active_symbols} active, {len(status.tracked) - status.active_symbols} inactive"
    if (untracked := status.untracked_partitions) is not None:
        line += f"; {len(status.instance.symbol_partitions or ())} symbol partitions"
        line += f", {len(untracked)} not tracked" + (f" ({names(untracked)})" if untracked else "")
    return Section(
        "Tracked assets", line, ("asset class", "active", "inactive", "inactive symbols"), rows
    )


def _accounts(status: Status) -> Section:
    active = sum(a.is_active for a in status.accounts)
    rows = tuple(
        (
            a.account,
            "yes" if a.is_active else "no",
            a.open_positions,
            a.positions,
            when(a.last_transaction_at),
            when(a.last_sync_at),
        )
        for a in status.accounts
    )
    return Section(
        "Accounts",
        f"{active} active (holding an open position), {len(status.accounts) - active} inactive",
        ("account", "active", "open positions", "positions", "last transaction", "last sync"),
        rows,
    )


def _freshness(status: Status) -> Section:
    rows = tuple(
        (
            f.data_type,
            f.source,
            f.symbols,
            f.stale,
            when(f.newest),
            f.most_behind or "",
            when(f.most_behind_newest),
        )
        for f in status.freshness
    )
    return Section(
        "Freshness",
        f"{len(status.stale)} stale (newest candle more than {GRACE_CANDLES} candles behind what "
        f"the market calendar has closed by {when(status.market_now)})",
        ("table", "source", "symbols", "stale", "newest", "most behind", "its newest"),
        rows,
    )


def _stale(status: Status) -> Section:
    rows = tuple(
        (s.symbol, s.data_type, s.source, s.calendar, when(s.newest), when(s.due))
        for s in status.stale[:ROWS]
    )
    count = len(status.stale)
    more = f" (the first {ROWS} listed)" if count > ROWS else ""
    return Section(
        "Stale symbols",
        f"{count}{more}" if rows else "none",
        ("symbol", "table", "source", "calendar", "newest", "due by now"),
        rows,
    )


def _deferred(status: Status) -> Section:
    kinds = Counter(d.status or "unknown" for d in status.deferred)
    line = f"{len(status.deferred)}" + (
        f" ({', '.join(f'{n} {k}' for k, n in sorted(kinds.items()))}); the first run after "
        "'retry after' fetches each of them first"
        if status.deferred
        else ""
    )
    rows = tuple(
        (
            d.symbol,
            d.data_type,
            d.source or "",
            d.status or "",
            when(d.deferred_at),
            retry(d.retry_after, status.now),
            d.reason or "",
        )
        for d in status.deferred
    )
    return Section(
        "Deferred fetches",
        line,
        ("symbol", "data", "source", "status", "deferred", "retry after", "reason"),
        rows,
    )


def _failed(status: Status) -> Section:
    facts = status.instance
    if facts.failed_runs is None:
        return Section("Failed runs in the last 24 h", "unknown (the instance was not read)")
    shown = len(facts.failed_runs)
    more = facts.failed_runs_total - shown
    rows = tuple(
        (r.run_id[:8], r.job_name, when(r.ended_at), r.trigger, r.reason) for r in facts.failed_runs
    )
    return Section(
        "Failed runs in the last 24 h",
        f"{facts.failed_runs_total}" + (f" (the newest {shown} listed)" if more else ""),
        ("run", "job", "ended", "started by", "reason"),
        rows,
    )


def _usage(status: Status) -> Section:
    rows = tuple(
        (
            u.period,
            u.source,
            u.syncs,
            u.requests,
            num(u.units),
            u.throttled,
            u.rate_limited,
            u.budget_exhausted,
            u.failed,
            u.incremental_syncs,
            num(u.incremental_units),
            num(u.full_export_units),
            num(u.units_saved),
        )
        for u in status.usage
    )
    columns = (
        "period", "source", "syncs", "requests", "units", "429s", "429 deferred", "budget stops",
        "failed", "incremental", "their units", "full re-export", "units saved",
    )  # fmt: skip
    line = (
        "per source, last 24 h and 7 days; 'units saved' = what re-exporting each stream's "
        "history would have cost instead of its incremental syncs, less what they cost"
    )
    return Section(
        "API use (sync_log)", line if rows else "none recorded in the last 7 days", columns, rows
    )


def _gaps(status: Status) -> Section:
    rows = tuple((g.data_type, g.reason, g.gaps, g.candles, g.symbols) for g in status.known_gaps)
    gaps = sum(g.gaps for g in status.known_gaps)
    candles = sum(g.candles for g in status.known_gaps)
    return Section(
        "Known gaps",
        f"{gaps} ({candles} candles the source does not serve)",
        ("table", "reason", "gaps", "candles", "symbols"),
        rows,
    )


def _anomalies(status: Status) -> Section:
    rows = tuple(
        (a.anomaly_id, a.symbol, a.data_type, when(a.ts), f"{a.change * 100:+.1f} %")
        for a in status.anomalies
    )
    more = status.unreviewed_anomalies - len(rows)
    return Section(
        "Unreviewed anomalies",
        f"{status.unreviewed_anomalies}"
        + (f" (the newest {len(rows)} listed)" if more > 0 else "")
        + ("; review: python -m platform_pkg.cli anomalies list" if rows else ""),
        ("id", "symbol", "table", "candle", "change"),
        rows,
    )


def _sizes(status: Status) -> Section:
    return Section(
        "Sizes",
        f"warehouse {mb(status.warehouse_bytes)}, "
        f"Dagster instance directory {mb(status.instance.instance_bytes)}",
    )


def names(items: Sequence[str]) -> str:
    shown = ", ".join(items[:LISTED])
    return shown + (f" and {len(items) - LISTED} more" if len(items) > LISTED else "")


def when(ts: datetime | None) -> str:
    return "" if ts is None else f"{ts.astimezone(UTC):%Y-%m-%d %H:%M}"


def retry(ts: datetime | None, now: datetime) -> str:
    if ts is None:
        return "next run"
    return f"{when(ts)}" + (" (passed: next run)" if ts <= now else "")


def num(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"


def mb(size: int | None) -> str:
    return "unknown" if size is None else f"{size / 1e6:,.1f} MB"
