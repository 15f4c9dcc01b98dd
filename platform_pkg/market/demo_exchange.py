"""The built-in demo exchange: a deterministic, offline account's trades on the demo market.

Each (account, symbol) trades on a seeded schedule, about once every two days, from ``first_day``
for three years; a request only sees the trades that have happened by the clock's "now", so an
incremental sync finds new ones as time passes. Every price is the demo market's price at the
trade's moment, so it lies inside the hourly and daily demo candles that contain it. Requests
behave like Binance's ``myTrades``: paged, counted, by ``fromId`` or by a time window of at most
24 hours.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache

import numpy as np

from platform_pkg.market.demo import DEMO_LISTINGS, HOUR_MS, _walk
from platform_pkg.market.source import Clock, RequestMeter, UnknownSymbolError, system_clock
from platform_pkg.trades.source import Trade

CRYPTO_SYMBOLS: tuple[str, ...] = tuple(
    symbol for symbol, listing in DEMO_LISTINGS.items() if listing.asset_class == "crypto"
)
FEE_RATE = 0.001  # Binance's spot fee without the BNB discount
_HORIZON = timedelta(days=3 * 365 + 1)
_MEAN_GAP_S = 2 * 86_400
_ID_BASE = 2_200_000_000  # above 2**31, as Binance's ids are
_ORDER_BASE = 9_100_000_000
_ID_STRIDE = 4  # ids step by this per second, leaving room for a per-symbol offset
_NOTIONAL = (50.0, 5_000.0)
_SELL_SHARE = 0.6  # a sell takes at most this share of the position held
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class _Table:
    """One (account, symbol)'s trades over the whole horizon, ascending by time and id."""

    ids: np.ndarray
    ts_ms: np.ndarray
    orders: np.ndarray
    price: np.ndarray
    amount: np.ndarray
    is_buy: np.ndarray


@dataclass
class DemoExchange:
    """A demo account on the built-in demo exchange: its spot trades of the demo crypto symbols.

    ``clock`` is injectable so tests and benchmarks are reproducible; ``symbols`` narrows the
    markets the exchange lists (default: every crypto symbol of the demo market).
    """

    account: str
    clock: Clock = system_clock
    meter: RequestMeter = field(default_factory=RequestMeter)
    page_limit: int = 1000
    first_day: date = date(2026, 3, 2)
    symbols: tuple[str, ...] | None = None
    name: str = field(default="demo", init=False)
    id_cursor: bool = field(default=True, init=False)
    window: timedelta | None = field(default=timedelta(days=1), init=False)

    def __post_init__(self) -> None:
        if self.symbols is None:
            self.symbols = CRYPTO_SYMBOLS
        self.symbols = tuple(self.symbols)
        unknown = [s for s in self.symbols if s not in CRYPTO_SYMBOLS]
        if unknown:
            raise UnknownSymbolError(
                f"the demo exchange only trades {', '.join(CRYPTO_SYMBOLS)}; not {unknown}"
            )
        listed = max(DEMO_LISTINGS[s].listed for s in self.symbols)
        if self.first_day < listed:
            raise ValueError(f"the demo exchange's first day must not be before {listed}")
        if self.page_limit < 1:
            raise ValueError("page_limit must be at least 1")

    def market(self, symbol: str) -> str:
        if symbol not in (self.symbols or ()):
            raise UnknownSymbolError(
                f"the demo exchange does not list {symbol!r}; "
                f"it lists {', '.join(self.symbols or ())}"
            )
        return symbol.replace("-", "/")

    def trades_from_id(self, symbol: str, from_id: str | None) -> list[Trade]:
        self.market(symbol)
        self.meter.count(self.name)
        table = self._table(symbol)
        visible = _visible(table, self.clock())
        lo = 0 if from_id is None else int(np.searchsorted(table.ids, int(from_id), "left"))
        return _trades(symbol, table, lo, min(visible, lo + self.page_limit))

    def trades_between(self, symbol: str, start: datetime, end: datetime) -> list[Trade]:
        self.market(symbol)
        self.meter.count(self.name)
        if self.window is not None and end - start > self.window:
            raise ValueError(
                f"the demo exchange answers time queries of at most {self.window} "
                f"(as Binance's 24 hours); asked {start.isoformat()} to {end.isoformat()}"
            )
        table = self._table(symbol)
        visible = _visible(table, self.clock())
        lo = int(np.searchsorted(table.ts_ms, _ceil_ms(start), "left"))
        hi = int(np.searchsorted(table.ts_ms, _ceil_ms(end), "left"))
        return _trades(symbol, table, lo, min(hi, visible, lo + self.page_limit))

    def all_trades(self, symbol: str, until: datetime | None = None) -> list[Trade]:
        """Every trade of ``symbol`` up to ``until`` (default: now), unpaged and uncounted."""
        self.market(symbol)
        table = self._table(symbol)
        return _trades(symbol, table, 0, _visible(table, until or self.clock()))

    def _table(self, symbol: str) -> _Table:
        return _generate(self.account, symbol, self.first_day)


def _visible(table: _Table, now: datetime) -> int:
    """How many of the table's trades have happened by ``now``."""
    now_ms = (now - _EPOCH) // timedelta(milliseconds=1)
    return int(np.searchsorted(table.ts_ms, now_ms, "right"))


