"""``corporate_actions``: dividends and splits a source reported alongside its prices.

Yahoo's OHLC is adjusted for past splits but not for dividends; this table holds what a user needs
to adjust prices either way. One row per (symbol, ex-date, action), whichever interval saw it.
"""

from __future__ import annotations

from datetime import datetime

import duckdb
import pandas as pd

DDL = """
CREATE TABLE IF NOT EXISTS corporate_actions (
    symbol VARCHAR NOT NULL,
    ex_date DATE NOT NULL,
    action VARCHAR NOT NULL,
    value DOUBLE NOT NULL,
    source VARCHAR,
    fetched_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (symbol, ex_date, action)
)
"""
ACTIONS = {"dividend": "dividend", "split": "split"}  # page column → action


def from_page(page: pd.DataFrame) -> pd.DataFrame:
    """The non-zero ``dividend`` / ``split`` values of a page as (ex_date, action, value, source)."""
    parts = []
    for column, action in ACTIONS.items():
        if column not in page.columns:
            continue
        values = pd.to_numeric(page[column], errors="coerce")
        hit = page[values.fillna(0) != 0]
        if not hit.empty:
            parts.append(
                pd.DataFrame(
                    {
                        "ex_date": hit["ts"].dt.tz_convert("UTC").dt.date,
                        "action": action,
                        "value": values[hit.index].astype(float),
                        "source": hit["source"],
                    }
                )
            )
    if not parts:
        return pd.DataFrame(columns=["ex_date", "action", "value", "source"])
    return pd.concat(parts, ignore_index=True).drop_duplicates(["ex_date", "action"], keep="last")


def save(
    con: duckdb.DuckDBPyConnection, symbol: str, actions: pd.DataFrame, fetched_at: datetime
) -> int:
    if actions.empty:
        return 0
    con.execute(DDL)
    for row in actions.itertuples(index=False):
        con.execute(
            "INSERT INTO corporate_actions VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (symbol, ex_date, action) DO UPDATE SET value = excluded.value, "
            "source = excluded.source, fetched_at = excluded.fetched_at",
            [symbol, row.ex_date, row.action, row.value, row.source, fetched_at],
        )
    return len(actions)
