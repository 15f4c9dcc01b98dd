"""``sync_log``: one row per fetch of a (symbol, data type), kept up to date as pages commit.

For prices the row's ``symbol`` is the symbol; for account data (exchange trades, wallets) it is
the synced asset id, ``<account>:<symbol>`` or ``<wallet>:<chain>``, as in ``ingestion_state``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from enum import StrEnum

import duckdb


class SyncStatus(StrEnum):
    RUNNING = "running"
    SUCCESS = "success"
    PARTIAL = "partial"
    FAILED = "failed"
    RATE_LIMITED = "rate_limited"
    BUDGET_EXHAUSTED = "budget_exhausted"


DDL = """
CREATE TABLE IF NOT EXISTS sync_log (
    sync_id VARCHAR PRIMARY KEY,
    run_id VARCHAR,
    symbol VARCHAR NOT NULL,
    data_type VARCHAR NOT NULL,
    source VARCHAR,
    started_at TIMESTAMPTZ NOT NULL,
    finished_at TIMESTAMPTZ,
    requested_start TIMESTAMPTZ,
    requested_end TIMESTAMPTZ,
    rows_fetched BIGINT NOT NULL DEFAULT 0,
    rows_inserted BIGINT NOT NULL DEFAULT 0,
    rows_updated BIGINT NOT NULL DEFAULT 0,
    rows_rejected BIGINT NOT NULL DEFAULT 0,
    api_requests BIGINT NOT NULL DEFAULT 0,
    api_units DOUBLE NOT NULL DEFAULT 0,
    status VARCHAR NOT NULL,
    error VARCHAR
)
"""
# Columns added after the table first shipped.
_ADDED = (
    "ALTER TABLE sync_log ADD COLUMN IF NOT EXISTS rows_deleted BIGINT DEFAULT 0",
    # Answers that throttled the fetch (429, Binance's 418), whether waited out or deferred.
    "ALTER TABLE sync_log ADD COLUMN IF NOT EXISTS api_throttled BIGINT DEFAULT 0",
)


@dataclass
class SyncEntry:
    sync_id: str
    run_id: str | None
    symbol: str
    data_type: str
    source: str | None
    started_at: datetime
    finished_at: datetime | None = None
    requested_start: datetime | None = None
    requested_end: datetime | None = None
    rows_fetched: int = 0
    rows_inserted: int = 0
    rows_updated: int = 0
    rows_rejected: int = 0
    api_requests: int = 0
    api_units: float = 0.0
    status: SyncStatus = SyncStatus.RUNNING
    error: str | None = field(default=None)
    rows_deleted: int = 0
    api_throttled: int = 0


def ensure(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(DDL)
    for statement in _ADDED:
        con.execute(statement)


def save(con: duckdb.DuckDBPyConnection, entry: SyncEntry) -> None:
    """Insert or replace ``entry``'s row, inside the caller's transaction."""
    status = SyncStatus(entry.status)  # refuses an unknown status
    ensure(con)
    values = asdict(entry) | {"status": str(status)}
    cols = ", ".join(values)
    marks = ", ".join("?" for _ in values)
    updates = ", ".join(f"{c} = excluded.{c}" for c in values if c != "sync_id")
    con.execute(
        f"INSERT INTO sync_log ({cols}) VALUES ({marks}) "
        f"ON CONFLICT (sync_id) DO UPDATE SET {updates}",
        list(values.values()),
    )


def running_runs(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The runs that have fetches still marked ``running``."""
    if not con.execute(
        "SELECT count(*) FROM information_schema.tables "
        "WHERE table_schema = current_schema() AND table_name = 'sync_log'"
    ).fetchall()[0][0]:
        return []
    rows = con.execute(
        "SELECT DISTINCT run_id FROM sync_log WHERE status = 'running' AND run_id IS NOT NULL "
        "ORDER BY run_id"
    ).fetchall()
    return [run_id for (run_id,) in rows]


def close_runs(con: duckdb.DuckDBPyConnection, ended: Mapping[str, str], now: datetime) -> int:
    """Close the ``running`` rows of runs that have ended (run id → its final status), inside the
    caller's transaction; returns how many rows were closed.

    A process killed mid-fetch (OOM, SIGKILL, a lost machine) cannot write its row's end: the
    row stays ``running`` although its committed pages and watermark are exact. Such rows become
    ``partial`` (something was stored) or ``failed``, with the reason.
    """
    if not ended:
        return 0
    ensure(con)
    closed = 0
    for run_id, status in ended.items():
        closed += con.execute(
            "UPDATE sync_log SET finished_at = ?, error = ?, status = CASE "
            "WHEN rows_inserted + rows_updated > 0 THEN 'partial' ELSE 'failed' END "
            "WHERE status = 'running' AND run_id = ?",
            [
                now,
                f"abandoned: run {run_id} ended ({status}) before this fetch finished; "
                "what it committed is kept and the watermark covers exactly that",
                run_id,
            ],
        ).fetchall()[0][0]
    return closed
