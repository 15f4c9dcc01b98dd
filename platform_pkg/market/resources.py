"""The market data resource: builds the configured price source for a symbol, at run time."""

from __future__ import annotations

import os
from datetime import UTC, datetime

import dagster as dg
from pydantic import Field

from platform_pkg.market.catalogue import CRYPTO_CLASSES, asset_class_of
from platform_pkg.market.demo import DemoMarket
from platform_pkg.market.source import Clock, PriceSource, RequestMeter, system_clock


def parse_now(raw: str) -> datetime:
    moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class MarketData(dg.ConfigurableResource):
    """Where prices come from. The built-in demo market serves everything unless a real source
    is switched on for an asset class."""

    crypto_source: str = Field(default="demo", description="demo | ccxt | coingecko")
    stock_source: str = Field(default="demo", description="demo | yfinance")
    demo_page_limit: int = Field(default=1000, description="Candles per demo-market request.")
    now: str | None = Field(
        default=None,
        description="Freeze 'now' (ISO 8601, UTC) for reproducible runs; default $PLATFORM_NOW, "
        "else the system clock.",
    )

    def clock(self) -> Clock:
        frozen = self.now or os.environ.get("PLATFORM_NOW")
        if frozen:
            moment = parse_now(frozen)
            return lambda: moment
        return system_clock

    def source_for(self, symbol: str, meter: RequestMeter) -> PriceSource:
        asset_class = asset_class_of(symbol)
        setting = self.crypto_source if asset_class in CRYPTO_CLASSES else self.stock_source
        if setting == "demo":
            return DemoMarket(clock=self.clock(), page_limit=self.demo_page_limit, meter=meter)
        raise ValueError(f"price source {setting!r} for {asset_class} is not available")
