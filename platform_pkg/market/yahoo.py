"""Stocks, ETFs, FX (``EURUSD=X``) and commodity futures (``GC=F``) from Yahoo, through yfinance.

yfinance is imported when a source is built. All of its HTTP goes through one session of ours
(of yfinance's own backend, ``curl_cffi``), which takes each request's token from the shared
bucket, counts it, optionally sends it to another base URL (tests, proxies), and turns 429 / 5xx
into verdicts the retry loop understands — before yfinance's own cookie-juggling retries.

What Yahoo serves, and what is stored:

* **hourly bars** only for the **last 730 days** (``earliest`` says so; older ranges are left
  empty with a log line). US equity hours open at half past (14:30 UTC), so hourly open times are
  checked against a 30-minute grid; the session's last bar may be shorter than an hour;
* **daily bars** are stored under their **trading date** at 00:00 UTC (Yahoo stamps them with the
  session's open in the exchange's time zone);
* **OHLC as Yahoo serves it with ``auto_adjust=False``**: adjusted for splits that happened before
  the request (Yahoo has no truly unadjusted series), *not* for dividends. The dividends and
  splits seen in a window are returned as ``dividend`` / ``split`` columns and kept in the
  ``corporate_actions`` table so users can adjust (or undo split-adjustment) themselves;
* a bar is **final** once its hour has passed or its session (Yahoo's ``currentTradingPeriod``)
  has closed; a daily bar once its session has closed.
"""

from __future__ import annotations

import importlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pandas as pd

from platform_pkg.market.candles import (
    CANDLE_COLUMNS,
    SOURCE_GRIDS,
    ceil_time,
    interval_delta,
)
from platform_pkg.market.http import Gate, HttpStatusError, classify_http
from platform_pkg.market.ratelimit import SharedTokenBucket
from platform_pkg.market.retry import (
    FATAL,
    RetryPolicy,
    Verdict,
    call_with_retries,
    verdict_for_status,
)
from platform_pkg.market.source import Clock, RequestMeter, UnknownSymbolError

HOURLY_HISTORY = timedelta(days=730)
_COOKIE_HOST = "fc.yahoo.com"  # answers 404 by design while setting the cookie
_SESSIONS: dict[str, type] = {}


def _session_class() -> type:
    """A session of yfinance's HTTP backend (curl_cffi, else requests) whose requests pass the
    gate; built lazily, curl_cffi being heavy."""
    if "session" in _SESSIONS:
        return _SESSIONS["session"]
    try:
        backend = importlib.import_module("curl_cffi.requests")
    except ImportError:  # yfinance falls back to requests too
        backend = importlib.import_module("requests")

    class GatedSession(backend.Session):
        def __init__(self, gate: Gate, base_url: str | None, **kwargs):
            super().__init__(**kwargs)
            self.gate, self.base_url = gate, base_url

        def request(self, method, url, *args, **kwargs):
            parts = urlsplit(url)
            if self.base_url:
                url = self.base_url + parts.path + (f"?{parts.query}" if parts.query else "")
            self.gate()
            response = super().request(method, url, *args, **kwargs)
            verdict = verdict_for_status(response.status_code, response.headers.get("Retry-After"))
            if verdict is not None and parts.hostname != _COOKIE_HOST:
                raise HttpStatusError(verdict, url, response.text)
            return response

    _SESSIONS["session"] = GatedSession
    return GatedSession


