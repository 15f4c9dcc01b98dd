"""The platform status from a warehouse connection, a clock and what the Dagster instance said.

Only reads, and only what the platform already records: ``tracked_assets``, ``holdings``,
``ingestion_state``, ``sync_log``, ``deferred_fetches``, ``known_gaps``, ``price_anomalies``.
A table that does not exist yet counts as empty. Nothing here imports Dagster, so the CLI stays
quick and the tests need no instance.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import duckdb

from platform_pkg.market.calendars import MarketCalendar, calendar_for
from platform_pkg.market.candles import PRICE_TABLES, interval_delta
from platform_pkg.prices import anomalies as anomaly_store
from platform_pkg.prices import gaps as gap_store
from platform_pkg.status.model import (
    Account,
    Anomaly,
    Deferred,
    Freshness,
    InstanceFacts,
    KnownGaps,
    Stale,
    Status,
    TrackedAsset,
)
from platform_pkg.status.usage import usage
from platform_pkg.warehouse import deferrals
from platform_pkg.warehouse.sync_log import SyncStatus
from platform_pkg.warehouse.upsert import q, table_columns

# sync_log data types of account syncs (trades.paging.NEWEST, wallets.ingest.NEWEST); their
# symbol is "<account>:<market>", "<wallet>" or "<wallet>+<chains>".
ACCOUNT_DATA_TYPES = ("trades", "onchain")
# Candles a symbol may lag behind its calendar: the freshness check's default grace.
GRACE_CANDLES = 2
NO_CANDLE_YET = "(no candle yet)"
ANOMALIES_LISTED = 10

CalendarOf = Callable[[str, str | None, str | None], MarketCalendar]


def build(
    con: duckdb.DuckDBPyConnection,
    now: datetime,
    *,
    market_now: datetime | None = None,
    instance: InstanceFacts | None = None,
    calendar_of: CalendarOf = calendar_for,
    notes: tuple[str, ...] = (),
) -> Status:
    """The status at ``now`` (sync_log and deferrals keep wall-clock times); candles are judged
    at ``market_now`` (default ``now``)."""
    market_now = market_now or now
    tracked = _tracked(con)
    active = {a.asset_id: a.asset_class for a in tracked if a.is_active}
    freshness, stale = _freshness(con, active, market_now, calendar_of)
    unreviewed, listed = _anomalies(con)
    return Status(
        now=now,
        market_now=market_now,
        tracked=tracked,
        accounts=_accounts(con),
        freshness=freshness,
        stale=stale,
        deferred=_deferred(con),
        usage=usage(con, now),
        known_gaps=_known_gaps(con),
        unreviewed_anomalies=unreviewed,
        anomalies=listed,
        warehouse_bytes=warehouse_bytes(con),
        instance=instance or InstanceFacts(note="the Dagster instance was not read"),
        notes=notes,
    )


def _rows(con: duckdb.DuckDBPyConnection, table: str, sql: str, params=()) -> list[tuple]:
    """``sql``'s rows, none when ``table`` does not exist yet."""
    return con.execute(sql, list(params)).fetchall() if table_columns(con, table) else []


def _tracked(con: duckdb.DuckDBPyConnection) -> tuple[TrackedAsset, ...]:
    rows = _rows(
        con,
        "tracked_assets",
        "SELECT asset_id, asset_class, is_active, coalesce(tracking_users, 0), last_price_update"
        " FROM tracked_assets ORDER BY asset_id",
    )
    return tuple(TrackedAsset(a, c, bool(on), int(n), ts) for a, c, on, n, ts in rows)


def _accounts(con: duckdb.DuckDBPyConnection) -> tuple[Account, ...]:
    held = {
        account: rest
        for account, *rest in _rows(
            con,
            "holdings",
            "SELECT account, count(*) FILTER (WHERE is_open), count(*), max(last_transaction_at)"
            " FROM holdings GROUP BY account",
        )
    }
    synced = dict(
        _rows(
            con,
            "sync_log",
            "SELECT regexp_extract(symbol, '^[^:+]+') AS account, max(finished_at) FROM sync_log"
            " WHERE list_contains(?, data_type) AND list_contains(?, status) GROUP BY account",
            [list(ACCOUNT_DATA_TYPES), [SyncStatus.SUCCESS.value, SyncStatus.PARTIAL.value]],
        )
    )
    accounts = []
    for name in sorted(set(held) | set(synced)):
        open_positions, positions, last_tx = held.get(name, (0, 0, None))
        accounts.append(
            Account(name, open_positions > 0, open_positions, positions, last_tx, synced.get(name))
        )
    return tuple(accounts)


def _freshness(
    con: duckdb.DuckDBPyConnection,
    active: dict[str, str | None],
    now: datetime,
    calendar_of: CalendarOf,
) -> tuple[tuple[Freshness, ...], tuple[Stale, ...]]:
    """Per price table and source, the active symbols' newest candles (their newest watermarks,
    as the freshness check reads them) against their calendars' newest closed candle."""
    groups, stale = [], []
    for table, interval in PRICE_TABLES:
        newest = _newest_candles(con, table, sorted(active)) if active else {}
        judged_at = now - interval_delta(interval) * GRACE_CANDLES
        by_source: dict[str, list[tuple[str, datetime | None]]] = defaultdict(list)
        for symbol, asset_class in sorted(active.items()):
            ts, source = newest.get(symbol, (None, None))
            by_source[source or NO_CANDLE_YET].append((symbol, ts))
            if ts is not None and ts >= judged_at:
                continue  # newer than any candle closed by then: no calendar needed to say so
            calendar = calendar_of(symbol, asset_class, source)
            due = calendar.newest_due(interval, judged_at)
            if due is not None and (ts is None or ts < due):
                stale.append(Stale(symbol, table, source or NO_CANDLE_YET, calendar.name, ts, due))
        for source, members in sorted(by_source.items()):
            stored = [(ts, s) for s, ts in members if ts is not None]
            behind = min(stored) if stored else (None, None)
            groups.append(
                Freshness(
                    source=source,
                    data_type=table,
                    symbols=len(members),
                    stale=sum(1 for s in stale if s.data_type == table and s.source == source),
                    newest=max(stored)[0] if stored else None,
                    most_behind=behind[1],
                    most_behind_newest=behind[0],
                )
            )
    return tuple(groups), tuple(stale)


