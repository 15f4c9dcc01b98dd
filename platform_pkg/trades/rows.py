"""Exchange trades as rows of ``exchange_trades``: validated, never dropped silently.

A trade the platform cannot store as it is (no id, an id that is not an integer where the
exchange pages by integer ids, no time, an unknown side, a non-numeric or non-positive amount, a
negative or missing price) goes to ``rejected_rows`` with the reason; the rest of its page is
stored. Trade ids stay strings — the exchange's own — and are compared as integers.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from platform_pkg.trades.source import Trade

TRADE_COLUMNS: dict[str, str] = {
    "account": "VARCHAR",
    "exchange": "VARCHAR",
    "symbol": "VARCHAR",
    "trade_id": "VARCHAR",
    "order_id": "VARCHAR",
    "ts": "TIMESTAMPTZ",
    "side": "VARCHAR",
    "price": "DOUBLE",
    "amount": "DOUBLE",
    "cost": "DOUBLE",
    "fee": "DOUBLE",
    "fee_currency": "VARCHAR",
    "taker_or_maker": "VARCHAR",
    "raw": "JSON",
    "fetched_at": "TIMESTAMPTZ",
    "is_deleted": "BOOLEAN",
    "deleted_at": "TIMESTAMPTZ",
}
TRADE_KEY = ["account", "symbol", "trade_id"]
SIDES = ("buy", "sell")


@dataclass(frozen=True)
class Checked:
    """A page split into storable rows and rejects (``ts``, ``raw``, ``reason``)."""

    rows: pd.DataFrame
    rejected: pd.DataFrame  # ts, raw, reason, and id: the integer id when the trade had one
    ids: list[int]  # the integer ids of every row that had one, stored or rejected

    @property
    def max_id(self) -> int | None:
        return max(self.ids) if self.ids else None


def trade_id(trade: Trade) -> int | None:
    """The trade's id as an integer, or None when it has none."""
    raw = trade.get("id")
    if raw is None or isinstance(raw, bool):
        return None
    text = str(raw).strip()
    # isdigit alone accepts "²" (int() then raises) and other scripts' digits.
    return int(text) if text.isascii() and text.isdigit() else None


def check_trades(
    trades: Iterable[Trade],
    *,
    account: str,
    exchange: str,
    symbol: str,
    fetched_at: datetime,
    integer_ids: bool,
) -> Checked:
    rows: list[dict[str, Any]] = []
    rejected: list[dict[str, Any]] = []
    ids: list[int] = []
    for trade in trades:
        number = trade_id(trade)
        if number is not None:
            ids.append(number)
        try:
            rows.append(_row(trade, number, integer_ids, account, exchange, symbol, fetched_at))
        except _Rejected as why:
            rejected.append(
                {"ts": _moment(trade), "raw": _raw(trade), "reason": str(why), "id": number}
            )
    frame = pd.DataFrame.from_records(rows, columns=list(TRADE_COLUMNS))
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
    frame["fetched_at"] = pd.to_datetime(frame["fetched_at"], utc=True)
    frame["deleted_at"] = pd.to_datetime(frame["deleted_at"], utc=True)
    frame["is_deleted"] = frame["is_deleted"].astype(bool)
    for col in ("price", "amount", "cost", "fee"):
        frame[col] = frame[col].astype("float64")
    rejects = pd.DataFrame(rejected, columns=["ts", "raw", "reason", "id"])
    rejects["id"] = rejects["id"].astype("Int64")
    return Checked(frame, rejects, ids)


class _Rejected(ValueError):
    pass


def _row(
    trade: Trade,
    number: int | None,
    integer_ids: bool,
    account: str,
    exchange: str,
    symbol: str,
    fetched_at: datetime,
) -> dict[str, Any]:
    if trade.get("platform_error"):
        raise _Rejected(f"unparseable trade: {trade['platform_error']}")
    raw_id = trade.get("id")
    if raw_id is None or str(raw_id).strip() == "":
        raise _Rejected("no trade id")
    if integer_ids and number is None:
        raise _Rejected(f"trade id {raw_id!r} is not an integer")
    moment = _moment(trade)
    if moment is None:
        raise _Rejected(f"no usable time ({trade.get('timestamp')!r})")
    side = str(trade.get("side") or "").lower()
    if side not in SIDES:
        raise _Rejected(f"unknown side {trade.get('side')!r}")
    amount = _number(trade.get("amount"), "amount")
    if amount is None or amount <= 0:
        raise _Rejected(f"amount {trade.get('amount')!r} is not a positive number")
    price = _number(trade.get("price"), "price")
    if price is None or price < 0:
        raise _Rejected(f"price {trade.get('price')!r} is not a number ≥ 0")
    cost = _number(trade.get("cost"), "cost")
    fee = trade.get("fee") or {}
    fee_cost = _number(fee.get("cost"), "fee") if isinstance(fee, dict) else None
    fee_currency = fee.get("currency") if isinstance(fee, dict) else None
    order = trade.get("order")
    return {
        "account": account,
        "exchange": exchange,
        "symbol": symbol,
        "trade_id": str(number) if number is not None else str(raw_id),
        "order_id": None if order is None else str(order),
        "ts": moment,
        "side": side,
        "price": price,
        "amount": amount,
        "cost": cost if cost is not None else price * amount,
        "fee": fee_cost if fee_cost is not None else 0.0,
        "fee_currency": fee_currency,
        "taker_or_maker": trade.get("takerOrMaker"),
        "raw": _raw(trade),
        "fetched_at": fetched_at,
        "is_deleted": False,
        "deleted_at": None,
    }


def _number(value: Any, name: str) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise _Rejected(f"{name} {value!r} is not a number") from None
    if math.isnan(number) or math.isinf(number):
        raise _Rejected(f"{name} {value!r} is not a finite number")
    return number


def _moment(trade: Trade) -> datetime | None:
    stamp = trade.get("timestamp")
    if isinstance(stamp, bool) or not isinstance(stamp, int | float) or not 0 < stamp < math.inf:
        return None
    try:
        return datetime.fromtimestamp(stamp / 1000, UTC)
    except (OverflowError, OSError, ValueError):  # past the years a datetime holds
        return None


def _raw(trade: Trade) -> str:
    """The trade as the exchange sent it (ccxt keeps that in ``info``), as JSON."""
    info = trade.get("info", trade)
    return json.dumps(info, sort_keys=True, default=str, separators=(",", ":"))
