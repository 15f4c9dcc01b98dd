"""On-chain transactions as ledger legs: each send and receive is a leg, and so is the gas the
wallet paid. Tokens the catalogue knows become platform symbols (``ETH-USDT``); the rest keep
their token id (``arb:0x…``, asset class ``token``) — listed, never dropped, not priced.

A scam-flagged transaction's legs are stored with status ``scam`` and a failed one's with
``failed``: neither counts in holdings. The gas of a failed transaction was still paid.
"""

from __future__ import annotations

import json
from typing import Any

import duckdb
import pyarrow as pa

from platform_pkg.market.catalogue import CHAIN_NATIVE, token_symbol

_CHANGED = """
SELECT wallet, address, chain, tx_id, ts, status, is_scam, coalesce(is_deleted, false), gas_fee, raw
FROM onchain_transactions WHERE _change_seq > ?
"""


def onchain_legs(con: duckdb.DuckDBPyConnection, since: int, columns: list[str]) -> pa.Table:
    """The legs of every wallet transaction changed since change ``since``."""
    legs: list[dict[str, Any]] = []
    for wallet, address, chain, tx_id, ts, status, scam, deleted, gas, raw in con.execute(
        _CHANGED, [since]
    ).fetchall():
        payload = json.loads(raw)
        item, tokens = payload.get("item", {}), payload.get("tokens", {})
        base = {
            "domain": "onchain", "source": "debank", "account": wallet, "txid": f"{chain}:{tx_id}",
            "ts": ts, "price": None, "fee": 0.0, "fee_currency": None, "is_deleted": deleted,
        }  # fmt: skip
        moved = "scam" if scam else "failed" if status == "failed" else "ok"
        transfers = [("transfer_out", t) for t in item.get("sends") or []]
        transfers += [("transfer_in", t) for t in item.get("receives") or []]
        for n, (side, transfer) in enumerate(transfers):
            symbol, asset_class, currency = _token(chain, transfer.get("token_id"), tokens)
            legs.append(
                base | {"leg": n, "symbol": symbol, "asset_class": asset_class, "side": side,
                        "quantity": float(transfer.get("amount") or 0.0), "currency": currency,
                        "status": moved}
            )  # fmt: skip
        payer = str((item.get("tx") or {}).get("from_addr") or "").lower()
        if gas and gas > 0 and payer == address and not scam:
            native = CHAIN_NATIVE.get(chain)
            symbol = token_symbol(native) or f"{chain}:{chain}"
            legs.append(
                base | {"leg": len(transfers), "symbol": symbol,
                        "asset_class": "crypto" if token_symbol(native) else "token",
                        "side": "fee", "quantity": float(gas), "currency": native, "status": "ok"}
            )  # fmt: skip
    return pa.Table.from_pylist(
        [{c: leg.get(c) for c in columns} for leg in legs], schema=_schema(columns)
    )


def _token(chain: str, token_id: Any, tokens: dict[str, Any]) -> tuple[str, str, str | None]:
    """(ledger symbol, asset class, ticker) of a transferred token.

    A ticker is trusted only from the chain's native token or a token DeBank verifies: anyone can
    deploy a contract calling itself ETH, and such an impersonator stays a token of its own.
    """
    info = tokens.get(token_id) or {}
    ticker = info.get("optimized_symbol") or info.get("symbol")
    native = token_id == chain
    if native and not ticker:
        ticker = CHAIN_NATIVE.get(chain)
    trusted = native or bool(info.get("is_verified")) or bool(info.get("is_core"))
    symbol = token_symbol(ticker) if trusted else None
    if symbol is not None:
        return symbol, "crypto", ticker
    return f"{chain}:{token_id}", "token", ticker


_TYPES = {
    "leg": pa.int32(), "ts": pa.timestamp("us", tz="UTC"), "quantity": pa.float64(),
    "price": pa.float64(), "fee": pa.float64(), "is_deleted": pa.bool_(),
}  # fmt: skip


def _schema(columns: list[str]) -> pa.Schema:
    return pa.schema([(c, _TYPES.get(c, pa.string())) for c in columns])
