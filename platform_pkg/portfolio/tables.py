"""The portfolio tables as frames: their columns and keys, and the conversions to and from them.

The file is the source of truth, but the warehouse keeps what it once said: a transaction or a
reject that left the file stays in its table with ``in_file = false`` (the upsert never deletes).
``holdings`` is the ledger's (see :mod:`platform_pkg.ledger`); its columns are declared here
with the portfolio's.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import datetime

import pandas as pd

from platform_pkg.portfolio.transactions import Reject, Transaction

TRANSACTION_COLUMNS: dict[str, str] = {
    "txn_id": "VARCHAR",
    "line": "INTEGER",
    "executed_at": "TIMESTAMPTZ",
    "account": "VARCHAR",
    "symbol": "VARCHAR",
    "asset_class": "VARCHAR",
    "side": "VARCHAR",
    "quantity": "DOUBLE",
    "price": "DOUBLE",
    "currency": "VARCHAR",
    "fee": "DOUBLE",
    "note": "VARCHAR",
    "in_file": "BOOLEAN",
    "loaded_at": "TIMESTAMPTZ",
}
TRANSACTION_KEY = ["txn_id"]

REJECT_COLUMNS: dict[str, str] = {
    "reject_id": "VARCHAR",
    "line": "INTEGER",
    "field": "VARCHAR",
    "reason": "VARCHAR",
    "raw": "VARCHAR",
    "in_file": "BOOLEAN",
    "loaded_at": "TIMESTAMPTZ",
}
REJECT_KEY = ["reject_id"]

HOLDING_COLUMNS: dict[str, str] = {
    "account": "VARCHAR",
    "symbol": "VARCHAR",
    "asset_class": "VARCHAR",
    "quantity": "DOUBLE",
    "is_open": "BOOLEAN",
    "first_purchase_at": "TIMESTAMPTZ",
    "last_transaction_at": "TIMESTAMPTZ",
    "transactions": "INTEGER",
    "computed_at": "TIMESTAMPTZ",
}
HOLDING_KEY = ["account", "symbol"]


def transactions_frame(
    transactions: Iterable[Transaction], gone: pd.DataFrame | None, now: datetime
) -> pd.DataFrame:
    """The file's transactions (``in_file``) plus stored ones no longer in it (``gone``)."""
    rows = [
        {
            "txn_id": t.txn_id,
            "line": t.line,
            "executed_at": t.executed_at,
            "account": t.account,
            "symbol": t.symbol,
            "asset_class": t.asset_class,
            "side": t.side,
            "quantity": float(t.quantity),
            "price": float(t.price) if t.price is not None else None,
            "currency": t.currency,
            "fee": float(t.fee),
            "note": t.note,
            "in_file": True,
            "loaded_at": now,
        }
        for t in transactions
    ]
    return _with_gone(pd.DataFrame.from_records(rows, columns=list(TRANSACTION_COLUMNS)), gone, now)


def rejects_frame(
    rejects: Iterable[Reject], gone: pd.DataFrame | None, now: datetime
) -> pd.DataFrame:
    """The file's rejected lines, keyed by their content so a fixed line's reject is retired."""
    seen: dict[str, int] = {}
    rows = []
    for r in rejects:
        base = _digest(f"{r.raw}\x1f{r.field}\x1f{r.reason}")
        seen[base] = seen.get(base, 0) + 1
        rows.append(
            {
                "reject_id": base if seen[base] == 1 else f"{base}-{seen[base]}",
                "line": r.line,
                "field": r.field,
                "reason": r.reason,
                "raw": r.raw,
                "in_file": True,
                "loaded_at": now,
            }
        )
    return _with_gone(pd.DataFrame.from_records(rows, columns=list(REJECT_COLUMNS)), gone, now)


def _with_gone(frame: pd.DataFrame, gone: pd.DataFrame | None, now: datetime) -> pd.DataFrame:
    """Append stored rows whose key is no longer in ``frame``, marked ``in_file = false``."""
    key = frame.columns[0]
    if gone is not None and not gone.empty:
        missing = gone[~gone[key].isin(frame[key])].copy()
        if not missing.empty:
            missing["in_file"] = False
            missing["loaded_at"] = now
            frame = pd.concat([frame, missing.reindex(columns=frame.columns)], ignore_index=True)
    columns = TRANSACTION_COLUMNS if key == "txn_id" else REJECT_COLUMNS
    return _typed(frame, columns)


def _typed(frame: pd.DataFrame, columns: dict[str, str]) -> pd.DataFrame:
    """Give every column a definite dtype, so an empty or all-null column still has a type."""
    dtypes = {"VARCHAR": "object", "INTEGER": "Int32", "DOUBLE": "float64", "BOOLEAN": "bool"}
    out = frame.copy()
    for name, sql_type in columns.items():
        if sql_type == "TIMESTAMPTZ":
            out[name] = pd.to_datetime(out[name], utc=True)
        else:
            out[name] = out[name].astype(dtypes[sql_type])
    return out


def _digest(text: str) -> str:
    return "R" + hashlib.sha256(text.encode()).hexdigest()[:16]
