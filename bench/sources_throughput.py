"""Throughput of a one-year hourly backfill of 10 crypto symbols from a local Binance-dialect server
under a rate limit: wall time against the time the rate limit alone imposes.

The real ccxt library fetches from platform_tests/fakes/binance.py (through PLATFORM_CCXT_API_URL),
and the server enforces the same request-weight limit per minute as the client's shared bucket
(answering 429 + Retry-After past it, as Binance does), so a run that overruns shows up as 429s.
The ingestion and the IO manager's own batch-write loop run as in a step (pages committed with
their watermarks, one DuckDB transaction each), without Dagster's run machinery: a ranged run over
3,650 date partitions would mostly measure Dagster's per-partition events (see year_backfill.py).

The time the limit imposes is the least any client could take for the weight sent:
(weight − burst) / refill rate, the bucket's burst being 10 % of the limit.

    python bench/sources_throughput.py [LIMIT ...]     # default: 6000/60 600/60 300/60
"""

from __future__ import annotations

import sys
import tempfile
import time
import warnings
from datetime import UTC, datetime
from pathlib import Path

import _common

sys.path.insert(0, str(_common.ROOT))
warnings.filterwarnings("ignore")

from platform_pkg.market.demo import DemoMarket  # noqa: E402
from platform_pkg.market.ratelimit import RateLimit  # noqa: E402
from platform_pkg.market.resources import MarketData  # noqa: E402
from platform_pkg.partitions import SymbolWindow  # noqa: E402
from platform_pkg.prices.assets import prices_1h  # noqa: E402
from platform_pkg.prices.ingest import PriceIngestion  # noqa: E402
from platform_pkg.warehouse.io_manager import DuckDBUpsertIOManager, table_spec  # noqa: E402
from platform_pkg.warehouse.resources import Warehouse  # noqa: E402
from platform_tests.fakes.binance import FakeBinance  # noqa: E402

BASES = ["BTC", "ETH", "SOL", "XRP", "ADA", "DOGE", "AVAX", "DOT", "LINK", "LTC"]
DEMO = ["BTC-USDT", "ETH-USDT", "SOL-USDT"]
START, END = datetime(2025, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC)
NOW = datetime(2026, 6, 1, tzinfo=UTC)


def measure(limit_text: str) -> dict:
    limit = RateLimit.parse(limit_text)
    pairs = {f"{b}USDT": (b, "USDT") for b in BASES}
    draws = {f"{b}USDT": DEMO[i % 3] for i, b in enumerate(BASES)}
    demo = DemoMarket(clock=lambda: NOW)
    per_minute = int(limit.units * 60 / limit.seconds)
    with (
        tempfile.TemporaryDirectory() as tmpdir,
        FakeBinance(demo, pairs, draws=draws, weight_limit=per_minute) as fake,
    ):
        tmp = Path(tmpdir)
        warehouse = Warehouse(path=str(tmp / "warehouse.duckdb"))
        market = MarketData(
            crypto_source="ccxt",
            crypto_fallback="none",
            ccxt_api_url=fake.url,
            ccxt_rate_limit=limit_text,
            state_dir=str(tmp / "sources"),
            now=NOW.isoformat(),
        )
        sources = []

        def source_for(symbol, meter):
            sources.append(market.source_for(symbol, meter))
            return sources[-1]

        stream = PriceIngestion(
            data_type="prices_1h",
            interval="1h",
            windows=[SymbolWindow(f"{b}-USDT", START, END) for b in BASES],
            source_for=source_for,
            read_coverage=warehouse.coverage,
            now=NOW,
            run_id="bench",
        )
        spec = table_spec(dict(prices_1h.metadata_by_key[prices_1h.key]), "prices_1h")
        started = time.perf_counter()
        DuckDBUpsertIOManager(warehouse=warehouse)._commit_stream(spec, stream, "bench")
        wall = time.perf_counter() - started
        stored = warehouse.query("SELECT count(*) AS n FROM prices_1h")["n"].iloc[0]
        waited = sum(s.bucket.waited for s in sources)
        weight = float(sum(stream.meter.units.values()))
        imposed = max(0.0, (weight - limit.capacity) / limit.refill_per_second)
        return {
            "limit": limit_text,
            "symbols": len(BASES),
            "candles_stored": int(stored),
            "requests": stream.meter.total,
            "weight": weight,
            "server_requests": len(fake.requests),
            "http_429": fake.throttled,
            "wall_s": round(wall, 2),
            "limit_imposed_s": round(imposed, 2),
            "waited_for_tokens_s": round(waited, 2),
            "wall_over_limit": round(wall / imposed, 3) if imposed else None,
            "overhead_s": round(wall - imposed, 2),
            "candles_per_s": round(stored / wall),
        }


def main() -> None:
    for limit in sys.argv[1:] or ["6000/60", "600/60", "300/60"]:
        figures = measure(limit)
        print(figures)
        _common.record("sources_throughput", figures)


if __name__ == "__main__":
    main()
