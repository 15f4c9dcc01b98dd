"""Wallet history items as rows of ``onchain_transactions``: validated, never dropped silently.

An item the platform cannot store (no id or chain, no usable ``time_at``, a transfer whose amount
is not a number or is negative) goes to ``rejected_rows`` with the reason. The item is kept whole
in ``raw``, with the ``token_dict`` entries it refers to, so the ledger can name its tokens.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from platform_pkg.wallets.paging import item_time
from platform_pkg.wallets.source import Item

ONCHAIN_COLUMNS: dict[str, str] = {
    "wallet": "VARCHAR",
    "address": "VARCHAR",
    "chain": "VARCHAR",
    "tx_id": "VARCHAR",
    "ts": "TIMESTAMPTZ",
    "cate_id": "VARCHAR",
    "project_id": "VARCHAR",
    "status": "VARCHAR",
    "is_scam": "BOOLEAN",
    "gas_fee": "DOUBLE",
    "usd_gas_fee": "DOUBLE",
    "raw": "JSON",
    "fetched_at": "TIMESTAMPTZ",
    "is_deleted": "BOOLEAN",
    "deleted_at": "TIMESTAMPTZ",
}
ONCHAIN_KEY = ["wallet", "chain", "tx_id"]


class _Rejected(ValueError):
    pass


def check_items(
    items: Iterable[Item],
    tokens: dict[str, dict[str, Any]],
    *,
    wallet: str,
    address: str,
    fetched_at: datetime,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(rows, rejects with ``ts``, ``raw``, ``reason``) of a page's items."""
    rows, rejected = [], []
    for item in items:
        raw = _raw(item, tokens)
        try:
            rows.append(_row(item, raw, wallet, address, fetched_at))
        except _Rejected as why:
            moment = item_time(item)
            ts = datetime.fromtimestamp(moment, UTC) if moment is not None else None
            rejected.append({"ts": ts, "raw": raw, "reason": str(why)})
    frame = pd.DataFrame.from_records(rows, columns=list(ONCHAIN_COLUMNS))
    for col in ("ts", "fetched_at", "deleted_at"):
        frame[col] = pd.to_datetime(frame[col], utc=True)
    for col in ("is_scam", "is_deleted"):
        frame[col] = frame[col].astype(bool)
    for col in ("gas_fee", "usd_gas_fee"):
        frame[col] = frame[col].astype("float64")
    return frame, pd.DataFrame(rejected, columns=["ts", "raw", "reason"])


def _row(item: Item, raw: str, wallet: str, address: str, fetched_at: datetime) -> dict:
    tx_id, chain = item.get("id"), item.get("chain")
    if not tx_id or not isinstance(tx_id, str):
        raise _Rejected("no transaction id")
    if not chain or not isinstance(chain, str):
        raise _Rejected("no chain")
    moment = item_time(item)
    if moment is None:
        raise _Rejected(f"no usable time_at ({item.get('time_at')!r})")
    for direction in ("sends", "receives"):
        transfers = item.get(direction) or []
        if not isinstance(transfers, list):
            raise _Rejected(f"{direction} is not a list")
        for transfer in transfers:
            amount = transfer.get("amount") if isinstance(transfer, dict) else None
            if isinstance(amount, bool) or not isinstance(amount, int | float):
                raise _Rejected(f"a {direction[:-1]} amount {amount!r} is not a number")
            if not math.isfinite(amount) or amount < 0:
                raise _Rejected(f"a {direction[:-1]} amount {amount!r} is negative or not finite")
    tx = item.get("tx") if isinstance(item.get("tx"), dict) else {}
    status = tx.get("status")
    return {
        "wallet": wallet,
        "address": address,
        "chain": chain,
        "tx_id": tx_id,
        "ts": datetime.fromtimestamp(moment, UTC),
        "cate_id": item.get("cate_id"),
        "project_id": item.get("project_id"),
        "status": "failed" if status == 0 else "success",
        "is_scam": bool(item.get("is_scam")),
        "gas_fee": _number(tx.get("eth_gas_fee")),
        "usd_gas_fee": _number(tx.get("usd_gas_fee")),
        "raw": raw,
        "fetched_at": fetched_at,
        "is_deleted": False,
        "deleted_at": None,
    }


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _raw(item: Item, tokens: dict[str, dict[str, Any]]) -> str:
    """The item as DeBank sent it, with the tokens it names (so the ledger can map them)."""
    ids = {
        t.get("token_id")
        for direction in ("sends", "receives")
        for t in (item.get(direction) or [])
        if isinstance(t, dict)
    }
    named = {i: tokens[i] for i in sorted(i for i in ids if isinstance(i, str)) if i in tokens}
    return json.dumps({"item": item, "tokens": named}, sort_keys=True, default=str)
