"""``deferred_fetches``: symbols whose fetch was put off because their source asked for a long
cooldown (HTTP 429 / 418 with a ``Retry-After`` beyond the run's patience).

One row per (symbol, data type) until a later fetch of it succeeds; the next run serves these
symbols first. The range is the union of what was deferred, so nothing is forgotten.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import duckdb

DDL = """
CREATE TABLE IF NOT EXISTS deferred_fetches (
    symbol VARCHAR NOT NULL,
    data_type VARCHAR NOT NULL,
    source VARCHAR,
    deferred_at TIMESTAMPTZ NOT NULL,
    retry_after TIMESTAMPTZ,
    requested_start TIMESTAMPTZ,
    requested_end TIMESTAMPTZ,
    reason VARCHAR,
    run_id VARCHAR,
    PRIMARY KEY (symbol, data_type)
)
"""


@dataclass(frozen=True)
class Deferral:
    symbol: str
    data_type: str
    source: str | None
    retry_after: datetime | None
    requested_start: datetime | None
    requested_end: datetime | None
    reason: str
    run_id: str | None


def record(con: duckdb.DuckDBPyConnection, deferral: Deferral, now: datetime) -> None:
    con.execute(DDL)
    con.execute(
        """
        INSERT INTO deferred_fetches VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
        ON CONFLICT (symbol, data_type) DO UPDATE SET
            source = excluded.source,
            deferred_at = excluded.deferred_at,
            retry_after = excluded.retry_after,
            requested_start = least(deferred_fetches.requested_start, excluded.requested_start),
            requested_end = greatest(deferred_fetches.requested_end, excluded.requested_end),
            reason = excluded.reason,
            run_id = excluded.run_id
        """,
        [
            deferral.symbol,
            deferral.data_type,
            deferral.source,
            now,
            deferral.retry_after,
            deferral.requested_start,
            deferral.requested_end,
            deferral.reason,
            deferral.run_id,
        ],
    )


def clear(con: duckdb.DuckDBPyConnection, symbol: str, data_type: str) -> None:
    con.execute(DDL)
    con.execute(
        "DELETE FROM deferred_fetches WHERE symbol = ? AND data_type = ?", [symbol, data_type]
    )


def pending(con: duckdb.DuckDBPyConnection, data_type: str) -> dict[str, datetime | None]:
    """Deferred symbols of ``data_type`` and when their source said to come back."""
    con.execute(DDL)
    rows = con.execute(
        "SELECT symbol, retry_after FROM deferred_fetches WHERE data_type = ? ORDER BY deferred_at",
        [data_type],
    ).fetchall()
    return dict(rows)
