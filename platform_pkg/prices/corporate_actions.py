"""``corporate_actions``: dividends and splits a source reported alongside its prices.

Yahoo's OHLC is adjusted for past splits but not for dividends; this table holds what a user needs
to adjust prices either way. One row per (symbol, ex-date, action), whichever interval saw it.
"""

from __future__ import annotations

from datetime import datetime

import pandas as pd

from platform_pkg.warehouse.upsert import TableSpec

SPEC = TableSpec(
    name="corporate_actions",
    keys=("symbol", "ex_date", "action"),
    columns={
        "symbol": "VARCHAR",
        "ex_date": "DATE",
        "action": "VARCHAR",
        "value": "DOUBLE",
        "source": "VARCHAR",
        "fetched_at": "TIMESTAMPTZ",
    },
    audit_columns=("fetched_at",),
)
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


def rows(symbol: str, actions: pd.DataFrame, fetched_at: datetime) -> pd.DataFrame:
    """``actions`` (from :func:`from_page`) as rows of the ``corporate_actions`` table."""
    frame = actions.copy()
    frame.insert(0, "symbol", symbol)
    frame["fetched_at"] = pd.Timestamp(fetched_at)
    return frame[list(SPEC.columns)]
