"""A local server speaking enough of Binance's spot REST API for the real ccxt library.

``exchangeInfo`` (spot markets), ``klines`` (startTime / endTime / limit, both ends inclusive,
numbers as strings, the still-open candle included), and the signed ``myTrades`` (API key header,
``timestamp`` within ``recvWindow`` and HMAC-SHA256 signature checked; ``fromId``, time windows of
at most 24 h, ``limit`` and ``orderId`` with Binance's errors). Candles are the demo market's, so a
test knows exactly what the exchange holds; trades are what a test puts in ``trades`` (see
:func:`make_trades`). It can also cut pages short, overlap them, corrupt given candles, and enforce
a request-weight limit per minute with 429 + ``Retry-After`` as Binance does.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import random
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import pandas as pd

from platform_pkg.market.demo import DemoMarket
from platform_tests.fakes.server import FakeServer, Request, Response

INTERVAL_MS = {"1h": 3_600_000, "1d": 86_400_000}
WEIGHTS = {"/api/v3/klines": 2, "/api/v3/exchangeInfo": 20, "/api/v3/myTrades": 20}
MY_TRADES = "/api/v3/myTrades"
DAY_MS = INTERVAL_MS["1d"]  # the longest myTrades time window
_QUOTES = ("USDT", "FDUSD", "USDC", "BUSD", "TUSD", "BTC", "ETH", "BNB", "EUR", "TRY")
_LEVELS = {"BTC": Decimal(50_000), "ETH": Decimal(3_000), "SOL": Decimal(150)}


class BinanceError(Exception):
    """A refusal in Binance's shape: HTTP status, ``code`` and ``msg``."""

    def __init__(self, status: int, code: int, msg: str):
        super().__init__(msg)
        self.response = Response(status, {"code": code, "msg": msg})


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
        # Binance id → raw myTrades rows, served as they are (malformed ones too).
        self.trades: dict[str, list[dict]] = {}
        self.trades_short: int | None = None  # at most this many trades per answer
        self._weight_lock = threading.Lock()
        self._minute, self._used = 0, 0
        self.throttled = 0  # 429s answered for going over ``weight_limit``
        self.halted: set[str] = set()  # pairs exchangeInfo lists with status BREAK (not trading)

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

    @property
    def trade_requests(self) -> list[Request]:
        """Every ``myTrades`` request received (faulted ones too), without its signature."""
        return [
            replace(r, query={k: v for k, v in r.query.items() if k != "signature"})
            for r in self.requests
            if r.path == MY_TRADES
        ]

    # -- the API ----------------------------------------------------------------------------
    def route(self, request: Request) -> Response:
        weight = WEIGHTS.get(request.path, 1)
        if request.path == MY_TRADES and request.query.get("orderId"):
            weight = 5  # Binance's weight for myTrades with orderId
        limited = self._spend(weight)
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
        try:
            self._authenticate(request)
            return Response(body=self._select_trades(request.query))
        except BinanceError as refusal:
            return refusal.response

    def _authenticate(self, request: Request) -> None:
        if request.headers.get("x-mbx-apikey") != self.api_key:
            raise BinanceError(401, -2015, "Invalid API-key, IP, or permissions for action.")
        q = request.query
        stamp = _int_param(q, "timestamp", mandatory=True)
        window = _int_param(q, "recvWindow")
        window = 5000 if window is None else window
        if window > 60_000:
            raise BinanceError(400, -1131, "recvWindow must be less than 60000")
        now_ms = int(time.time() * 1000)
        if stamp >= now_ms + 1000:
            raise BinanceError(
                400, -1021, "Timestamp for this request was 1000ms ahead of the server's time."
            )
        if now_ms - stamp > window:
            raise BinanceError(
                400, -1021, "Timestamp for this request is outside of the recvWindow."
            )
        # Binance signs the query string exactly as sent, up to "&signature=".
        signed = request.query_string.split("&signature=", 1)[0]
        expected = hmac.new(
            (self.api_secret or "").encode(), signed.encode(), hashlib.sha256
        ).hexdigest()
        if not hmac.compare_digest(expected, q.get("signature", "")):
            raise BinanceError(400, -1022, "Signature for this request is not valid.")

    def _select_trades(self, q: dict[str, str]) -> list:
        symbol_id = q.get("symbol") or ""
        if not symbol_id:
            raise BinanceError(
                400,
                -1102,
                "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.",
            )
        from_id, order_id = _int_param(q, "fromId"), _int_param(q, "orderId")
        start, end = _int_param(q, "startTime"), _int_param(q, "endTime")
        limit = _int_param(q, "limit")
        limit = 500 if limit is None else limit
        if not 1 <= limit <= 1000:
            raise BinanceError(400, -1130, "Data sent for parameter 'limit' is not valid.")
        if symbol_id not in self.pairs:
            raise BinanceError(400, -1121, "Invalid symbol.")
        timed = start is not None or end is not None
        if timed and (from_id is not None or order_id is not None):
            raise BinanceError(400, -1128, "Combination of optional parameters invalid.")
        rows = _keyed(self.trades.get(symbol_id, []))
        if order_id is not None:
            rows = [k for k in rows if _as_int(_field(k[3], "orderId")) == order_id]
        if timed:
            start = end - DAY_MS if start is None else start
            end = start + DAY_MS if end is None else end
            if start > end:
                raise BinanceError(400, -1023, "Start time is greater than end time.")
            if end - start > DAY_MS:
                raise BinanceError(400, -1127, "More than 24 hours between startTime and endTime.")
            rows = sorted(
                (k for k in rows if start <= k[1] <= end), key=lambda k: (k[1], k[0], k[2])
            )
            chosen = rows[:limit]
        elif from_id is not None:
            chosen = sorted((k for k in rows if k[0] >= from_id), key=lambda k: (k[0], k[2]))
            chosen = chosen[:limit]
        else:
            chosen = sorted(rows, key=lambda k: (k[0], k[2]))[-limit:]
        if self.trades_short is not None:
            chosen = chosen[: self.trades_short]
        return [k[3] for k in chosen]

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
                self._symbol(sid, base, quote) | ({"status": "BREAK"} if sid in self.halted else {})
                for sid, (base, quote) in self.pairs.items()
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


