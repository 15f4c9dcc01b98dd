"""Crypto prices from CoinGecko's market chart API (``/coins/{id}/market_chart/range``), on httpx.

CoinGecko serves **price samples, not candles**: ``[time, price]`` points whose spacing depends on
the length of the range asked for (5-minutely for the last day, hourly for 2–90 days, daily at
00:00 UTC beyond), at times that are not on the hour (e.g. 10:00:37). This source always asks for
2–89 days, so it gets hourly samples, and turns them into rows honestly:

* a candle's **open / close** are the first / last sample inside it and its **high / low** the
  largest / smallest sample — so an hourly row is usually one sample (open = high = low = close)
  and a daily row spans ~24 samples; the true intraday extremes are wider than these;
* **volume is null**: CoinGecko's ``total_volumes`` is a rolling 24-hour total, not the candle's;
* prices of ``*-USDT`` / ``*-USDC`` pairs are CoinGecko's **USD** price (the quote's peg);
* a candle whose period has not ended yet is not final.

The demo (free) plan serves the last 365 days only; a key for the pro API (``pro-api`` in the base
URL) lifts that. The API key travels in a header, never in the URL.

A pair's coin is its ticker's coin in the asset catalogue (the best market-cap rank among coins
sharing it). Without a catalogue, the seed's long-listed coins, then ``/coins/list``, asked once
per source (per run) and counted like any request: a ticker only one coin has is that coin.
The source also reads the coin directory for the catalogue (``/coins/list``, ``/coins/markets``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from platform_pkg.market.candles import candles_frame, ceil_time, interval_delta, to_ms
from platform_pkg.market.catalogue import coingecko_pair, coingecko_seed
from platform_pkg.market.http import Gate, JsonApi, classify_http
from platform_pkg.market.ratelimit import SharedTokenBucket
from platform_pkg.market.retry import RetryPolicy, SourceUnavailable, call_with_retries
from platform_pkg.market.source import Clock, RequestMeter, UnknownSymbolError

DEFAULT_URL = "https://api.coingecko.com/api/v3"
FREE_HISTORY = timedelta(days=365)
MAX_SPAN = timedelta(days=89)  # hourly samples up to 90 days
MIN_SPAN = timedelta(days=2, hours=1)  # shorter ranges near "now" come 5-minutely
MARKETS_PAGE = 250  # the most /coins/markets serves a page


def catalogue_coin(ticker: str) -> str | None:
    """The coin id the asset catalogue in the platform's warehouse gives ``ticker``, if any."""
    from platform_pkg.catalog.lookup import StoredCatalogue

    return StoredCatalogue().coingecko_id(ticker)