class YahooSource:
    name = "yfinance"
    page_limit = 100_000  # Yahoo has no row limit per request; one request serves a window

    def __init__(
        self,
        *,
        clock: Clock,
        meter: RequestMeter,
        bucket: SharedTokenBucket,
        policy: RetryPolicy,
        timeout: float,
        state_dir: Path,
        base_url: str | None = None,
    ):
        self.yf = importlib.import_module("yfinance")
        self.yf.config.debug.hide_exceptions = False  # errors must reach the retry loop
        self.yf.config.network.retries = 0  # the platform retries, with its limiter
        (state_dir / "yfinance").mkdir(parents=True, exist_ok=True)
        self.yf.set_tz_cache_location(str(state_dir / "yfinance"))
        self.clock, self.meter, self.bucket, self.policy = clock, meter, bucket, policy
        self.timeout = timeout
        self.base_url = base_url.rstrip("/") if base_url else None
        gate = Gate(self.name, bucket, meter, policy)
        # Yahoo turns away clients that do not look like a browser (curl_cffi impersonates one).
        curl = _session_class().__mro__[1].__module__.startswith("curl_cffi")
        kwargs: dict[str, Any] = {"impersonate": "chrome"} if curl and not self.base_url else {}
        self.session = _session_class()(gate, self.base_url, **kwargs)

    def __repr__(self) -> str:
        return f"YahooSource({self.base_url or 'yahoo'})"

    def earliest(self, symbol: str, interval: str) -> datetime | None:
        if interval == "1h":
            return ceil_time(self.clock() - HOURLY_HISTORY + timedelta(days=1), "1d")
        return None

    def grid(self, interval: str) -> timedelta:
        return SOURCE_GRIDS[self.name].get(interval) or interval_delta(interval)

    def fetch_page(
        self, symbol: str, interval: str, start: datetime, end: datetime
    ) -> pd.DataFrame:
        # yfinance keeps answers for past ranges in memory; a re-read must reach Yahoo.
        self.yf.data.YfData.cache_get.cache_clear()
        ticker = self.yf.Ticker(symbol, session=self.session)
        # A daily bar is stamped at its session's open in the exchange's zone, which can be the
        # evening before in UTC (FX opens at 00:00 London): ask a day wider, keep by trading date.
        pad = timedelta(days=1) if interval == "1d" else timedelta(0)
        fetch_end = min(end + pad, self.clock()) if interval == "1d" else end
        history = call_with_retries(
            lambda: ticker.history(
                start=start - pad,
                end=fetch_end,
                interval=interval,
                prepost=False,
                actions=True,
                auto_adjust=False,
                back_adjust=False,
                repair=False,
                timeout=self.timeout,
            ),
            classify=self._classify,
            policy=self.policy,
            bucket=self.bucket,
            on_throttled=lambda: self.meter.throttle(self.name),
            what=f"{symbol} {interval} [{start:%Y-%m-%d %H:%M}, {end:%Y-%m-%d %H:%M})",
        )
        frame = self._frame(history, interval, _regular_session(ticker))
        return frame[(frame["ts"] >= start) & (frame["ts"] < end)].reset_index(drop=True)

    def _frame(
        self, history: pd.DataFrame, interval: str, session: tuple[datetime, datetime] | None
    ) -> pd.DataFrame:
        if history is None or history.empty:
            return pd.DataFrame(columns=[*CANDLE_COLUMNS, "dividend", "split"])
        index = pd.DatetimeIndex(history.index)
        if interval == "1d":
            ts = pd.DatetimeIndex(pd.to_datetime(index.date)).tz_localize(UTC)
        else:
            ts = index.tz_convert(UTC)
        now = pd.Timestamp(self.clock())
        step = pd.Timedelta(interval_delta(interval))
        ends = ts + step
        if session is not None:
            open_, close = pd.Timestamp(session[0]), pd.Timestamp(session[1])
            # Bars of the current session end with it (the last bar may be shorter).
            in_session = (ts >= open_.floor("D")) & (ts < close)  # the session's own bars
            ends = ends.where(~in_session | (ends <= close), close)
            if interval == "1d":
                ends = ends.where(~in_session, close)
        frame = pd.DataFrame(
            {
                "ts": ts,
                "open": history["Open"].to_numpy(dtype="float64"),
                "high": history["High"].to_numpy(dtype="float64"),
                "low": history["Low"].to_numpy(dtype="float64"),
                "close": history["Close"].to_numpy(dtype="float64"),
                "volume": history["Volume"].to_numpy(dtype="float64"),
                "is_final": (ends <= now),
                "source": self.name,
                "dividend": _column(history, "Dividends"),
                "split": _column(history, "Stock Splits"),
            }
        )
        return frame.sort_values("ts").drop_duplicates("ts", keep="last").reset_index(drop=True)

    def _classify(self, exc: BaseException) -> Verdict:
        verdict = classify_http(exc)
        if isinstance(exc, HttpStatusError) and verdict.kind == FATAL:
            if "404" in verdict.detail or "No data found" in str(exc):
                raise UnknownSymbolError(f"Yahoo does not list it: {exc}") from None
        if type(exc).__name__ == "YFRateLimitError":
            return Verdict("throttled", None, "Yahoo rate limit")
        if type(exc).__name__ in ("YFPricesMissingError", "YFTzMissingError"):
            raise UnknownSymbolError(f"Yahoo has no prices for it: {exc}") from None
        return verdict


def _column(history: pd.DataFrame, name: str):
    if name in history.columns:
        return history[name].fillna(0.0).to_numpy(dtype="float64")
    return 0.0


def _regular_session(ticker: Any) -> tuple[datetime, datetime] | None:
    """The open and close (UTC) of the session Yahoo calls current, if it said."""
    try:
        period = ticker.history_metadata["currentTradingPeriod"]["regular"]
        bounds = [period["start"], period["end"]]
    except (KeyError, TypeError, ValueError, AttributeError):
        return None
    out = []
    for value in bounds:
        moment = (
            pd.Timestamp(value, unit="s", tz=UTC) if isinstance(value, int) else pd.Timestamp(value)
        )
        out.append(moment.tz_convert(UTC).to_pydatetime())
    return out[0], out[1]