def _newest_candles(
    con: duckdb.DuckDBPyConnection, table: str, symbols: list[str]
) -> dict[str, tuple[datetime | None, str | None]]:
    """Symbol → (its newest watermark, the source of the candle there)."""
    if not table_columns(con, "ingestion_state"):
        return {}
    if table_columns(con, table):
        sql = (
            f"SELECT i.asset_id, i.last_timestamp, p.source FROM ingestion_state i"
            f" LEFT JOIN {q(table)} p ON p.symbol = i.asset_id AND p.ts = i.last_timestamp"
            " WHERE i.data_type = ? AND list_contains(?, i.asset_id)"
        )
    else:
        sql = (
            "SELECT asset_id, last_timestamp, NULL FROM ingestion_state"
            " WHERE data_type = ? AND list_contains(?, asset_id)"
        )
    return {s: (ts, source) for s, ts, source in con.execute(sql, [table, symbols]).fetchall()}


def _deferred(con: duckdb.DuckDBPyConnection) -> tuple[Deferred, ...]:
    """Every deferred fetch, soonest retry first, with the status of the sync that put it off."""
    table = deferrals.SPEC.name
    rows = _rows(
        con,
        table,
        f"SELECT symbol, data_type, source, run_id, deferred_at, retry_after, reason"
        f" FROM {q(table)} ORDER BY retry_after NULLS FIRST, symbol, data_type",
    )
    if not rows:
        return ()
    # The sync that deferred a fetch started in its run, before it; the bound lets DuckDB skip
    # the older part of the log.
    earliest = min((r[4] for r in rows if r[4] is not None), default=None)
    held_up = [SyncStatus.RATE_LIMITED.value, SyncStatus.BUDGET_EXHAUSTED.value]
    statuses = {
        (symbol, data_type, run_id): status
        for symbol, data_type, run_id, status in _rows(
            con,
            "sync_log",
            "SELECT symbol, data_type, run_id, arg_max(status, started_at) FROM sync_log"
            " WHERE list_contains(?, status) AND list_contains(?, run_id)"
            " AND (?::TIMESTAMPTZ IS NULL OR started_at >= ?::TIMESTAMPTZ - INTERVAL 1 DAY)"
            " GROUP BY ALL",
            [held_up, sorted({r[3] for r in rows if r[3]}), earliest, earliest],
        )
    }
    return tuple(
        Deferred(symbol, data_type, source, statuses.get((symbol, data_type, run)), at, retry, why)
        for symbol, data_type, source, run, at, retry, why in rows
    )


def _known_gaps(con: duckdb.DuckDBPyConnection) -> tuple[KnownGaps, ...]:
    rows = _rows(
        con,
        gap_store.SPEC.name,
        f"SELECT data_type, reason, count(*), coalesce(sum(candles), 0), count(DISTINCT symbol)"
        f" FROM {q(gap_store.SPEC.name)} GROUP BY ALL ORDER BY ALL",
    )
    return tuple(KnownGaps(*row) for row in rows)


def _anomalies(con: duckdb.DuckDBPyConnection) -> tuple[int, tuple[Anomaly, ...]]:
    table = anomaly_store.SPEC.name
    if not table_columns(con, table):
        return 0, ()
    (count,) = con.execute(f"SELECT count(*) FROM {q(table)} WHERE reviewed_at IS NULL").fetchone()
    rows = con.execute(
        f"SELECT anomaly_id, symbol, data_type, ts, change FROM {q(table)}"
        " WHERE reviewed_at IS NULL ORDER BY ts DESC, symbol LIMIT ?",
        [ANOMALIES_LISTED],
    ).fetchall()
    return count, tuple(Anomaly(*row) for row in rows)


def warehouse_bytes(con: duckdb.DuckDBPyConnection) -> int | None:
    """The size of ``con``'s database file and its write-ahead log; None in memory."""
    (path,) = con.execute(
        "SELECT path FROM duckdb_databases() WHERE database_name = current_database()"
    ).fetchone()
    if not path:
        return None
    sizes = [_size(Path(path)), _size(Path(f"{path}.wal"))]
    return sum(sizes)


def _size(path: Path) -> int:
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return 0


def directory_bytes(root: Path) -> int:
    """The bytes of every file under ``root`` (symbolic links not followed)."""
    total, pending = 0, [root]
    while pending:
        try:
            entries = list(os.scandir(pending.pop()))
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            continue
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    pending.append(Path(entry.path))
                elif entry.is_file(follow_symlinks=False):
                    total += entry.stat(follow_symlinks=False).st_size
            except FileNotFoundError:  # removed meanwhile (a pruned run's files)
                continue
    return total
