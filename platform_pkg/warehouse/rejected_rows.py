"""``rejected_rows``: fetched rows that were not fit to store, with the reason.

Any source writes here: candles (``symbol`` is the symbol), exchange trades and wallet history
(``symbol`` is the asset id, ``<account>:<symbol>``). Written in the same transaction as the page
they came with, so the count in ``sync_log`` and the rows here always agree. A row re-fetched in
the same sync (a page that starts again at a boundary) is recorded once: ``reject_id`` is a
digest of the sync, the row's time and its raw content — or, for sources whose every sync re-reads
its newest page (wallets), of the asset and the row alone, so a malformed item is recorded once
whichever sync met it first.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

import pandas as pd

from platform_pkg.warehouse.upsert import TableSpec

SPEC = TableSpec(
    name="rejected_rows",
    keys=("reject_id",),
    columns={
        "symbol": "VARCHAR",
        "data_type": "VARCHAR",
        "source": "VARCHAR",
        "ts": "TIMESTAMPTZ",
        "raw": "VARCHAR",
        "reason": "VARCHAR",
        "fetched_at": "TIMESTAMPTZ",
        "run_id": "VARCHAR",
        "sync_id": "VARCHAR",
        "reject_id": "VARCHAR",
    },
)


def rows(
    rejected: pd.DataFrame,
    *,
    symbol: str,
    data_type: str,
    source: str | None,
    fetched_at: datetime,
    run_id: str | None,
    sync_id: str,
    once: bool = False,
) -> pd.DataFrame:
    """The ``rejected_rows`` rows for ``rejected`` (columns ``ts``, ``raw``, ``reason``);
    ``once``: one row per asset and raw row, whichever sync met it."""
    ts = pd.to_datetime(rejected["ts"].reset_index(drop=True), utc=True)
    raw = rejected["raw"].astype(str).reset_index(drop=True)
    scope = f"{symbol}|{data_type}" if once else sync_id
    ids = [
        hashlib.sha256(f"{scope}|{'' if pd.isna(t) else t.isoformat()}|{r}".encode()).hexdigest()[
            :32
        ]
        for t, r in zip(ts, raw, strict=True)
    ]
    frame = pd.DataFrame(
        {
            "symbol": symbol,
            "data_type": data_type,
            "source": source,
            "ts": ts,
            "raw": raw,
            "reason": rejected["reason"].astype(str).reset_index(drop=True),
            "fetched_at": pd.Timestamp(fetched_at),
            "run_id": run_id,
            "sync_id": sync_id,
            "reject_id": pd.Series(ids, dtype=object),
        }
    )
    return frame
