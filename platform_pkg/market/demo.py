"""The built-in demo market: a deterministic, offline price source that behaves like a real API.

Every symbol follows a seeded random walk over *calendar* hours from its listing date, so the same
candle always has the same values, whoever asks and whenever. Markets with sessions (stocks, FX,
futures) only print candles while open, so their price gaps across nights and weekends as real
ones do. A daily candle is the exact aggregate of that day's hourly candles. The candle that
contains "now" is open: its close, high, low and volume move as the clock advances and settle on
the final values when it closes. Requests are paged (at most ``page_limit`` candles each) and
counted, so request figures measured on the demo mean something.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import lru_cache

import numpy as np
import pandas as pd

from platform_pkg.market.candles import ceil_time
from platform_pkg.market.source import Clock, RequestMeter, UnknownSymbolError, system_clock

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
_HORIZON_HOURS = 24 * 366 * 16  # how far past listing the walk is defined


@dataclass(frozen=True)
class Session:
    """When a market prints hourly candles (UTC): weekdays only, and the open hours."""

    weekdays_only: bool
    first_hour: int = 0
    end_hour: int = 24


ALWAYS = Session(weekdays_only=False)
US_EQUITY = Session(weekdays_only=True, first_hour=14, end_hour=21)  # 14:00-21:00 UTC, no DST
FX = Session(weekdays_only=True)
FUTURES = Session(weekdays_only=True, end_hour=22)


@dataclass(frozen=True)
class DemoListing:
    symbol: str
    asset_class: str
    listed: date
    first_price: float
    hourly_vol: float
    base_volume: float
    session: Session


DEMO_LISTINGS: dict[str, DemoListing] = {
    item.symbol: item
    for item in [
        DemoListing("BTC-USDT", "crypto", date(2020, 1, 1), 7200.0, 0.007, 1500.0, ALWAYS),
        DemoListing("ETH-USDT", "crypto", date(2020, 1, 1), 130.0, 0.009, 9000.0, ALWAYS),
        DemoListing("SOL-USDT", "crypto", date(2020, 4, 10), 0.95, 0.014, 250000.0, ALWAYS),
        DemoListing("AAPL", "stock", date(2020, 1, 2), 75.0, 0.004, 4.0e6, US_EQUITY),
        DemoListing("MSFT", "stock", date(2020, 1, 2), 160.0, 0.004, 3.0e6, US_EQUITY),
        DemoListing("SPY", "etf", date(2020, 1, 2), 320.0, 0.003, 9.0e6, US_EQUITY),
        DemoListing("EURUSD=X", "fx", date(2020, 1, 1), 1.12, 0.0008, 0.0, FX),
        DemoListing("GC=F", "commodity", date(2020, 1, 1), 1520.0, 0.002, 2.0e4, FUTURES),
    ]
}


@lru_cache(maxsize=32)
def _walk(symbol: str) -> dict[str, np.ndarray]:
    """The symbol's whole hourly path: one entry per calendar hour since listing."""
    listing = DEMO_LISTINGS[symbol]
    seed = int.from_bytes(hashlib.sha256(symbol.encode()).digest()[:8], "little")
    rng = np.random.default_rng(seed)
    returns = rng.normal(0.00002, listing.hourly_vol, _HORIZON_HOURS)
    wick_up, wick_down = np.abs(rng.normal(0, listing.hourly_vol / 2, (2, _HORIZON_HOURS)))
    volume = listing.base_volume * np.exp(rng.normal(0, 0.35, _HORIZON_HOURS))
    close = listing.first_price * np.exp(np.cumsum(returns))
    open_ = np.concatenate([[listing.first_price], close[:-1]])
    return {
        "open": open_,
        "returns": returns,
        "wick_up": wick_up,
        "wick_down": wick_down,
        "volume": volume,
    }


