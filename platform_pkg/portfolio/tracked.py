"""``tracked_assets``: the symbols the platform fetches prices for, and why.

One row per symbol ever held in any account. ``tracking_users`` counts the accounts holding it
now (a reference count); ``is_active`` is false once no account holds it: its history is kept,
refreshes stop. ``first_tracked_at`` is when tracking began and never moves; ``last_tracked_at``
is the last moment it was active; ``last_price_update`` is the last time its price watermarks
moved — written by each price run in the transaction that moves them.

Rows are derived from the holdings as a whole and the stored rows, so materialising the asset
twice writes the same rows.
"""

from __future__ import annotations

from datetime import date, datetime

import duckdb
import pandas as pd

from platform_pkg.catalog import lookup
from platform_pkg.warehouse.upsert import TableSpec, table_columns

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
SPEC = TableSpec(name=TABLE, keys=("asset_id",), columns=COLUMNS)
# What tracking reads of the holdings.
HOLDINGS_READ = ("account", "symbol", "asset_class", "is_open", "first_purchase_at")
# Price runs own last_price_update: this asset never writes it.
_WRITTEN = [c for c in COLUMNS if c != "last_price_update"]


def tracked_rows(
    summary: dict[str, dict],
    stored: pd.DataFrame | None,
    history_start: dict[str, date],
    now: datetime,
) -> pd.DataFrame:
    """The rows for every symbol in ``summary`` (from the holdings: ``first``, ``class``,
    ``accounts``) and every stored one that left it (inactive, details kept)."""
    previous = {} if stored is None else {r["asset_id"]: r for r in stored.to_dict("records")}
    records = []
    for symbol in sorted(set(summary) | set(previous)):
        item, before = summary.get(symbol), previous.get(symbol, {})
        accounts = item["accounts"] if item else []
        active = bool(accounts)
        was_active = bool(before.get("is_active"))
        records.append(
            {
                "asset_id": symbol,
                "asset_class": (item or {}).get("class") or before.get("asset_class"),
                "is_active": active,
                "tracking_users": len(accounts),
                "first_acquired": date.fromisoformat(item["first"])
                if item
                else _date(before.get("first_acquired")),
                "history_start": history_start.get(symbol) or _date(before.get("history_start")),
                "first_tracked_at": _stamp(before.get("first_tracked_at")) or now,
                "last_tracked_at": now
                if active or was_active
                else _stamp(before.get("last_tracked_at")),
                "updated_at": now,
            }
        )
    frame = pd.DataFrame.from_records(records, columns=_WRITTEN)
    frame["tracking_users"] = frame["tracking_users"].astype("int32")
    frame["is_active"] = frame["is_active"].astype(bool)
    for col in ("first_tracked_at", "last_tracked_at", "updated_at"):
        frame[col] = pd.to_datetime(frame[col], utc=True)
    return frame


def price_update(symbol: str, at: datetime) -> pd.DataFrame:
    """The row that sets ``symbol``'s last_price_update (written only if it is tracked)."""
    return pd.DataFrame({"asset_id": [symbol], "last_price_update": [pd.Timestamp(at)]})


def active_symbols(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """Active symbol → asset class, leaving out what the asset catalogue says is delisted (its
    history is kept, not refreshed); empty when nothing is tracked yet."""
    if not table_columns(con, TABLE):
        return {}
    rows = con.execute(
        f"SELECT asset_id, asset_class FROM {TABLE} WHERE is_active ORDER BY asset_id"  # noqa: S608
    ).fetchall()
    gone = lookup.delisted(con, [symbol for symbol, _ in rows])
    return {symbol: kind for symbol, kind in rows if symbol not in gone}


def _stamp(value) -> datetime | None:
    return None if value is None or pd.isna(value) else pd.Timestamp(value).to_pydatetime()


def _date(value) -> date | None:
    if value is None or pd.isna(value):
        return None
    return value if isinstance(value, date) else pd.Timestamp(value).date()
