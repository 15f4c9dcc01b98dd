"""An exchange account's trades through ccxt's ``fetch_my_trades``, one request per call.

Built on :class:`~platform_pkg.market.ccxt_source.CcxtSource`, so an account's requests share the
exchange's token bucket with its candle requests (Binance limits request weight per IP), go
through the same retries and cooldowns, and honour an ``api_url`` that repoints every endpoint.
ccxt's own ``paginate`` option is never used: it stops silently after 10 calls.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from platform_pkg.market.candles import to_ms
from platform_pkg.market.ccxt_source import CcxtSource
from platform_pkg.trades.source import Trade

# Exchanges whose trade history pages forward by id (``fromId``) and whose time queries span at
# most a day. Others page by time, with no window limit known to us.
_ID_CURSOR = {"binance": "fromId", "binanceus": "fromId"}
_WINDOW = {"binance": timedelta(hours=24), "binanceus": timedelta(hours=24)}
_PAGE_LIMIT = {"binance": 1000, "binanceus": 1000}


class CcxtTrades:
    """The trades of one account on one ccxt exchange. Secrets stay inside the exchange object."""

    def __init__(self, source: CcxtSource, *, paging: str = "auto"):
        self.source = source
        self.exchange_id = source.exchange.id
        self.name = source.name
        self.meter = source.meter
        self.page_limit = _PAGE_LIMIT.get(self.exchange_id, 500)
        has_cursor = self.exchange_id in _ID_CURSOR
        if paging == "id" and not has_cursor:
            raise ValueError(
                f"{self.exchange_id} has no trade id cursor the platform knows; use paging = "
                "'time' or 'auto'"
            )
        self.id_cursor = has_cursor and paging != "time"
        self.window = _WINDOW.get(self.exchange_id)

    def __repr__(self) -> str:
        return f"CcxtTrades({self.source!r})"

    def market(self, symbol: str) -> str:
        return self.source.market(symbol)

    def trades_from_id(self, symbol: str, from_id: str | None) -> list[Trade]:
        market = self.market(symbol)
        params = {_ID_CURSOR[self.exchange_id]: from_id or "0"}
        return self.source.retrying(
            lambda: self.source.exchange.fetch_my_trades(
                market, limit=self.page_limit, params=params
            ),
            f"{symbol} trades from id {from_id or 'the first'}",
        )

    def trades_between(self, symbol: str, start: datetime, end: datetime) -> list[Trade]:
        if self.window is not None and end - start > self.window:
            raise ValueError(f"{self.name}: a trade query spans at most {self.window}")
        market = self.market(symbol)
        # ccxt sends ``until`` as Binance's endTime, which is inclusive.
        return self.source.retrying(
            lambda: self.source.exchange.fetch_my_trades(
                market,
                since=to_ms(start),
                limit=self.page_limit,
                params={"until": to_ms(end) - 1},
            ),
            f"{symbol} trades [{start:%Y-%m-%d %H:%M}, {end:%Y-%m-%d %H:%M})",
        )
