"""A local server answering yfinance's requests the way Yahoo's chart API does.

The responses follow the wire format of recorded ``/v8/finance/chart`` answers (``meta`` with the
exchange's time zone and ``currentTradingPeriod``, per-day ``tradingPeriods`` for intraday ranges,
``timestamp``, ``indicators.quote`` / ``adjclose``, ``events`` for dividends and splits) — with
values from the demo market, so a test knows what Yahoo "holds". US equity hours open at half past
(14:30 UTC in winter) and a daily bar is stamped with the session's open, as Yahoo does. Also the
cookie (``fc.yahoo.com`` → 404 + cookie) and crumb endpoints yfinance calls first.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd

from platform_pkg.market.demo import DEMO_LISTINGS, DemoMarket
from platform_tests.fakes.server import FakeServer, Request, Response

HALF_HOUR = timedelta(minutes=30)
# What Yahoo says about each demo listing: zone, exchange, instrument, the session's UTC hours.
LISTINGS = {
    "AAPL": ("America/New_York", "NMS", "EQUITY", -18000),
    "MSFT": ("America/New_York", "NMS", "EQUITY", -18000),
    "SPY": ("America/New_York", "PCX", "ETF", -18000),
}
NOT_FOUND = {
    "chart": {
        "result": None,
        "error": {"code": "Not Found", "description": "No data found, symbol may be delisted"},
    }
}


class FakeYahoo(FakeServer):
    def __init__(self, market: DemoMarket):
        super().__init__(self.route)
        self.market = market
        self.dividends: dict[tuple[str, str], float] = {}  # (symbol, YYYY-MM-DD) → amount
        self.splits: dict[tuple[str, str], tuple[int, int]] = {}

    def now(self) -> datetime:
        return self.market.clock()

    def route(self, request: Request) -> Response:
        if request.path == "/":
            return Response(
                404, "<html>not found</html>", {"Set-Cookie": "A3=d=fake; Path=/"}, "text/html"
            )
        if request.path == "/v1/test/getcrumb":
            return Response(body="fakecrumb0", content_type="text/plain")
        if request.path.startswith("/v8/finance/chart/"):
            return self._chart(request.path.rsplit("/", 1)[-1], request.query)
        return Response(404, "<html>not found</html>", content_type="text/html")

    # -- what Yahoo "holds" -------------------------------------------------------------------
    def bars(self, symbol: str, interval: str, start: datetime, end: datetime) -> pd.DataFrame:
        """Bars opening in [start, end) with Yahoo's time stamps (UTC)."""
        if interval == "1h":
            frame = self.market.candles(symbol, "1h", start - HALF_HOUR, end - HALF_HOUR)
            frame["ts"] = frame["ts"] + HALF_HOUR
        else:
            frame = self.market.candles(symbol, "1d", start - timedelta(days=1), end)
            frame["ts"] = frame["ts"] + timedelta(hours=14, minutes=30)
        return frame[(frame["ts"] >= start) & (frame["ts"] < end)].reset_index(drop=True)

    def _session(self, day: datetime) -> dict:
        zone, _, _, offset = LISTINGS.get("AAPL")
        open_ = int((day + timedelta(hours=14, minutes=30)).timestamp())
        close = int((day + timedelta(hours=21)).timestamp())
        return {"timezone": "EST", "start": open_, "end": close, "gmtoffset": offset}

    def _chart(self, symbol: str, q: dict[str, str]) -> Response:
        if symbol not in LISTINGS or symbol not in DEMO_LISTINGS:
            return Response(404, NOT_FOUND)
        zone, exchange, kind, offset = LISTINGS[symbol]
        interval = q.get("interval", "1d")
        now = self.now()
        if "range" in q:  # yfinance asks range=1d only to learn the time zone
            start, end = now - timedelta(days=1), now
        else:
            start = datetime.fromtimestamp(int(q["period1"]), UTC)
            end = min(datetime.fromtimestamp(int(q["period2"]), UTC), now)
        if interval == "1h" and start < now - timedelta(days=730):
            return Response(
                422,
                {
                    "chart": {
                        "result": None,
                        "error": {
                            "code": "Unprocessable Entity",
                            "description": "1h data not available for startTime. The requested "
                            "range must be within the last 730 days.",
                        },
                    }
                },
            )
        bars = self.bars(symbol, "1h" if interval == "1h" else "1d", start, end)
        today = datetime(now.year, now.month, now.day, tzinfo=UTC)
        session = self._session(today)
        meta = {
            "currency": "USD",
            "symbol": symbol,
            "exchangeName": exchange,
            "fullExchangeName": "NasdaqGS",
            "instrumentType": kind,
            "firstTradeDate": 345479400,
            "regularMarketTime": int(now.timestamp()),
            "hasPrePostMarketData": True,
            "gmtoffset": offset,
            "timezone": "EST",
            "exchangeTimezoneName": zone,
            "regularMarketPrice": float(bars["close"].iloc[-1]) if len(bars) else 100.0,
            "chartPreviousClose": 100.0,
            "priceHint": 2,
            "currentTradingPeriod": {
                "pre": {**session, "start": session["start"] - 19800, "end": session["start"]},
                "regular": session,
                "post": {**session, "start": session["end"], "end": session["end"] + 14400},
            },
            "dataGranularity": interval,
            "range": q.get("range", ""),
            "validRanges": ["1d", "5d", "1mo", "3mo", "6mo", "1y", "2y", "5y", "10y", "ytd", "max"],
        }
        if interval == "1h":
            days = pd.date_range(start.date(), end.date(), freq="D", tz=UTC)
            meta["tradingPeriods"] = [
                [self._session(d.to_pydatetime())] for d in days if d.day_of_week < 5
            ]
        stamps = [int(ts.timestamp()) for ts in bars["ts"]]
        quote = {
            "open": bars["open"].tolist(),
            "high": bars["high"].tolist(),
            "low": bars["low"].tolist(),
            "close": bars["close"].tolist(),
            "volume": [int(v) for v in bars["volume"]],
        }
        result = {"meta": meta, "timestamp": stamps, "indicators": {"quote": [quote]}}
        if interval != "1h":
            result["indicators"]["adjclose"] = [{"adjclose": bars["close"].tolist()}]
        events = self._events(symbol, bars)
        if events:
            result["events"] = events
        return Response(body={"chart": {"result": [result], "error": None}})

    def _events(self, symbol: str, bars: pd.DataFrame) -> dict:
        events: dict = {}
        for ts in bars["ts"]:
            day = ts.strftime("%Y-%m-%d")
            stamp = int(ts.timestamp())
            if (symbol, day) in self.dividends:
                events.setdefault("dividends", {})[str(stamp)] = {
                    "amount": self.dividends[(symbol, day)],
                    "date": stamp,
                }
            if (symbol, day) in self.splits:
                num, den = self.splits[(symbol, day)]
                events.setdefault("splits", {})[str(stamp)] = {
                    "date": stamp,
                    "numerator": num,
                    "denominator": den,
                    "splitRatio": f"{num}:{den}",
                }
        return events
