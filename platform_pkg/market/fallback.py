"""A primary source with a fallback that serves the rest of a window once the primary gives up.

The fallback takes over when a primary request fails for good (after its retries, or refused
outright) — not when the primary is merely rate limited for a long time (that work is deferred
and the primary serves it later, rather than mixing in a coarser source), and not for a symbol the
primary does not list. Once switched, the fallback serves the rest of the window: going back and
forth would cost the primary's retries on every page. Every row keeps the name of the source
that served it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd

from platform_pkg.market.candles import interval_delta
from platform_pkg.market.retry import SourceUnavailable
from platform_pkg.market.source import PriceSource, RequestMeter


class FallbackSource:
    def __init__(self, primary: PriceSource, fallback: PriceSource, log=None):
        self.primary, self.fallback, self.log = primary, fallback, log
        self.switched_at: datetime | None = None
        self.cause: str | None = None

    @property
    def name(self) -> str:
        if self.switched_at is None:
            return self.primary.name
        return f"{self.primary.name} → {self.fallback.name}"

    @property
    def page_limit(self) -> int:
        return (self.fallback if self.switched_at else self.primary).page_limit

    @property
    def meter(self) -> RequestMeter:
        return self.primary.meter

    @property
    def active(self) -> PriceSource:
        return self.fallback if self.switched_at is not None else self.primary

    def earliest(self, symbol: str, interval: str) -> datetime | None:
        if self.switched_at is None:
            try:
                return self.primary.earliest(symbol, interval)
            except SourceUnavailable as exc:  # e.g. its markets could not be loaded
                self._switch(symbol, interval, None, exc)
        return self.fallback.earliest(symbol, interval)

    def grid(self, interval: str) -> timedelta:
        return _grid(self.active, interval)

    @property
    def volume_required(self) -> bool:
        return getattr(self.active, "volume_required", True)

    def fetch_page(
        self, symbol: str, interval: str, start: datetime, end: datetime
    ) -> pd.DataFrame:
        if self.switched_at is None:
            try:
                return self.primary.fetch_page(symbol, interval, start, end)
            except SourceUnavailable as exc:
                self._switch(symbol, interval, start, exc)
        return self.fallback.fetch_page(symbol, interval, start, end)

    def _switch(
        self, symbol: str, interval: str, start: datetime | None, exc: SourceUnavailable
    ) -> None:
        self.switched_at, self.cause = start or datetime.min.replace(tzinfo=UTC), str(exc)
        if self.log is not None:
            self.log.warning(
                f"{symbol} {interval}: {self.primary.name} failed ({exc}); "
                f"{self.fallback.name} serves the rest"
            )

    def take_rejected(self) -> pd.DataFrame | None:
        taker = getattr(self.active, "take_rejected", None)
        return taker() if taker else None


def _grid(source: PriceSource, interval: str) -> timedelta:
    grid = getattr(source, "grid", None)
    return grid(interval) if grid else interval_delta(interval)