# -- myTrades rows ----------------------------------------------------------------------------
def _as_int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    return None


def _field(row: object, name: str) -> object:
    return row.get(name) if isinstance(row, dict) else None


def _int_param(q: dict[str, str], name: str, mandatory: bool = False) -> int | None:
    value = q.get(name)
    if mandatory and not value:
        raise BinanceError(
            400, -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."
        )
    if value is None:
        return None
    if not (value.isascii() and value.isdigit() and len(value) <= 20):
        raise BinanceError(
            400,
            -1100,
            f"Illegal characters found in parameter '{name}'; legal range is '^[0-9]{{1,20}}$'.",
        )
    return int(value)


def _keyed(rows: list) -> list[tuple[float, float, int, object]]:
    """``(id, time, position, row)`` per row. A row without a usable id or time takes its
    predecessor's, so it sorts and filters just after the row it was stored after."""
    keyed, last_id, last_time = [], -math.inf, -math.inf
    for position, row in enumerate(rows):
        trade_id, at = _as_int(_field(row, "id")), _as_int(_field(row, "time"))
        last_id = last_id if trade_id is None else trade_id
        last_time = last_time if at is None else at
        keyed.append((last_id, last_time, position, row))
    return keyed


def _split_symbol(symbol_id: str) -> tuple[str, str]:
    for quote in _QUOTES:
        if symbol_id.endswith(quote) and len(symbol_id) > len(quote):
            return symbol_id[: -len(quote)], quote
    return symbol_id[:-4], symbol_id[-4:]


def make_trades(
    symbol_id: str,
    count: int,
    *,
    first_id: int = 3_000_000_000,
    start_ms: int,
    step_ms: int = 60_000,
    seed: int = 0,
    same_ms_every: int | None = None,
) -> list[dict]:
    """``count`` well-formed raw myTrades rows for ``symbol_id``, the same for the same arguments.

    Ids rise by 1..5 from ``first_id``; times by ``step_ms`` from ``start_ms``, except that with
    ``same_ms_every=k`` every k-th trade has its predecessor's time. Two buys to each sell; the
    commission is in the base asset for buys, the quote asset for sells, BNB on every 10th trade.
    """
    rng = random.Random(f"{symbol_id}:{seed}")
    base, quote = _split_symbol(symbol_id)
    price = _LEVELS.get(base, Decimal(100))
    trade_id, order_id, at = first_id, 12_000_000_000 + seed * 1_000_000, start_ms
    rows: list[dict] = []
    for i in range(count):
        if i:
            trade_id += rng.randint(1, 5)
            if not (same_ms_every and (i + 1) % same_ms_every == 0):
                at += step_ms
        is_buyer = i % 3 != 2
        if not rows or rows[-1]["isBuyer"] != is_buyer or rng.random() < 0.5:
            order_id += rng.randint(1, 9)
        price = (price * (1 + Decimal(rng.randint(-100, 100)) / 100_000)).quantize(Decimal("0.01"))
        qty = Decimal(rng.randint(1, 100_000)) / 100_000
        quote_qty = price * qty
        if i % 10 == 9:
            commission, asset = max(quote_qty * Decimal("0.0000012"), Decimal("1E-8")), "BNB"
        elif is_buyer:
            commission, asset = qty * Decimal("0.001"), base
        else:
            commission, asset = quote_qty * Decimal("0.001"), quote
        rows.append(
            {
                "symbol": symbol_id,
                "id": trade_id,
                "orderId": order_id,
                "orderListId": -1,
                "price": f"{price:.8f}",
                "qty": f"{qty:.8f}",
                "quoteQty": f"{quote_qty:.8f}",
                "commission": f"{commission:.8f}",
                "commissionAsset": asset,
                "time": at,
                "isBuyer": is_buyer,
                "isMaker": rng.random() < 0.4,
                "isBestMatch": True,
            }
        )
    return rows
