"""The market data resource: builds the configured price source for a symbol, at run time.

Every field defaults to None, meaning "its environment variable, else the default" (see
:mod:`platform_pkg.market.settings`), read when a run asks for a source — so the definitions load
with no variable set, and changing a variable needs no redeploy.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime

import dagster as dg
from pydantic import Field

from platform_pkg.market.catalogue import CRYPTO_CLASSES, asset_class_of
from platform_pkg.market.ccxt_source import CcxtSource, default_rate_limit
from platform_pkg.market.coingecko import CoinGeckoSource
from platform_pkg.market.demo import DemoMarket
from platform_pkg.market.fallback import FallbackSource
from platform_pkg.market.ratelimit import RateLimit, SharedTokenBucket, bucket_file
from platform_pkg.market.settings import ENV, MarketSettings, resolve
from platform_pkg.market.source import Clock, PriceSource, RequestMeter, system_clock
from platform_pkg.market.yahoo import YahooSource


def parse_now(raw: str) -> datetime:
    moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _env(name: str, what: str) -> str:
    var, default = ENV[name]
    return f"{what} Default: ${var}, else {default or 'unset'}."


class MarketData(dg.ConfigurableResource):
    """Where prices come from. The built-in demo market serves everything unless a real source
    is switched on for an asset class."""

    crypto_source: str | None = Field(
        default=None, description=_env("crypto_source", "demo | ccxt | coingecko.")
    )
    stock_source: str | None = Field(
        default=None, description=_env("stock_source", "demo | yfinance.")
    )
    crypto_fallback: str | None = Field(
        default=None,
        description=_env("crypto_fallback", "Serves crypto when ccxt gives up: coingecko | none."),
    )
    ccxt_exchange: str | None = Field(
        default=None, description=_env("ccxt_exchange", "ccxt exchange id.")
    )
    ccxt_api_url: str | None = Field(
        default=None,
        description=_env(
            "ccxt_api_url",
            "Base URL every REST endpoint of the exchange is sent to (testnet, proxy, local server).",
        ),
    )
    ccxt_api_key: str | None = Field(
        default=None,
        repr=False,
        description=_env("ccxt_api_key", "Exchange API key (secret: use dg.EnvVar)."),
    )
    ccxt_api_secret: str | None = Field(
        default=None,
        repr=False,
        description=_env("ccxt_api_secret", "Exchange API secret (use dg.EnvVar)."),
    )
    coingecko_api_url: str | None = Field(
        default=None, description=_env("coingecko_api_url", "CoinGecko API base URL.")
    )
    coingecko_api_key: str | None = Field(
        default=None,
        repr=False,
        description=_env(
            "coingecko_api_key", "CoinGecko API key, sent as a header (use dg.EnvVar)."
        ),
    )
    yahoo_api_url: str | None = Field(
        default=None,
        description=_env(
            "yahoo_api_url", "Base URL every yfinance request is sent to instead of Yahoo's hosts."
        ),
    )
    ccxt_rate_limit: str | None = Field(
        default=None,
        description=_env(
            "ccxt_rate_limit", "UNITS/SECONDS for the exchange (Binance: request weight)."
        ),
    )
    coingecko_rate_limit: str | None = Field(
        default=None, description=_env("coingecko_rate_limit", "Requests/SECONDS for CoinGecko.")
    )
    yahoo_rate_limit: str | None = Field(
        default=None, description=_env("yahoo_rate_limit", "Requests/SECONDS for Yahoo.")
    )
    state_dir: str | None = Field(
        default=None,
        description=_env(
            "state_dir", "Shared rate-limit state and source caches (relative to the project root)."
        ),
    )
    retry_attempts: int | None = Field(
        default=None, description=_env("retry_attempts", "Attempts per request.")
    )
    retry_base_delay: float | None = Field(
        default=None,
        description=_env(
            "retry_base_delay", "First backoff, seconds (doubles per attempt, jittered)."
        ),
    )
    retry_max_delay: float | None = Field(
        default=None,
        description=_env("retry_max_delay", "Longest backoff between attempts, seconds."),
    )
    max_cooldown: float | None = Field(
        default=None,
        description=_env(
            "max_cooldown", "Longest Retry-After a run waits out; longer defers the symbol."
        ),
    )
    request_timeout: float | None = Field(
        default=None, description=_env("request_timeout", "Seconds before a request times out.")
    )
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

    def settings(self) -> MarketSettings:
        return resolve({name: getattr(self, name) for name in ENV})

    def source_name(self, symbol: str, asset_class: str | None = None) -> str:
        """The name of the source that serves ``symbol`` ("demo", "ccxt", "coingecko",
        "yfinance"), from the settings alone: no source is built."""
        settings = self.settings()
        crypto = (asset_class or asset_class_of(symbol)) in CRYPTO_CLASSES
        return settings.crypto_source if crypto else settings.stock_source

    def source_for(self, symbol: str, meter: RequestMeter) -> PriceSource:
        settings = self.settings()
        asset_class = asset_class_of(symbol)
        crypto = asset_class in CRYPTO_CLASSES
        setting = settings.crypto_source if crypto else settings.stock_source
        if setting == "demo":
            return DemoMarket(clock=self.clock(), page_limit=self.demo_page_limit, meter=meter)
        if setting == "ccxt":
            primary = self.ccxt_source(settings, meter)
            if settings.crypto_fallback == "coingecko":
                return FallbackSource(primary, self.coingecko_source(settings, meter))
            return primary
        if setting == "coingecko":
            return self.coingecko_source(settings, meter)
        return self._yahoo(settings, meter)

    def reference_source(self, meter: RequestMeter) -> tuple[PriceSource | None, str]:
        """A second source for crypto prices to compare the stored ones with (CoinGecko), or
        None with the reason there is none."""
        settings = self.settings()
        if settings.crypto_source == "demo":
            return None, (
                "crypto prices come from the built-in demo market (offline): there is no second "
                "source to compare them with; switch on a real source (PLATFORM_CRYPTO_SOURCE)"
            )
        if settings.crypto_source == "coingecko":
            return None, "crypto prices come from CoinGecko itself, the only reference source"
        return self.coingecko_source(settings, meter), ""

    def _bucket(self, settings: MarketSettings, source: str, limit: RateLimit) -> SharedTokenBucket:
        return SharedTokenBucket(source, bucket_file(settings.state_dir, source), limit)

    def ccxt_source(self, settings: MarketSettings, meter: RequestMeter) -> PriceSource:
        """The configured exchange through ccxt, its requests counted on ``meter`` and sharing
        the exchange's rate limit with every other process."""
        exchange = settings.ccxt_exchange
        limit = RateLimit.parse(settings.ccxt_rate_limit or default_rate_limit(exchange))
        return CcxtSource(
            exchange,
            clock=self.clock(),
            meter=meter,
            bucket=self._bucket(settings, f"ccxt-{exchange}", limit),
            policy=settings.policy,
            timeout=settings.request_timeout,
            state_dir=settings.state_dir,
            api_url=settings.ccxt_api_url,
            api_key=settings.ccxt_api_key,
            api_secret=settings.ccxt_api_secret,
        )

    def coingecko_source(self, settings: MarketSettings, meter: RequestMeter) -> PriceSource:
        """CoinGecko, its requests counted on ``meter`` under its shared rate limit."""
        return CoinGeckoSource(
            clock=self.clock(),
            meter=meter,
            bucket=self._bucket(settings, "coingecko", settings.coingecko_rate_limit),
            policy=settings.policy,
            timeout=settings.request_timeout,
            base_url=settings.coingecko_api_url,
            api_key=settings.coingecko_api_key,
        )

    def _yahoo(self, settings: MarketSettings, meter: RequestMeter) -> PriceSource:
        return YahooSource(
            clock=self.clock(),
            meter=meter,
            bucket=self._bucket(settings, "yahoo", settings.yahoo_rate_limit),
            policy=settings.policy,
            timeout=settings.request_timeout,
            state_dir=settings.state_dir,
            base_url=settings.yahoo_api_url,
        )