@dataclass
class DemoMarket:
    """The demo price source. ``clock`` is injectable so tests and benchmarks are reproducible.

    ``revisions`` lets a test play a late correction: ``{(symbol, interval, ts): {"close": x}}``
    changes those fields of that candle from then on, as an exchange fixing bad data would
    (high and low widen to take in a corrected open or close).
    ``fail_on_request`` makes the n-th request (1-based) raise, as a dropped connection would.
    """

    clock: Clock = system_clock
    page_limit: int = 1000
    meter: RequestMeter = field(default_factory=RequestMeter)
    revisions: dict[tuple[str, str, datetime], dict[str, float]] = field(default_factory=dict)
    fail_on_request: int | None = None
    name: str = "demo"

    def listing(self, symbol: str) -> DemoListing:
        try:
            return DEMO_LISTINGS[symbol]
        except KeyError:
            raise UnknownSymbolError(
                f"the demo market does not list {symbol!r}; it lists {', '.join(DEMO_LISTINGS)}"
            ) from None

    def earliest(self, symbol: str, interval: str) -> datetime | None:
        return datetime.combine(self.listing(symbol).listed, datetime.min.time(), tzinfo=UTC)

    def fetch_page(
        self, symbol: str, interval: str, start: datetime, end: datetime
    ) -> pd.DataFrame:
        listing = self.listing(symbol)
        self.meter.count(self.name)
        if (
            self.fail_on_request is not None
            and self.meter.requests[self.name] == self.fail_on_request
        ):
            raise ConnectionError(
                f"demo market: connection reset on request {self.fail_on_request}"
            )
        frame = self.candles(listing.symbol, interval, start, end)
        return frame.iloc[: self.page_limit].reset_index(drop=True)

    def candles(self, symbol: str, interval: str, start: datetime, end: datetime) -> pd.DataFrame:
        """Every candle of ``symbol`` opening in ``[start, min(end, now))``, unpaged and uncounted."""
        listing = self.listing(symbol)
        now = self.clock()
        lo = max(ceil_time(start, interval), self.earliest(symbol, interval))
        hi = min(end, now)
        if hi <= lo:
            return _frame([], [], [], [], [], [], [], self.name)
        if interval == "1h":
            frame = self._hourly(listing, lo, hi, now)
        else:
            hourly = self._hourly(listing, lo, min(ceil_time(hi, "1d"), now), now)
            frame = _aggregate_days(hourly, listing, now)
            frame = frame[(frame["ts"] >= lo) & (frame["ts"] < hi)]
        return self._apply_revisions(symbol, interval, frame.reset_index(drop=True))

    def _hourly(
        self, listing: DemoListing, lo: datetime, hi: datetime, now: datetime
    ) -> pd.DataFrame:
        walk = _walk(listing.symbol)
        listed_ms = int(self.earliest(listing.symbol, "1h").timestamp() * 1000)
        first = (int(lo.timestamp() * 1000) - listed_ms + HOUR_MS - 1) // HOUR_MS
        last = (int(hi.timestamp() * 1000) - listed_ms + HOUR_MS - 1) // HOUR_MS  # exclusive
        if last > _HORIZON_HOURS:
            raise ValueError(
                f"the demo market's walk for {listing.symbol} ends in {_HORIZON_HOURS} hours"
            )
        idx = np.arange(first, last)
        ts_ms = listed_ms + idx * HOUR_MS
        open_mask = _in_session(ts_ms, listing.session)
        idx, ts_ms = idx[open_mask], ts_ms[open_mask]
        now_ms = int(now.timestamp() * 1000)
        # The share of each candle's hour that has passed: 1 for closed candles.
        progress = np.clip((now_ms - ts_ms) / HOUR_MS, 0.0, 1.0)
        open_ = walk["open"][idx]
        close = open_ * np.exp(walk["returns"][idx] * progress)
        high = np.maximum(open_, close) * np.exp(walk["wick_up"][idx] * progress)
        low = np.minimum(open_, close) * np.exp(-walk["wick_down"][idx] * progress)
        volume = walk["volume"][idx] * progress
        return _frame(ts_ms, open_, high, low, close, volume, progress >= 1.0, self.name)

    def _apply_revisions(self, symbol: str, interval: str, frame: pd.DataFrame) -> pd.DataFrame:
        mine = {
            ts: fix for (s, i, ts), fix in self.revisions.items() if s == symbol and i == interval
        }
        if not mine or frame.empty:
            return frame
        frame = frame.copy()
        for ts, fix in mine.items():
            hit = frame["ts"] == pd.Timestamp(ts)
            for col, value in fix.items():
                frame.loc[hit, col] = value
            # A corrected candle is still a candle: its range takes in the corrected prices.
            body = frame.loc[hit, ["open", "close"]]
            frame.loc[hit, "high"] = np.maximum(frame.loc[hit, "high"], body.max(axis=1))
            frame.loc[hit, "low"] = np.minimum(frame.loc[hit, "low"], body.min(axis=1))
        return frame


def _in_session(ts_ms: np.ndarray, session: Session) -> np.ndarray:
    hour = (ts_ms // HOUR_MS) % 24
    mask = (hour >= session.first_hour) & (hour < session.end_hour)
    if session.weekdays_only:
        weekday = (ts_ms // DAY_MS + 3) % 7  # 1970-01-01 was a Thursday; Monday is 0
        mask &= weekday < 5
    return mask


def _aggregate_days(hourly: pd.DataFrame, listing: DemoListing, now: datetime) -> pd.DataFrame:
    if hourly.empty:
        return hourly
    day = hourly["ts"].dt.floor("D")
    grouped = hourly.groupby(day, sort=True)
    frame = pd.DataFrame(
        {
            "ts": grouped["ts"].first().index,
            "open": grouped["open"].first().to_numpy(),
            "high": grouped["high"].max().to_numpy(),
            "low": grouped["low"].min().to_numpy(),
            "close": grouped["close"].last().to_numpy(),
            "volume": grouped["volume"].sum().to_numpy(),
        }
    )
    # A day is final once its last session hour has closed.
    last_hour = frame["ts"] + pd.Timedelta(hours=listing.session.end_hour)
    frame["is_final"] = (last_hour <= pd.Timestamp(now)).to_numpy()
    frame["source"] = hourly["source"].iloc[0]
    return frame


def _frame(ts_ms, open_, high, low, close, volume, is_final, source: str) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "ts": pd.to_datetime(np.asarray(ts_ms, dtype="int64"), unit="ms", utc=True),
            "open": np.round(np.asarray(open_, dtype="float64"), 6),
            "high": np.round(np.asarray(high, dtype="float64"), 6),
            "low": np.round(np.asarray(low, dtype="float64"), 6),
            "close": np.round(np.asarray(close, dtype="float64"), 6),
            "volume": np.round(np.asarray(volume, dtype="float64"), 4),
            "is_final": np.asarray(is_final, dtype=bool),
        }
    )
    frame["source"] = source
    return frame