class CoinGeckoSource:
    name = "coingecko"
    page_limit = int(MAX_SPAN / timedelta(hours=1))
    volume_required = False

    def __init__(
        self,
        *,
        clock: Clock,
        meter: RequestMeter,
        bucket: SharedTokenBucket,
        policy: RetryPolicy,
        timeout: float,
        base_url: str | None = None,
        api_key: str | None = None,
        catalogue: Callable[[str], str | None] = catalogue_coin,
    ):
        self.base_url = (base_url or DEFAULT_URL).rstrip("/")
        self.catalogue = catalogue
        self._coins: dict[str, str | None] = {}  # ticker → coin id, as resolved in this run
        self._listed: dict[str, list[str]] | None = None  # /coins/list by ticker, once asked
        self.pro = "pro-api." in self.base_url
        self.clock, self.meter, self.bucket, self.policy = clock, meter, bucket, policy
        headers = {"accept": "application/json"}
        if api_key:
            headers["x-cg-pro-api-key" if self.pro else "x-cg-demo-api-key"] = api_key
        self._secrets = (api_key,)
        self.api = JsonApi(
            self.base_url,
            Gate(self.name, bucket, meter, policy),
            timeout=timeout,
            headers=headers,
            secrets=self._secrets,
        )

    def __repr__(self) -> str:
        return f"CoinGeckoSource({self.base_url})"

    def coin(self, symbol: str) -> tuple[str, str]:
        pair = coingecko_pair(symbol)
        if pair is None:
            raise UnknownSymbolError(f"CoinGecko has no coin mapped for {symbol}")
        ticker, vs = pair
        if ticker not in self._coins:
            self._coins[ticker] = (
                self.catalogue(ticker) or coingecko_seed().get(ticker) or self._listed_coin(ticker)
            )
        coin = self._coins[ticker]
        if coin is None:
            raise UnknownSymbolError(f"CoinGecko has no coin mapped for {symbol}")
        return coin, vs

    def _listed_coin(self, ticker: str) -> str | None:
        if self._listed is None:
            self._listed = {}
            for row in self.coins_list():
                if isinstance(row, dict) and isinstance(row.get("symbol"), str):
                    self._listed.setdefault(row["symbol"].upper(), []).append(str(row.get("id")))
        ids = self._listed.get(ticker, [])
        if len(ids) > 1:
            raise UnknownSymbolError(
                f"CoinGecko lists {len(ids)} coins with the ticker {ticker} ({', '.join(ids[:5])}"
                f"{', …' if len(ids) > 5 else ''}): the asset catalogue (asset_catalog) picks the "
                "one with the best market-cap rank; materialise it"
            )
        return ids[0] if ids else None

    # -- the coin directory -----------------------------------------------------------------
    def coins_list(self) -> list[Any]:
        """Every coin CoinGecko lists (``id``, ``symbol``, ``name``): one request."""
        return self._directory("/coins/list", {}, "the coin list")

    def coins_markets(self, page: int, per_page: int = MARKETS_PAGE) -> list[Any]:
        """Page ``page`` (from 1) of the coins by market cap, with ``market_cap_rank``."""
        params = {
            "vs_currency": "usd",
            "order": "market_cap_desc",
            "per_page": per_page,
            "page": page,
        }
        return self._directory("/coins/markets", params, f"coins by market cap, page {page}")

    def _directory(self, path: str, params: dict[str, Any], what: str) -> list[Any]:
        data = call_with_retries(
            lambda: self.api.get(path, params),
            classify=classify_http,
            policy=self.policy,
            bucket=self.bucket,
            on_throttled=lambda: self.meter.throttle(self.name),
            what=what,
            secrets=self._secrets,
        )
        if not isinstance(data, list):
            raise SourceUnavailable(
                self.name, f"{self.name}: {what}: expected a JSON list, got {type(data).__name__}"
            )
        return data

    def earliest(self, symbol: str, interval: str) -> datetime | None:
        self.coin(symbol)  # an unmapped coin is an unknown symbol
        if self.pro:
            return None
        return ceil_time(self.clock() - FREE_HISTORY + timedelta(hours=1), interval)

    def grid(self, interval: str) -> timedelta:
        return interval_delta(interval)

    def fetch_page(
        self, symbol: str, interval: str, start: datetime, end: datetime
    ) -> pd.DataFrame:
        coin, vs = self.coin(symbol)
        earliest = self.earliest(symbol, interval)
        if earliest is not None and start < earliest:
            raise SourceUnavailable(
                self.name,
                f"{self.name}: {symbol} {interval} from {start:%Y-%m-%d %H:%M}: the free plan "
                f"serves only the last 365 days (from {earliest:%Y-%m-%d %H:%M})",
            )
        stop = min(end, start + MAX_SPAN)
        params = {
            "vs_currency": vs,
            "from": int(min(start, stop - MIN_SPAN).timestamp()),
            "to": int(stop.timestamp()),
        }
        data = call_with_retries(
            lambda: self.api.get(f"/coins/{coin}/market_chart/range", params),
            classify=classify_http,
            policy=self.policy,
            bucket=self.bucket,
            on_throttled=lambda: self.meter.throttle(self.name),
            what=f"{symbol} {interval} [{start:%Y-%m-%d %H:%M}, {stop:%Y-%m-%d %H:%M})",
            secrets=self._secrets,
        )
        frame = self._candles(data.get("prices") or [], interval)
        return frame[(frame["ts"] >= start) & (frame["ts"] < stop)].reset_index(drop=True)

    def _candles(self, prices: list, interval: str) -> pd.DataFrame:
        points = pd.DataFrame(
            [p[:2] for p in prices if isinstance(p, list | tuple) and len(p) >= 2],
            columns=["t", "price"],
        )
        points["t"] = pd.to_numeric(points["t"], errors="coerce")
        points["price"] = pd.to_numeric(points["price"], errors="coerce")
        points = points.dropna(subset=["t"]).sort_values("t", kind="stable")
        if points.empty:
            return candles_frame([], source=self.name)
        step = int(interval_delta(interval).total_seconds() * 1000)
        points["open_ms"] = (points["t"].astype("int64") // step) * step
        # A NaN sample must poison its candle (so it is rejected), not vanish from max/min.
        grouped = points.groupby("open_ms", sort=True)["price"]
        has_nan = grouped.apply(lambda s: s.isna().any())
        ohlc = pd.DataFrame(
            {
                "open": grouped.first(),
                "high": grouped.max(),
                "low": grouped.min(),
                "close": grouped.last(),
            }
        )
        ohlc.loc[has_nan, ["open", "high", "low", "close"]] = np.nan
        now_ms = to_ms(self.clock())
        rows = [
            (int(ts), r.open, r.high, r.low, r.close, np.nan, ts + step <= now_ms)
            for ts, r in ohlc.iterrows()
        ]
        return candles_frame(rows, source=self.name)
