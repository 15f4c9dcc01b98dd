"""The cross-source check's logic: a few stored daily closes of crypto symbols against a second
source's, for a small fixed number of requests per evaluation."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta

import duckdb
import pandas as pd

from platform_pkg.warehouse.upsert import q


def pick_symbols(symbols: Sequence[str], count: int, day: date) -> list[str]:
    """``count`` of ``symbols``, rotating with the day so that every symbol is compared in turn."""
    ordered = sorted(symbols)
    if len(ordered) <= count:
        return ordered
    first = (day.toordinal() * count) % len(ordered)
    return [ordered[(first + i) % len(ordered)] for i in range(count)]


def stored_closes(
    con: duckdb.DuckDBPyConnection, table: str, symbol: str, days: int, now: datetime
) -> pd.DataFrame:
    """The last ``days`` final daily closes of ``symbol`` (``ts``, ``close``), oldest first."""
    return con.execute(
        f"SELECT ts, close FROM (SELECT ts, close FROM {q(table)}"
        " WHERE symbol = ? AND is_final AND ts < ? ORDER BY ts DESC LIMIT ?) ORDER BY ts",
        [symbol, now - timedelta(days=1), days],
    ).df()


def compare(
    symbol: str, stored: pd.DataFrame, reference: pd.DataFrame, tolerance: float
) -> pd.DataFrame:
    """Stored closes beside the reference's for the same days: ``difference`` is relative to the
    reference, ``within`` says whether it is inside ``tolerance``; a day the reference lacks has
    no verdict (``within`` is NA)."""
    ref = reference[["ts", "close"]].rename(columns={"close": "reference_close"})
    merged = stored.assign(ts=pd.to_datetime(stored["ts"], utc=True)).merge(
        ref.assign(ts=pd.to_datetime(ref["ts"], utc=True)), on="ts", how="left"
    )
    merged.insert(0, "symbol", symbol)
    merged["difference"] = merged["close"] / merged["reference_close"] - 1
    merged["within"] = merged["difference"].abs().le(tolerance).astype("boolean")
    merged.loc[merged["reference_close"].isna(), "within"] = pd.NA
    return merged
