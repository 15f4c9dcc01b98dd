"""``sync_log``: one row per fetch of a (symbol, data type), kept up to date as pages commit."""

from __future__ import annotations

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
