"""``sync_log``: one row per fetch of a (symbol, data type), kept up to date as pages commit."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime

import duckdb

STATUSES = ("running", "success", "partial", "failed", "rate_limited")

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
    status: str = "running"
    error: str | None = field(default=None)


def save(con: duckdb.DuckDBPyConnection, entry: SyncEntry) -> None:
    """Insert or replace ``entry``'s row, inside the caller's transaction."""
    if entry.status not in STATUSES:
        raise ValueError(f"unknown sync status {entry.status!r}")
    con.execute(DDL)
    values = asdict(entry)
    cols = ", ".join(values)
    marks = ", ".join("?" for _ in values)
    updates = ", ".join(f"{c} = excluded.{c}" for c in values if c != "sync_id")
    con.execute(
        f"INSERT INTO sync_log ({cols}) VALUES ({marks}) "
        f"ON CONFLICT (sync_id) DO UPDATE SET {updates}",
        list(values.values()),
    )


def close_abandoned(
    con: duckdb.DuckDBPyConnection,
    ended_status: Callable[[str], str | None],
    now: datetime,
) -> dict[str, str]:
    """Close the ``running`` rows of runs that have ended, inside the caller's transaction.

    A process killed mid-fetch (OOM, SIGKILL, a lost machine) cannot write its row's end: the
    row stays ``running`` although its committed pages and watermark are exact. ``ended_status``
    gives a run's final status, or None while it may still run (or is unknown: left alone). Such
    rows become ``partial`` (something was stored) or ``failed``, with the reason. Returns
    {run_id: status} of the runs whose rows were closed.
    """
    con.execute(DDL)
    running = con.execute(
        "SELECT DISTINCT run_id FROM sync_log WHERE status = 'running' AND run_id IS NOT NULL"
    ).fetchall()
    ended = {run_id: status for (run_id,) in running if (status := ended_status(run_id))}
    if ended:
        con.executemany(
            "UPDATE sync_log SET finished_at = ?, error = ?, status = CASE "
            "WHEN rows_inserted + rows_updated > 0 THEN 'partial' ELSE 'failed' END "
            "WHERE status = 'running' AND run_id = ?",
            [
                [
                    now,
                    f"abandoned: run {run_id} ended ({status}) before this fetch finished; "
                    "what it committed is kept and the watermark covers exactly that",
                    run_id,
                ]
                for run_id, status in ended.items()
            ],
        )
    return ended
