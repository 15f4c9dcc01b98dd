"""Crypto candles from any ccxt exchange (Binance by default), fetched by time.

ccxt is imported when a source is built, never with the definitions. The exchange object is
ccxt's own, with four things changed:

* its limiter is the platform's **shared token bucket** (ccxt's own only spaces requests inside
  one process); ccxt still prices each endpoint, so Binance's request weight is respected;
* every response's status is kept, because ccxt turns a JSON 5xx from Binance into a plain
  ``ExchangeError`` that would otherwise look fatal;
* with an API base URL set, **every** REST endpoint points there and any request elsewhere is
  refused before it leaves the process;
* loading markets asks only for spot markets, with no currencies or margin pairs.

Markets are cached for :data:`MARKETS_TTL` in the state folder, so a process does not pay the
exchange's heaviest request (``exchangeInfo``, weight 20) before its first candle.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import json
import logging
import os
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pandas as pd

from platform_pkg.market.candles import candles_frame, interval_delta, to_ms
from platform_pkg.market.catalogue import exchange_market
from platform_pkg.market.http import Gate
from platform_pkg.market.ratelimit import SharedTokenBucket
from platform_pkg.market.retry import (
    FATAL,
    THROTTLED,
    TRANSIENT,
    RetryPolicy,
    Verdict,
    call_with_retries,
    parse_retry_after,
    verdict_for_status,
)
from platform_pkg.market.source import Clock, RequestMeter, UnknownSymbolError

MARKETS_TTL = 6 * 3600.0
# ccxt prices Binance endpoints at 0.2 per unit of Binance request weight.
_WEIGHT_PER_COST = {"binance": 5.0, "binanceus": 5.0}


def default_rate_limit(exchange_id: str) -> str:
    """Binance's published IP limit (6,000 request weight a minute); for other exchanges, the
    request rate ccxt documents for them."""
    if exchange_id in _WEIGHT_PER_COST:
        return "6000/60"
    ccxt = importlib.import_module("ccxt")
    rate_limit_ms = getattr(ccxt, exchange_id)().rateLimit or 1000
    return f"{60000 / rate_limit_ms:g}/60"


@functools.cache
def _platform_class(base: type) -> type:
    """``base`` (a ccxt exchange class) with the platform's limiter, status and URL guard."""

    class PlatformExchange(base):  # type: ignore[misc, valid-type]
        platform_gate: Any = None
        platform_base: str | None = None
        platform_weight: float = 1.0
        last_status: int | None = None

        def throttle(self, cost=None):
            self.last_status = None
            if self.platform_gate is not None:
                self.platform_gate((1.0 if cost is None else cost) * self.platform_weight)

        def on_rest_response(self, code, reason, url, method, headers, body, *rest):
            self.last_status = code
            return super().on_rest_response(code, reason, url, method, headers, body, *rest)

        def parse_trades(self, trades, market=None, since=None, limit=None, params=None):
            """Every row parsed on its own, in the order received: a row ccxt cannot parse is
            kept with the reason (``platform_error``) instead of failing the whole page, and
            nothing is filtered by ``since``/``limit`` (the caller decides what is new)."""
            parsed = []
            for raw in self.to_array(trades):
                try:
                    parsed.append(self.parse_trade(self.extend(raw, params or {}), market))
                except Exception as exc:  # noqa: BLE001 - a malformed row, rejected later
                    parsed.append({"id": None, "info": raw, "platform_error": repr(exc)})
            return parsed

        def fetch(self, url, method="GET", headers=None, body=None):
            if self.platform_base and not url.startswith(self.platform_base):
                ccxt = importlib.import_module("ccxt")
                raise ccxt.ExchangeError(
                    f"{self.id}: refusing {method} {url.split('?', 1)[0]}: the API base URL "
                    f"sends every request to {self.platform_base}"
                )
            return super().fetch(url, method, headers, body)

    PlatformExchange.__name__ = base.__name__
    return PlatformExchange


def repoint(urls: Any, base: str) -> Any:
    """Every URL in ccxt's ``urls['api']`` moved to ``base`` (its path kept after base's path)."""
    if isinstance(urls, dict):
        return {key: repoint(value, base) for key, value in urls.items()}
    if isinstance(urls, str) and urls.startswith(("http://", "https://")):
        return base.rstrip("/") + urlsplit(urls).path
    return urls


