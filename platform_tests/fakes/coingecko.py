"""A local server speaking CoinGecko's ``/coins/{id}/market_chart/range`` as the API does.

Points are price samples, not candles, at times off the hour (each hour's sample is taken 37 s
after it opens, at that hour's open price in the demo market), with the API's automatic
granularity: 5-minutely for a range within the last day, hourly up to 90 days, daily (00:00 UTC)
beyond; the latest price is appended when the range reaches "now". Keyless and demo-key requests
older than 365 days are refused with CoinGecko's error 10012.

The coin directory too: ``/coins/list`` (every coin in ``directory``, as given: malformed rows
stay malformed) and ``/coins/markets`` (coins by ``ranks``, best first, then the unranked with a
null rank; ``per_page`` at most 250, ``page`` from 1).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np

from platform_pkg.market.demo import DemoMarket
from platform_tests.fakes.server import FakeServer, Request, Response

SAMPLE_OFFSET_MS = 37_000
DAY = 86_400
NAMES = {
    "bitcoin": ("btc", "Bitcoin"),
    "ethereum": ("eth", "Ethereum"),
    "solana": ("sol", "Solana"),
}


class FakeCoinGecko(FakeServer):
    def __init__(self, market: DemoMarket, coins: dict[str, str] | None = None):
        super().__init__(self.route)
        self.market = market
        self.coins = coins or {"bitcoin": "BTC-USDT", "ethereum": "ETH-USDT", "solana": "SOL-USDT"}
        self.nan_samples: set[int] = set()  # sample times (ms) answered with a null price
        self.directory: list = [
            {"id": c, "symbol": s.split("-")[0].lower(), "name": c.title()} | _named(c)
            for c, s in self.coins.items()
        ]
        self.ranks: dict[str, int] = {c: n for n, c in enumerate(self.coins, 1)}

    def now(self) -> datetime:
        return self.market.clock()

    def samples(self, coin: str, frm: int, to: int) -> list[list]:
        """The ``prices`` the API returns for ``from``/``to`` (unix seconds)."""
        symbol = self.coins[coin]
        now = self.now()
        span = to - frm
        start = datetime.fromtimestamp(frm, UTC)
        end = min(datetime.fromtimestamp(to, UTC), now)
        hourly = self.market.candles(symbol, "1h", start - timedelta(hours=1), end)
        opens_ms = hourly["ts"].dt.as_unit("ms").astype("int64").to_numpy()
        hour_opens = dict(zip(opens_ms.tolist(), hourly["open"].tolist(), strict=True))
        if span > 90 * DAY:
            times = [t for t in opens_ms.tolist() if t % (DAY * 1000) == 0]
            points = [[t, hour_opens[t]] for t in times]
        elif span <= DAY and now.timestamp() - to < DAY:
            points = []
            for t in opens_ms.tolist():
                for k in range(12):  # 5-minutely, the hour's open drifting to the next
                    ms = t + k * 300_000 + SAMPLE_OFFSET_MS
                    nxt = hour_opens.get(t + 3_600_000, hour_opens[t])
                    points.append([ms, float(np.interp(k, [0, 12], [hour_opens[t], nxt]))])
        else:
            points = [[t + SAMPLE_OFFSET_MS, hour_opens[t]] for t in opens_ms.tolist()]
        lo, hi = frm * 1000, to * 1000
        points = [p for p in points if lo <= p[0] <= hi and p[0] <= now.timestamp() * 1000]
        if to >= now.timestamp() - 60:
            latest = self.market.candles(symbol, "1h", now - timedelta(hours=1), now)
            if not latest.empty:
                points.append([int(now.timestamp() * 1000), float(latest["close"].iloc[-1])])
        for p in points:
            if p[0] in self.nan_samples:
                p[1] = None
        return points

    def route(self, request: Request) -> Response:
        parts = request.path.strip("/").split("/")
        # /api/v3/coins/{id}/market_chart/range
        if (
            len(parts) == 6
            and parts[:3] == ["api", "v3", "coins"]
            and parts[4:]
            == [
                "market_chart",
                "range",
            ]
        ):
            coin = parts[3]
            if coin not in self.coins:
                return Response(404, {"error": "coin not found"})
            frm, to = int(float(request.query["from"])), int(float(request.query["to"]))
            if (
                frm < self.now().timestamp() - 365 * DAY
                and "x-cg-pro-api-key" not in request.headers
            ):
                return Response(
                    401,
                    {
                        "error": {
                            "status": {
                                "error_code": 10012,
                                "error_message": "Your request exceeds the allowed time range. "
                                "Public API users are limited to querying historical data "
                                "within the past 365 days.",
                            }
                        }
                    },
                )
            prices = self.samples(coin, frm, to)
            return Response(
                body={
                    "prices": prices,
                    "market_caps": [[t, None if p is None else p * 19e6] for t, p in prices],
                    "total_volumes": [[t, 2.5e10] for t, _ in prices],
                }
            )
        if request.path == "/api/v3/coins/list":
            return Response(body=self.directory)
        if request.path == "/api/v3/coins/markets":
            return self._markets(request)
        if request.path == "/api/v3/ping":
            return Response(body={"gecko_says": "(V3) To the Moon!"})
        return Response(404, {"error": "Not found"})

    def _markets(self, request: Request) -> Response:
        q = request.query
        if not q.get("vs_currency"):
            return Response(400, {"error": "Missing parameter vs_currency"})
        per_page, page = min(int(q.get("per_page", 100)), 250), int(q.get("page", 1))
        known = [row for row in self.directory if isinstance(row, dict) and row.get("id")]
        ranked = sorted(
            known, key=lambda row: (row["id"] not in self.ranks, self.ranks.get(row["id"], 0))
        )
        rows = ranked[(page - 1) * per_page : page * per_page]
        return Response(
            body=[
                {
                    "id": row["id"],
                    "symbol": row.get("symbol"),
                    "name": row.get("name"),
                    "market_cap_rank": self.ranks.get(row["id"]),
                    "current_price": 1.0,
                }
                for row in rows
            ]
        )


def _named(coin: str) -> dict:
    if coin not in NAMES:
        return {}
    symbol, name = NAMES[coin]
    return {"symbol": symbol, "name": name}
