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
"""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from platform_pkg.market.candles import candles_frame, ceil_time, interval_delta, to_ms
from platform_pkg.market.catalogue import coingecko_coin
from platform_pkg.market.http import Gate, JsonApi, classify_http
from platform_pkg.market.ratelimit import SharedTokenBucket
from platform_pkg.market.retry import RetryPolicy, SourceUnavailable, call_with_retries
from platform_pkg.market.source import Clock, RequestMeter, UnknownSymbolError

DEFAULT_URL = "https://api.coingecko.com/api/v3"
FREE_HISTORY = timedelta(days=365)
MAX_SPAN = timedelta(days=89)  # hourly samples up to 90 days
MIN_SPAN = timedelta(days=2, hours=1)  # shorter ranges near "now" come 5-minutely


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
    ):
        self.base_url = (base_url or DEFAULT_URL).rstrip("/")
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
        mapped = coingecko_coin(symbol)
        if mapped is None:
            raise UnknownSymbolError(f"CoinGecko has no coin mapped for {symbol}")
        return mapped

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
