"""The interface every price source implements, the request meter, and the shared paginator."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

import pandas as pd

from platform_pkg.market.candles import interval_delta

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now(UTC)


@dataclass
class RequestMeter:
    """Counts every request a source sends (retries included), the paid units they cost, and the
    answers that throttled them (429, Binance's 418), waited out or not."""

    requests: Counter[str] = field(default_factory=Counter)
    units: Counter[str] = field(default_factory=Counter)
    throttled: Counter[str] = field(default_factory=Counter)

    def count(self, source: str, units: float = 1.0) -> None:
        self.requests[source] += 1
        self.units[source] += units

    def throttle(self, source: str) -> None:
        self.throttled[source] += 1

    @property
    def total(self) -> int:
        return sum(self.requests.values())


class PriceSource(Protocol):
    """A market data API, one request per :meth:`fetch_page` call."""

    name: str
    page_limit: int
    meter: RequestMeter

    def fetch_page(
        self, symbol: str, interval: str, start: datetime, end: datetime
    ) -> pd.DataFrame:
        """Candles of ``symbol`` opening in ``[start, end)``, ascending, at most ``page_limit``.

        Returns a frame with :data:`~platform_pkg.market.candles.CANDLE_COLUMNS`. May return fewer
        rows than exist (a short page), rows before ``start`` (overlapping pages), or none.
        """
        ...

    def earliest(self, symbol: str, interval: str) -> datetime | None:
        """The oldest candle open time this source can serve for ``symbol``, if it has a limit."""
        ...


class UnknownSymbolError(LookupError):
    """The source does not list the symbol."""


# Optional members a source may have beyond the protocol (the demo market has none of them).
def source_grid(source: PriceSource, interval: str) -> timedelta:
    """The spacing a source's open times sit on: ``source.grid(interval)``, else the interval."""
    grid = getattr(source, "grid", None)
    return grid(interval) if grid is not None else interval_delta(interval)


def volume_required(source: PriceSource) -> bool:
    """False for sources that have no per-candle volume (CoinGecko)."""
    return bool(getattr(source, "volume_required", True))


def paginate(
    source: PriceSource, symbol: str, interval: str, start: datetime, end: datetime, now: datetime
) -> Generator[pd.DataFrame, None, datetime | None]:
    """Fetch ``[start, end)`` page by page, never asking past ``now``.

    The cursor moves to just after the newest candle received, so overlapping pages are trimmed
    and a short page is followed by another request rather than taken as the end of the data.
    Fetching stops at the end of the window or when the source has nothing more in it. A page
    left empty only by trimming (the source answered, but only with candles before the cursor) is
    asked for once more; if it is empty again the walk stops and returns the cursor where it
    stopped early (None when it did not), so the caller can record the rest as a known gap.
    """
    step = interval_delta(interval)
    end = min(end, now)
    cursor = start
    asked_again = False
    while cursor < end:
        raw = source.fetch_page(symbol, interval, cursor, end)
        page = raw[(raw["ts"] >= cursor) & (raw["ts"] < end)]
        if page.empty:
            if raw.empty or not (raw["ts"] < cursor).any() or asked_again:
                return cursor if asked_again else None
            asked_again = True
            continue
        asked_again = False
        page = page.sort_values("ts").drop_duplicates("ts", keep="last").reset_index(drop=True)
        yield page
        cursor = page["ts"].iloc[-1].to_pydatetime() + step
    return None