def _ceil_ms(moment: datetime) -> int:
    return -((_EPOCH - moment) // timedelta(milliseconds=1))


@lru_cache(maxsize=64)
def _generate(account: str, symbol: str, first_day: date) -> _Table:
    seed = int.from_bytes(hashlib.sha256(f"{account}:{symbol}".encode()).digest()[:8], "little")
    rng = np.random.default_rng(seed)
    start = datetime.combine(first_day, datetime.min.time(), tzinfo=UTC)
    horizon_s = int(_HORIZON.total_seconds())
    draws = int(horizon_s / _MEAN_GAP_S * 1.5) + 64
    gaps = np.maximum(1, np.rint(rng.exponential(_MEAN_GAP_S, draws))).astype(np.int64)
    seconds = np.cumsum(gaps)
    seconds = seconds[seconds < horizon_s]
    n = len(seconds)
    notional = np.exp(rng.uniform(np.log(_NOTIONAL[0]), np.log(_NOTIONAL[1]), n))
    wants_sell = rng.random(n) < 0.45
    sell_share = rng.uniform(0.1, _SELL_SHARE, n)

    start_ms = int(start.timestamp() * 1000)
    ts_ms = start_ms + seconds * 1000
    price = _demo_price(symbol, ts_ms)
    is_buy, amount = _sides_and_amounts(price, notional, wants_sell, sell_share)

    index = CRYPTO_SYMBOLS.index(symbol)
    assert index < _ID_STRIDE, "more demo crypto symbols than the id stride leaves room for"
    ids = _ID_BASE + seconds * _ID_STRIDE + index
    orders = _ORDER_BASE + seconds * _ID_STRIDE + index
    arrays = [ids, ts_ms, orders, price, amount, is_buy]
    for array in arrays:
        array.flags.writeable = False
    return _Table(*arrays)


def _demo_price(symbol: str, ts_ms: np.ndarray) -> np.ndarray:
    """The demo market's price at each moment: its hourly candle's close at that progress.

    Rounded to 6 decimals (as the demo market rounds its candles) where the rounded price still
    lies inside the candle as served at the trade's moment; the range only widens after that.
    """
    walk = _walk(symbol)
    listed = datetime.combine(DEMO_LISTINGS[symbol].listed, datetime.min.time(), tzinfo=UTC)
    listed_ms = int(listed.timestamp() * 1000)
    hour = (ts_ms - listed_ms) // HOUR_MS
    if len(hour) and hour[-1] >= len(walk["open"]):
        raise ValueError(f"the demo market's walk for {symbol} ends before the trades do")
    # Same arithmetic as DemoMarket._hourly, so the served close at this moment is this price.
    progress = np.clip((ts_ms - (listed_ms + hour * HOUR_MS)) / HOUR_MS, 0.0, 1.0)
    open_ = walk["open"][hour]
    raw = open_ * np.exp(walk["returns"][hour] * progress)
    high = np.round(np.maximum(open_, raw) * np.exp(walk["wick_up"][hour] * progress), 6)
    low = np.round(np.minimum(open_, raw) * np.exp(-walk["wick_down"][hour] * progress), 6)
    rounded = np.round(raw, 6)
    return np.where((rounded >= low) & (rounded <= high) & (rounded > 0), rounded, raw)


def _sides_and_amounts(
    price: np.ndarray, notional: np.ndarray, wants_sell: np.ndarray, sell_share: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Buy or sell and how much, keeping the position (net of base-currency fees) above zero.

    A sell takes at most ``sell_share`` of what is held and turns into a buy when that would be
    worth less than the smallest notional; the first trades are therefore buys.
    """
    units = np.maximum(1, np.rint(notional / price * 1e6)).astype(np.int64)  # micro-units
    is_buy = np.ones(len(price), dtype=bool)
    amount_units = units.copy()
    held = 0.0
    for k, (want, px, sell, share) in enumerate(
        zip(units.tolist(), price.tolist(), wants_sell.tolist(), sell_share.tolist(), strict=True)
    ):
        cap = int(held * share * 1e6)
        if sell and min(want, cap) * px / 1e6 >= _NOTIONAL[0]:
            is_buy[k] = False
            amount_units[k] = min(want, cap)
            held -= amount_units[k] / 1e6
        else:
            held += want / 1e6 * (1 - FEE_RATE)
    return is_buy, np.round(amount_units / 1e6, 6)


def _trades(symbol: str, table: _Table, lo: int, hi: int) -> list[Trade]:
    base, quote = symbol.split("-")
    market = f"{base}/{quote}"
    out: list[Trade] = []
    for k in range(lo, max(lo, hi)):
        trade_id, ts, order = int(table.ids[k]), int(table.ts_ms[k]), int(table.orders[k])
        price, amount, buy = float(table.price[k]), float(table.amount[k]), bool(table.is_buy[k])
        cost = price * amount
        fee = round(amount * FEE_RATE if buy else cost * FEE_RATE, 10)  # 10: drop float noise
        fee_currency = base if buy else quote
        maker = k % 2 == 1
        moment = datetime.fromtimestamp(ts / 1000, UTC)
        out.append(
            {
                "id": str(trade_id),
                "order": str(order),
                "timestamp": ts,
                "datetime": moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts % 1000:03d}Z",
                "symbol": market,
                "side": "buy" if buy else "sell",
                "takerOrMaker": "maker" if maker else "taker",
                "price": price,
                "amount": amount,
                "cost": cost,
                "fee": {"cost": fee, "currency": fee_currency},
                "info": {
                    "symbol": f"{base}{quote}",
                    "id": trade_id,
                    "orderId": order,
                    "orderListId": -1,
                    "price": f"{price:.8f}",
                    "qty": f"{amount:.8f}",
                    "quoteQty": f"{cost:.8f}",
                    "commission": f"{fee:.10f}",
                    "commissionAsset": fee_currency,
                    "time": ts,
                    "isBuyer": buy,
                    "isMaker": maker,
                    "isBestMatch": True,
                },
            }
        )
    return out
