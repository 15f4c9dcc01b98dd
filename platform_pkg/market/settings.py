"""The market settings: each one from the resource's field, else its environment variable, else
its default — resolved when a run asks for a source, never at import.

:data:`ENV` is the one list of variables (the README's configuration table mirrors it).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from platform_pkg.market.ratelimit import RateLimit
from platform_pkg.market.retry import RetryPolicy
from platform_pkg.warehouse.connection import PROJECT_ROOT

CRYPTO_SOURCES = ("demo", "ccxt", "coingecko")
STOCK_SOURCES = ("demo", "yfinance")
FALLBACKS = ("coingecko", "none")

# field name → (environment variable, default)
ENV: dict[str, tuple[str, str | None]] = {
    "crypto_source": ("PLATFORM_CRYPTO_SOURCE", "demo"),
    "stock_source": ("PLATFORM_STOCK_SOURCE", "demo"),
    "crypto_fallback": ("PLATFORM_CRYPTO_FALLBACK", "coingecko"),
    "ccxt_exchange": ("PLATFORM_CCXT_EXCHANGE", "binance"),
    "ccxt_api_url": ("PLATFORM_CCXT_API_URL", None),
    "ccxt_api_key": ("PLATFORM_CCXT_API_KEY", None),
    "ccxt_api_secret": ("PLATFORM_CCXT_API_SECRET", None),
    "coingecko_api_url": ("PLATFORM_COINGECKO_API_URL", "https://api.coingecko.com/api/v3"),
    "coingecko_api_key": ("PLATFORM_COINGECKO_API_KEY", None),
    "yahoo_api_url": ("PLATFORM_YAHOO_API_URL", None),
    "ccxt_rate_limit": ("PLATFORM_CCXT_RATE_LIMIT", None),  # None: the exchange's own
    "coingecko_rate_limit": ("PLATFORM_COINGECKO_RATE_LIMIT", "30/60"),
    "yahoo_rate_limit": ("PLATFORM_YAHOO_RATE_LIMIT", "2000/3600"),
    "state_dir": ("PLATFORM_RATE_LIMIT_DIR", "data/ratelimit"),
    "retry_attempts": ("PLATFORM_RETRY_ATTEMPTS", "5"),
    "retry_base_delay": ("PLATFORM_RETRY_BASE_DELAY", "0.5"),
    "retry_max_delay": ("PLATFORM_RETRY_MAX_DELAY", "30"),
    "max_cooldown": ("PLATFORM_MAX_COOLDOWN", "120"),
    "request_timeout": ("PLATFORM_REQUEST_TIMEOUT", "30"),
}
SECRETS = ("ccxt_api_key", "ccxt_api_secret", "coingecko_api_key")


@dataclass(frozen=True)
class MarketSettings:
    crypto_source: str
    stock_source: str
    crypto_fallback: str
    ccxt_exchange: str
    ccxt_api_url: str | None
    coingecko_api_url: str
    yahoo_api_url: str | None
    ccxt_rate_limit: str | None
    coingecko_rate_limit: RateLimit
    yahoo_rate_limit: RateLimit
    state_dir: Path
    policy: RetryPolicy
    request_timeout: float
    ccxt_api_key: str | None = field(default=None, repr=False)
    ccxt_api_secret: str | None = field(default=None, repr=False)
    coingecko_api_key: str | None = field(default=None, repr=False)


def resolve(values: dict[str, object], environ: dict[str, str] | None = None) -> MarketSettings:
    """Settings from resource ``values`` (None = unset), then ``environ``, then the defaults."""
    env = os.environ if environ is None else environ

    def get(name: str) -> str | None:
        value = values.get(name)
        if value is not None and value != "":
            return str(value)
        var, default = ENV[name]
        raw = env.get(var)
        return raw if raw not in (None, "") else default

    def number(name: str, kind=float):
        raw = get(name)
        try:
            value = kind(raw)
        except (TypeError, ValueError):
            raise ValueError(f"{ENV[name][0]}={raw!r} is not a number") from None
        if value < 0 or (kind is int and value < 1):
            raise ValueError(f"{ENV[name][0]}={raw!r} is out of range")
        return value

    def choice(name: str, allowed: tuple[str, ...]) -> str:
        value = (get(name) or "").lower()
        if value not in allowed:
            raise ValueError(f"{ENV[name][0]}={value!r}; expected one of {', '.join(allowed)}")
        return value

    def rate(name: str) -> RateLimit:
        try:
            return RateLimit.parse(get(name) or "")
        except ValueError as exc:
            raise ValueError(f"{ENV[name][0]}: {exc}") from None

    state_dir = Path(get("state_dir") or "").expanduser()
    ccxt_rate = get("ccxt_rate_limit")
    if ccxt_rate is not None:
        rate("ccxt_rate_limit")  # validated now, applied per exchange
    return MarketSettings(
        crypto_source=choice("crypto_source", CRYPTO_SOURCES),
        stock_source=choice("stock_source", STOCK_SOURCES),
        crypto_fallback=choice("crypto_fallback", FALLBACKS),
        ccxt_exchange=(get("ccxt_exchange") or "").lower(),
        ccxt_api_url=get("ccxt_api_url"),
        ccxt_api_key=get("ccxt_api_key"),
        ccxt_api_secret=get("ccxt_api_secret"),
        coingecko_api_url=get("coingecko_api_url") or "",
        coingecko_api_key=get("coingecko_api_key"),
        yahoo_api_url=get("yahoo_api_url"),
        ccxt_rate_limit=ccxt_rate,
        coingecko_rate_limit=rate("coingecko_rate_limit"),
        yahoo_rate_limit=rate("yahoo_rate_limit"),
        state_dir=state_dir if state_dir.is_absolute() else PROJECT_ROOT / state_dir,
        policy=RetryPolicy(
            attempts=number("retry_attempts", int),
            base_delay=number("retry_base_delay"),
            max_delay=number("retry_max_delay"),
            max_cooldown=number("max_cooldown"),
        ),
        request_timeout=number("request_timeout"),
    )
