"""``price_anomalies``: price moves too large to pass unseen, kept for a person to review.

The spike check records every close-to-close move above its threshold here. The candles stay as
they are and a row here is never deleted: a user marks it reviewed (``python -m platform_pkg.cli
anomalies review ID``), which only fills its review columns, and the check warns while rows are
left unreviewed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime

import duckdb
import pandas as pd

from platform_pkg.warehouse.upsert import TableSpec, table_columns

SPEC = TableSpec(
    name="price_anomalies",
    keys=("anomaly_id",),
    columns={
        "anomaly_id": "VARCHAR",  # short digest of (data_type, symbol, ts): what a user types
        "symbol": "VARCHAR",
        "data_type": "VARCHAR",
        "ts": "TIMESTAMPTZ",
        "prev_ts": "TIMESTAMPTZ",
        "prev_close": "DOUBLE",
        "close": "DOUBLE",
        "change": "DOUBLE",  # close / prev_close - 1
        "threshold": "DOUBLE",
        "detected_at": "TIMESTAMPTZ",
        "run_id": "VARCHAR",
        "reviewed_at": "TIMESTAMPTZ",
        "review_note": "VARCHAR",
    },
)


def anomaly_id(data_type: str, symbol: str, ts: pd.Timestamp) -> str:
    return hashlib.sha256(f"{data_type}|{symbol}|{ts.isoformat()}".encode()).hexdigest()[:10]


def rows(
    spikes: pd.DataFrame, *, data_type: str, threshold: float, now: datetime, run_id: str | None
) -> pd.DataFrame:
    """``price_anomalies`` rows for the moves ``spikes`` found (see :func:`quality.spikes`)."""
    ts = pd.to_datetime(spikes["ts"], utc=True)
    return pd.DataFrame(
        {
            "anomaly_id": [
                anomaly_id(data_type, s, t) for s, t in zip(spikes["symbol"], ts, strict=True)
            ],
            "symbol": spikes["symbol"].astype(str),
            "data_type": data_type,
            "ts": ts,
            "prev_ts": pd.to_datetime(spikes["prev_ts"], utc=True),
            "prev_close": spikes["prev_close"].astype("float64"),
            "close": spikes["close"].astype("float64"),
            "change": spikes["change"].astype("float64"),
            "threshold": threshold,
            "detected_at": pd.Timestamp(now),
            "run_id": run_id,
            "reviewed_at": pd.Series([pd.NaT] * len(spikes), dtype="datetime64[us, UTC]"),
            "review_note": pd.Series([None] * len(spikes), dtype=object),
        }
    )


def unreviewed(con: duckdb.DuckDBPyConnection, data_type: str | None = None) -> pd.DataFrame:
    """The anomalies nobody has reviewed yet (of ``data_type``, or all), oldest first."""
    if not table_columns(con, SPEC.name):
        return pd.DataFrame(columns=list(SPEC.columns))
    where, params = "reviewed_at IS NULL", []
    if data_type is not None:
        where += " AND data_type = ?"
        params.append(data_type)
    return con.execute(
        f"SELECT * FROM price_anomalies WHERE {where} ORDER BY ts, symbol",  # noqa: S608
        params,
    ).df()


def review(
    con: duckdb.DuckDBPyConnection, ids: Sequence[str], note: str | None, now: datetime
) -> list[str]:
    """Mark the anomalies ``ids`` reviewed (their review columns only); returns the ids that
    matched no anomaly."""
    if not table_columns(con, SPEC.name):
        return list(ids)
    known = {
        row[0]
        for row in con.execute(
            "SELECT anomaly_id FROM price_anomalies WHERE list_contains(?, anomaly_id)",
            [list(ids)],
        ).fetchall()
    }
    con.execute(
        "UPDATE price_anomalies SET reviewed_at = ?, review_note = ? "
        "WHERE list_contains(?, anomaly_id) AND reviewed_at IS NULL",
        [now, note, sorted(known)],
    )
    return [i for i in ids if i not in known]
