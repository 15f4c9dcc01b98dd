"""``tracked_assets``: the symbols the platform fetches prices for, and why.

One row per symbol ever held. ``tracking_users`` counts the accounts holding it now (a reference
count); ``is_active`` is false once no account holds it: its history is kept, refreshes stop.
``first_tracked_at`` is when tracking began and never moves; ``last_tracked_at`` is the last
moment it was active; ``last_price_update`` is the last time its price watermarks moved.

Rows are derived from the portfolio as a whole and written idempotently, so a sensor tick that
fails after writing them and is evaluated again writes the same rows.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime

import duckdb
import pandas as pd

from platform_pkg.portfolio.positions import SymbolHolding

TABLE = "tracked_assets"
COLUMNS: dict[str, str] = {
    "asset_id": "VARCHAR",
    "asset_class": "VARCHAR",
    "is_active": "BOOLEAN",
    "tracking_users": "INTEGER",
    "first_acquired": "DATE",
    "history_start": "DATE",
    "first_tracked_at": "TIMESTAMPTZ",
    "last_tracked_at": "TIMESTAMPTZ",
    "last_price_update": "TIMESTAMPTZ",
    "updated_at": "TIMESTAMPTZ",
}
DDL = (
    f"CREATE TABLE IF NOT EXISTS {TABLE} ("
    + ", ".join(f"{name} {typ}" for name, typ in COLUMNS.items())
    + ", PRIMARY KEY (asset_id))"
)
_PRICE_TYPES = ("prices_1h", "prices_1d")
_VIEW = "__tracked_batch"


def tracked_frame(
    holdings: dict[str, SymbolHolding],
    inactive: Iterable[str],
    history_start: dict[str, date],
    now: datetime,
) -> pd.DataFrame:
    """The rows for ``holdings`` plus symbols that left the file (``inactive``) at ``now``."""
    records = [
        {
            "asset_id": h.symbol,
            "asset_class": h.asset_class,
            "is_active": h.active,
            "tracking_users": len(h.accounts),
            "first_acquired": h.first_acquired,
            "history_start": history_start.get(h.symbol),
            "now": now,
        }
        for h in holdings.values()
    ]
    records += [
        {
            "asset_id": s,
            "asset_class": None,
            "is_active": False,
            "tracking_users": 0,
            "first_acquired": None,
            "history_start": None,
            "now": now,
        }
        for s in inactive
    ]
    frame = pd.DataFrame.from_records(
        records,
        columns=[
            "asset_id",
            "asset_class",
            "is_active",
            "tracking_users",
            "first_acquired",
            "history_start",
            "now",
        ],
    )
    frame["tracking_users"] = frame["tracking_users"].astype("int32")
    frame["now"] = pd.to_datetime(frame["now"], utc=True)
    return frame


def write(con: duckdb.DuckDBPyConnection, frame: pd.DataFrame) -> None:
    """Upsert ``frame`` (from :func:`tracked_frame`) in one statement, inside the caller's
    transaction; first_tracked_at is kept, last_tracked_at moves only while active."""
    con.execute(DDL)
    if frame.empty:
        return
    con.register(_VIEW, frame)
    try:
        con.execute(
            f"""
            INSERT INTO {TABLE}
            SELECT b.asset_id, b.asset_class, b.is_active, b.tracking_users, b.first_acquired,
                   b.history_start, b.now, b.now, NULL, b.now
            FROM {_VIEW} b
            ON CONFLICT (asset_id) DO UPDATE SET
                asset_class = COALESCE(excluded.asset_class, {TABLE}.asset_class),
                first_acquired = COALESCE(excluded.first_acquired, {TABLE}.first_acquired),
                history_start = COALESCE(excluded.history_start, {TABLE}.history_start),
                last_tracked_at = CASE WHEN excluded.is_active OR {TABLE}.is_active
                                       THEN excluded.last_tracked_at ELSE {TABLE}.last_tracked_at END,
                is_active = excluded.is_active,
                tracking_users = excluded.tracking_users,
                updated_at = excluded.updated_at
            """  # noqa: S608 - identifiers are module constants; values travel as Arrow data
        )
    finally:
        con.unregister(_VIEW)
    refresh_price_updates(con)


def refresh_price_updates(con: duckdb.DuckDBPyConnection) -> int:
    """Set last_price_update from the price watermarks; returns how many rows changed."""
    con.execute(DDL)
    if not _table_exists(con, "ingestion_state"):
        return 0
    changed = con.execute(
        f"""
        UPDATE {TABLE} t SET last_price_update = s.updated
        FROM (SELECT asset_id, max(updated_at) AS updated FROM ingestion_state
              WHERE data_type IN (?, ?) GROUP BY asset_id) s
        WHERE s.asset_id = t.asset_id AND t.last_price_update IS DISTINCT FROM s.updated
        """,  # noqa: S608 - identifiers are module constants
        list(_PRICE_TYPES),
    ).fetchall()
    return int(changed[0][0]) if changed else 0


def active_symbols(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """Active symbol → asset class; empty when nothing is tracked yet."""
    if not _table_exists(con, TABLE):
        return {}
    rows = con.execute(
        f"SELECT asset_id, asset_class FROM {TABLE} WHERE is_active ORDER BY asset_id"  # noqa: S608
    ).fetchall()
    return dict(rows)


def _table_exists(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    return bool(
        con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema() "
            "AND table_name = ?",
            [name],
        ).fetchall()[0][0]
    )
