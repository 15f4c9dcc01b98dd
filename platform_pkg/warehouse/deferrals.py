"""``deferred_fetches``: work put off because its source asked us to stay away for longer than a
run waits (HTTP 429 / 418 with a long ``Retry-After``), or because a paid budget ran out.

One row per (symbol, data type) until a later fetch of it succeeds; the next run serves these
first. The range is the union of what was deferred, so nothing is forgotten. For account data
``symbol`` is the asset id (``<account>:<symbol>``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import duckdb
import pandas as pd

from platform_pkg.warehouse.upsert import Combine, TableSpec, table_columns

SPEC = TableSpec(
    name="deferred_fetches",
    keys=("symbol", "data_type"),
    columns={
        "symbol": "VARCHAR",
        "data_type": "VARCHAR",
        "source": "VARCHAR",
        "deferred_at": "TIMESTAMPTZ",
        "retry_after": "TIMESTAMPTZ",
        "requested_start": "TIMESTAMPTZ",
        "requested_end": "TIMESTAMPTZ",
        "reason": "VARCHAR",
        "run_id": "VARCHAR",
    },
)
# A deferral on top of an earlier one widens its range.
COMBINE = {"requested_start": Combine.LEAST, "requested_end": Combine.GREATEST}


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

    def row(self, now: datetime) -> pd.DataFrame:
        frame = pd.DataFrame(
            [
                {
                    "symbol": self.symbol,
                    "data_type": self.data_type,
                    "source": self.source,
                    "deferred_at": now,
                    "retry_after": self.retry_after,
                    "requested_start": self.requested_start,
                    "requested_end": self.requested_end,
                    "reason": self.reason,
                    "run_id": self.run_id,
                }
            ]
        )
        for col in ("deferred_at", "retry_after", "requested_start", "requested_end"):
            frame[col] = pd.to_datetime(frame[col], utc=True)
        return frame


def key(symbol: str, data_type: str) -> pd.DataFrame:
    return pd.DataFrame([{"symbol": symbol, "data_type": data_type}])


def pending(con: duckdb.DuckDBPyConnection, data_type: str) -> dict[str, datetime | None]:
    """Deferred symbols of ``data_type`` and when their source said to come back."""
    if not table_columns(con, SPEC.name):
        return {}
    rows = con.execute(
        "SELECT symbol, retry_after FROM deferred_fetches WHERE data_type = ? ORDER BY deferred_at",
        [data_type],
    ).fetchall()
    return dict(rows)
