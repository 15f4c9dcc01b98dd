"""The interface every source of exchange trades implements (ccxt exchanges, the demo exchange).

A source answers one request per call and returns trades in ccxt's unified trade structure:
``{"id": str, "order": str | None, "timestamp": int (ms), "datetime": str, "symbol": "BTC/USDT",
"side": "buy" | "sell", "takerOrMaker": "taker" | "maker" | None, "price": float,
"amount": float, "cost": float, "fee": {"cost": float, "currency": str} | None, "info": raw}``.
A row the source could not parse is returned, not dropped, with ``"platform_error"`` saying why
(validation then rejects it into ``rejected_rows``).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Protocol

from platform_pkg.market.source import RequestMeter

Trade = dict[str, Any]


class TradeSource(Protocol):
    name: str  # "ccxt:binance", "demo"
    page_limit: int  # the most trades one request returns
    id_cursor: bool  # pages forward by trade id (Binance ``fromId``)
    window: timedelta | None  # the longest span one time query may cover (Binance: 24 h)
    meter: RequestMeter

    def market(self, symbol: str) -> str:
        """The exchange's market for a platform symbol (``BTC-USDT`` → ``BTC/USDT``); raises
        :class:`~platform_pkg.market.source.UnknownSymbolError` when the exchange does not list it."""
        ...

    def trades_from_id(self, symbol: str, from_id: str | None) -> list[Trade]:
        """One request: the account's trades of ``symbol`` whose id is ``>= from_id`` as an
        integer (from the account's first trade when None), ascending, at most ``page_limit``."""
        ...

    def trades_between(self, symbol: str, start: datetime, end: datetime) -> list[Trade]:
        """One request: the account's trades of ``symbol`` with ``start <= time < end``,
        ascending, at most ``page_limit``; ``end - start`` must not exceed ``window``."""
        ...
