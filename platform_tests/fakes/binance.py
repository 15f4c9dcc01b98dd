"""A local server speaking enough of Binance's spot REST API for the real ccxt library.

``exchangeInfo`` (spot markets), ``klines`` (startTime / endTime / limit, both ends inclusive,
numbers as strings, the still-open candle included), and the signed ``myTrades`` (API key header
and HMAC-SHA256 signature checked). Candles are the demo market's, so a test knows exactly what
the exchange holds. It can also cut pages short, overlap them, corrupt given candles, and enforce
a request-weight limit per minute with 429 + ``Retry-After`` as Binance does.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import threading
import time
from datetime import UTC, datetime

import pandas as pd

from platform_pkg.market.demo import DemoMarket
from platform_tests.fakes.server import FakeServer, Request, Response

INTERVAL_MS = {"1h": 3_600_000, "1d": 86_400_000}
WEIGHTS = {"/api/v3/klines": 2, "/api/v3/exchangeInfo": 20, "/api/v3/myTrades": 20}


def _fmt(value: float) -> str:
    return "NaN" if isinstance(value, float) and math.isnan(value) else f"{value:.8f}"


class FakeBinance(FakeServer):
    def __init__(
        self,
        market: DemoMarket,
        pairs: dict[str, tuple[str, str]] | None = None,
        *,
        api_key: str | None = None,
        api_secret: str | None = None,
        weight_limit: int | None = None,
        draws: dict[str, str] | None = None,
    ):
        super().__init__(self.route)
        self.market = market
        # Binance id → (base, quote); candles come from the demo symbol BASE-QUOTE.
        self.pairs = pairs or {
            "BTCUSDT": ("BTC", "USDT"),
            "ETHUSDT": ("ETH", "USDT"),
            "SOLUSDT": ("SOL", "USDT"),
        }
        # Which demo symbol a pair's candles come from (default BASE-QUOTE): benchmarks list
        # more pairs than the demo market has.
        self.draws = draws or {}
        self.api_key, self.api_secret = api_key, api_secret
        self.weight_limit = weight_limit
        self.short: int | None = None  # at most this many candles per answer
        self.overlap = 0  # answers start this many candles before startTime
        self.corrupt: dict[tuple[str, str, int], dict[str, str | None]] = {}
        self.trades: dict[str, list[dict]] = {}
        self._weight_lock = threading.Lock()
        self._minute, self._used = 0, 0
        self.throttled = 0  # 429s answered for going over ``weight_limit``

    # -- what the exchange holds ------------------------------------------------------------
    def klines(self, symbol_id: str, interval: str, start_ms: int, end_ms: int) -> list[list]:
        base, quote = self.pairs[symbol_id]
        start = datetime.fromtimestamp(start_ms / 1000, UTC)
        end = datetime.fromtimestamp(end_ms / 1000, UTC)
        frame = self.market.candles(
            self.draws.get(symbol_id, f"{base}-{quote}"), interval, start, end
        )
        rows = []
        for c in frame.itertuples(index=False):
            open_ms = int(pd.Timestamp(c.ts).value // 1_000_000)
            row = [
                open_ms,
                _fmt(c.open),
                _fmt(c.high),
                _fmt(c.low),
                _fmt(c.close),
                _fmt(c.volume),
                open_ms + INTERVAL_MS[interval] - 1,
                _fmt(c.volume * c.close),
                100,
                _fmt(c.volume / 2),
                _fmt(c.volume * c.close / 2),
                "0",
            ]
            for field, value in self.corrupt.get((symbol_id, interval, open_ms), {}).items():
                index = {"ts": 0, "open": 1, "high": 2, "low": 3, "close": 4, "volume": 5}[field]
                row[index] = value
            rows.append(row)
        return rows

    # -- the API ----------------------------------------------------------------------------
    def route(self, request: Request) -> Response:
        limited = self._spend(WEIGHTS.get(request.path, 1))
        if limited is not None:
            return limited
        if request.path == "/api/v3/exchangeInfo":
            return Response(body=self._exchange_info())
        if request.path == "/api/v3/klines":
            return self._klines(request)
        if request.path == "/api/v3/myTrades":
            return self._my_trades(request)
        if request.path in ("/api/v3/ping", "/api/v3/time"):
            return Response(body={"serverTime": int(time.time() * 1000)})
        return Response(404, {"code": -1000, "msg": f"fake binance has no {request.path}"})

    def _spend(self, weight: int) -> Response | None:
        if self.weight_limit is None:
            return None
        with self._weight_lock:
            now = time.time()
            minute = int(now // 60)
            if minute != self._minute:
                self._minute, self._used = minute, 0
            if self._used + weight > self.weight_limit:
                retry = max(1, math.ceil((minute + 1) * 60 - now))
                self.throttled += 1
                return Response(
                    429,
                    {"code": -1003, "msg": "Too much request weight used; current limit exceeded."},
                    {"Retry-After": str(retry), "X-MBX-USED-WEIGHT-1M": str(self._used)},
                )
            self._used += weight
        return None

    def _klines(self, request: Request) -> Response:
        q = request.query
        symbol_id, interval = q.get("symbol"), q.get("interval")
        if symbol_id not in self.pairs:
            return Response(400, {"code": -1121, "msg": "Invalid symbol."})
        if interval not in INTERVAL_MS:
            return Response(400, {"code": -1120, "msg": "Invalid interval."})
        limit = min(int(q.get("limit", 500)), 1000)
        step = INTERVAL_MS[interval]
        now_ms = int(self.market.clock().timestamp() * 1000)
        end_ms = int(q["endTime"]) + 1 if "endTime" in q else now_ms + step
        start_ms = int(q["startTime"]) if "startTime" in q else end_ms - limit * step
        start_ms -= self.overlap * step
        end_ms = min(end_ms, start_ms + limit * step)  # never more than a page to build
        rows = self.klines(symbol_id, interval, start_ms, end_ms)[:limit]
        if self.short is not None:
            rows = rows[: self.short]
        return Response(body=rows)

    def _my_trades(self, request: Request) -> Response:
        if request.headers.get("x-mbx-apikey") != self.api_key:
            return Response(
                401, {"code": -2015, "msg": "Invalid API-key, IP, or permissions for action."}
            )
        # Binance signs the query string exactly as sent, up to "&signature=".
        signed = request.query_string.split("&signature=", 1)[0]
        expected = hmac.new(
            (self.api_secret or "").encode(), signed.encode(), hashlib.sha256
        ).hexdigest()
        if not hmac.compare_digest(expected, request.query.get("signature", "")):
            return Response(400, {"code": -1022, "msg": "Signature for this request is not valid."})
        return Response(body=self.trades.get(request.query.get("symbol", ""), []))

    def _exchange_info(self) -> dict:
        return {
            "timezone": "UTC",
            "serverTime": int(time.time() * 1000),
            "rateLimits": [
                {
                    "rateLimitType": "REQUEST_WEIGHT",
                    "interval": "MINUTE",
                    "intervalNum": 1,
                    "limit": 6000,
                }
            ],
            "exchangeFilters": [],
            "symbols": [
                self._symbol(sid, base, quote) for sid, (base, quote) in self.pairs.items()
            ],
        }

    @staticmethod
    def _symbol(symbol_id: str, base: str, quote: str) -> dict:
        return {
            "symbol": symbol_id,
            "status": "TRADING",
            "baseAsset": base,
            "baseAssetPrecision": 8,
            "quoteAsset": quote,
            "quotePrecision": 8,
            "quoteAssetPrecision": 8,
            "baseCommissionPrecision": 8,
            "quoteCommissionPrecision": 8,
            "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET"],
            "icebergAllowed": True,
            "ocoAllowed": True,
            "quoteOrderQtyMarketAllowed": True,
            "allowTrailingStop": True,
            "cancelReplaceAllowed": True,
            "isSpotTradingAllowed": True,
            "isMarginTradingAllowed": False,
            "filters": [
                {
                    "filterType": "PRICE_FILTER",
                    "minPrice": "0.01000000",
                    "maxPrice": "1000000.00000000",
                    "tickSize": "0.01000000",
                },
                {
                    "filterType": "LOT_SIZE",
                    "minQty": "0.00001000",
                    "maxQty": "9000.00000000",
                    "stepSize": "0.00001000",
                },
            ],
            "permissions": [],
            "permissionSets": [["SPOT"]],
            "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
            "allowedSelfTradePreventionModes": ["EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
        }