class CcxtSource:
    """OHLCV from a ccxt exchange. Secrets live only inside the exchange object, never in repr."""

    page_limit = 1000

    def __init__(
        self,
        exchange_id: str,
        *,
        clock: Clock,
        meter: RequestMeter,
        bucket: SharedTokenBucket,
        policy: RetryPolicy,
        timeout: float,
        state_dir: Path,
        api_url: str | None = None,
        api_key: str | None = None,
        api_secret: str | None = None,
        api_password: str | None = None,
    ):
        ccxt = importlib.import_module("ccxt")
        # ccxt logs every request's headers (the API key among them) at DEBUG.
        ccxt_log = logging.getLogger("ccxt")
        if ccxt_log.getEffectiveLevel() < logging.INFO:
            ccxt_log.setLevel(logging.INFO)
        if exchange_id not in ccxt.exchanges:
            raise ValueError(f"ccxt has no exchange {exchange_id!r} (PLATFORM_CCXT_EXCHANGE)")
        self.name = f"ccxt:{exchange_id}"
        self.clock, self.meter, self.bucket, self.policy = clock, meter, bucket, policy
        self.api_url = api_url.rstrip("/") if api_url else None
        self._secrets = (api_key, api_secret, api_password)
        self._state_dir = state_dir
        config: dict[str, Any] = {
            "enableRateLimit": True,  # so ccxt calls throttle(), which is ours
            "timeout": int(timeout * 1000),
            "options": {
                "defaultType": "spot",
                "fetchMarkets": {"types": ["spot"]},
                "fetchCurrencies": False,
                "fetchMargins": False,
            },
        }
        if api_key:
            config["apiKey"] = api_key
        if api_secret:
            config["secret"] = api_secret
        if api_password:
            config["password"] = api_password
        exchange = _platform_class(getattr(ccxt, exchange_id))(config)
        exchange.has = {**exchange.has, "fetchCurrencies": False}
        exchange.platform_gate = Gate(self.name, bucket, meter, policy)
        exchange.platform_weight = _WEIGHT_PER_COST.get(exchange_id, 1.0)
        if self.api_url:
            exchange.urls = {**exchange.urls, "api": repoint(exchange.urls["api"], self.api_url)}
            exchange.platform_base = self.api_url
        self.exchange = exchange
        self._ccxt = ccxt

    def __repr__(self) -> str:
        return f"CcxtSource({self.name}, api_url={self.api_url or 'default'})"

    # -- markets ---------------------------------------------------------------------------
    def _markets_file(self) -> Path:
        where = hashlib.sha256((self.api_url or "default").encode()).hexdigest()[:12]
        return self._state_dir / f"markets-{self.exchange.id}-{where}.json"

    def _load_markets(self, fresh: bool = False) -> None:
        path = self._markets_file()
        if not fresh and path.exists() and time.time() - path.stat().st_mtime < MARKETS_TTL:
            try:
                self.exchange.set_markets(json.loads(path.read_text()))
                return
            except (ValueError, KeyError, TypeError):
                pass  # a damaged cache is simply refetched
        markets = self.retrying(lambda: self.exchange.load_markets(reload=True), "loading markets")
        slim = [{k: v for k, v in m.items() if k != "info"} for m in markets.values()]
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(slim))
        tmp.replace(path)

    def market(self, symbol: str) -> str:
        unified = exchange_market(symbol)
        if not self.exchange.markets:
            self._load_markets()
        if unified not in self.exchange.markets:
            self._load_markets(fresh=True)  # a listing newer than the cache
        if unified not in self.exchange.markets:
            raise UnknownSymbolError(f"{self.exchange.id} does not list {unified} (for {symbol})")
        return unified

    # -- candles ---------------------------------------------------------------------------
    def earliest(self, symbol: str, interval: str) -> datetime | None:
        """None: the exchange serves from the pair's listing (an earlier range is empty).
        Raises :class:`UnknownSymbolError` for a pair it does not list, as the demo market does."""
        self.market(symbol)
        return None

    def grid(self, interval: str) -> timedelta:
        return interval_delta(interval)

    def fetch_page(
        self, symbol: str, interval: str, start: datetime, end: datetime
    ) -> pd.DataFrame:
        market = self.market(symbol)
        since, until = to_ms(start), to_ms(end) - 1
        rows = self.retrying(
            lambda: self.exchange.fetch_ohlcv(
                market, interval, since=since, limit=self.page_limit, params={"until": until}
            ),
            f"{symbol} {interval} [{start:%Y-%m-%d %H:%M}, {end:%Y-%m-%d %H:%M})",
        )
        return self._frame(rows, interval)

    def _frame(self, rows: list[list], interval: str) -> pd.DataFrame:
        now_ms, step_ms = to_ms(self.clock()), int(interval_delta(interval).total_seconds() * 1000)
        tuples = [
            (r[0], *(float("nan") if v is None else v for v in r[1:6]), r[0] + step_ms <= now_ms)
            for r in rows
            if r and r[0] is not None
        ]
        return candles_frame(tuples, source=self.name)

    # -- faults ----------------------------------------------------------------------------
    def retrying(self, request, what: str):
        """``request()`` with the platform's retries, cooldowns and redacted failures."""
        return call_with_retries(
            request,
            classify=self._classify,
            policy=self.policy,
            bucket=self.bucket,
            on_throttled=lambda: self.meter.throttle(self.name),
            what=what,
            secrets=self._secrets,
        )

    def _classify(self, exc: BaseException) -> Verdict:
        ccxt = self._ccxt
        status = self.exchange.last_status
        headers = self.exchange.last_response_headers or {}
        retry_after = headers.get("Retry-After") if hasattr(headers, "get") else None
        if status is not None:
            verdict = verdict_for_status(status, retry_after)
            if verdict is not None:
                return Verdict(verdict.kind, verdict.retry_after, f"{verdict.detail}")
        if isinstance(exc, ccxt.DDoSProtection | ccxt.RateLimitExceeded):
            return Verdict(THROTTLED, parse_retry_after(retry_after), type(exc).__name__)
        if isinstance(exc, ccxt.NetworkError):  # timeouts, resets, 5xx without a status
            return Verdict(TRANSIENT, None, type(exc).__name__)
        return Verdict(FATAL)
