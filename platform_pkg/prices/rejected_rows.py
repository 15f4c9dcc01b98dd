"""``rejected_rows``: fetched rows that were not fit to store as prices, with the reason.

Written in the same transaction as the page they came with, so the count in ``sync_log`` and the
rows here always agree. A row re-fetched in the same sync (the page after a short one starts at
it again) is recorded once.
"""

from __future__ import annotations

from datetime import datetime

import duckdb
import pandas as pd
import pyarrow as pa

DDL = """
CREATE TABLE IF NOT EXISTS rejected_rows (
    symbol VARCHAR NOT NULL,
    data_type VARCHAR NOT NULL,
    source VARCHAR,
    ts TIMESTAMPTZ,
    raw VARCHAR NOT NULL,
    reason VARCHAR NOT NULL,
    fetched_at TIMESTAMPTZ NOT NULL,
    run_id VARCHAR,
    sync_id VARCHAR NOT NULL
)
"""
_VIEW = "__rejected_batch"


def save(
    con: duckdb.DuckDBPyConnection,
    rejected: pd.DataFrame,
    *,
    symbol: str,
    data_type: str,
    source: str | None,
    fetched_at: datetime,
    run_id: str | None,
    sync_id: str,
) -> int:
    """Record ``rejected`` (columns ``ts``, ``raw``, ``reason``) inside the caller's transaction;
    returns how many rows were new to this sync."""
    if rejected.empty:
        return 0
    con.execute(DDL)
    batch = pa.table(
        {
            "ts": pa.array(
                pd.to_datetime(rejected["ts"], utc=True), type=pa.timestamp("us", "UTC")
            ),
            "raw": pa.array(rejected["raw"].astype(str), type=pa.string()),
            "reason": pa.array(rejected["reason"].astype(str), type=pa.string()),
        }
    )
    con.register(_VIEW, batch)
    try:
        before = con.execute("SELECT count(*) FROM rejected_rows").fetchall()[0][0]
        con.execute(
            f"""
            INSERT INTO rejected_rows
            SELECT DISTINCT ?, ?, ?, b.ts, b.raw, b.reason, ?, ?, ? FROM {_VIEW} b
            WHERE NOT EXISTS (
                SELECT 1 FROM rejected_rows r
                WHERE r.sync_id = ? AND r.ts IS NOT DISTINCT FROM b.ts AND r.raw = b.raw
            )
            """,
            [symbol, data_type, source, fetched_at, run_id, sync_id, sync_id],
        )
        after = con.execute("SELECT count(*) FROM rejected_rows").fetchall()[0][0]
    finally:
        con.unregister(_VIEW)
    return after - before
