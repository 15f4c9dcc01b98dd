"""Requests for an incremental sync of N crypto symbols after a full backfill, against the minimum.

A local Binance-dialect server (platform_tests/fakes/binance.py, the real ccxt library talking to
it through PLATFORM_CCXT_API_URL) holds N pairs. In a temp dir with a fresh warehouse and shared
state folder, one ranged run per interval backfills 30 days of prices_1h and prices_1d for all N
symbols; then the clock moves on (2 h, then 1 day) and the same ranged runs sync incrementally.
Counted from the server's own request log and from the runs' metadata; the minimum is one request
per symbol and interval when nothing is older than the lookback. Each sync runs in a fresh
process-like setting (new source objects; markets come from the shared on-disk cache).

    python bench/sources_incremental.py [N ...]     # default: 1 10
"""

from __future__ import annotations

import sys
import tempfile
import time
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path

import _common

sys.path.insert(0, str(_common.ROOT))  # the local servers live with the tests
warnings.filterwarnings("ignore")

import dagster as dg  # noqa: E402

from platform_pkg.market.demo import DemoMarket  # noqa: E402
from platform_pkg.market.resources import MarketData  # noqa: E402
from platform_pkg.prices.assets import prices_1d, prices_1h  # noqa: E402
from platform_pkg.warehouse.io_manager import DuckDBUpsertIOManager, run_figures  # noqa: E402
from platform_pkg.warehouse.resources import Warehouse  # noqa: E402
from platform_tests.fakes.binance import FakeBinance  # noqa: E402

BASES = ["BTC", "ETH", "SOL", "XRP", "ADA", "DOGE", "AVAX", "DOT", "LINK", "LTC", "TRX", "ATOM"]
DEMO = ["BTC-USDT", "ETH-USDT", "SOL-USDT"]
FIRST, LAST = "2026-10-26", "2026-11-24"
BACKFILL_NOW = datetime(2026, 11, 24, 10, 30, tzinfo=UTC)


def run(instance, tmp: Path, fake: FakeBinance, asset, symbols, now) -> dict:
    warehouse = Warehouse(path=str(tmp / "warehouse.duckdb"))
    market = MarketData(
        crypto_source="ccxt",
        crypto_fallback="none",
        ccxt_api_url=fake.url,
        state_dir=str(tmp / "sources"),
        now=now.isoformat(),
    )
    before = len(fake.requests)
    result = dg.materialize(
        [asset],
        instance=instance,
        resources={
            "warehouse": warehouse,
            "io_manager": DuckDBUpsertIOManager(warehouse=warehouse),
            "market": market,
        },
        tags={
            "dagster/asset_partition_range_start": f"{FIRST}|{symbols[0]}",
            "dagster/asset_partition_range_end": f"{LAST}|{symbols[-1]}",
        },
    )
    assert result.success
    meta = run_figures(result.asset_materializations_for_node(asset.key.path[-1])) or {}
    sent = fake.requests[before:]
    return {
        "server_requests": len(sent),
        "klines": sum(r.path.endswith("klines") for r in sent),
        "exchange_info": sum(r.path.endswith("exchangeInfo") for r in sent),
        "api_requests": meta["api_requests"],
        "weight": meta["api_units"],
        "rows_inserted": meta["rows_inserted"],
        "rows_updated": meta["rows_updated"],
    }


def measure(n: int) -> dict:
    clock = {"now": BACKFILL_NOW}
    demo = DemoMarket(clock=lambda: clock["now"])
    pairs = {f"{b}USDT": (b, "USDT") for b in BASES[:n]}
    draws = {f"{b}USDT": DEMO[i % 3] for i, b in enumerate(BASES[:n])}
    symbols = [f"{b}-USDT" for b in BASES[:n]]
    figures: dict = {"symbols": n, "minimum_per_sync": 2 * n}
    with tempfile.TemporaryDirectory() as tmpdir, FakeBinance(demo, pairs, draws=draws) as fake:
        tmp = Path(tmpdir)
        with dg.instance_for_test() as instance:
            instance.add_dynamic_partitions("symbols", symbols)
            for label, shift in [
                ("backfill", timedelta(0)),
                ("sync_2h", timedelta(hours=2)),
                ("sync_1d", timedelta(days=1, hours=2)),
            ]:
                clock["now"] = BACKFILL_NOW + shift
                started = time.perf_counter()
                both = [
                    run(instance, tmp, fake, a, symbols, clock["now"])
                    for a in (prices_1h, prices_1d)
                ]
                figures[label] = {
                    "wall_s": round(time.perf_counter() - started, 2),
                    **{k: sum(b[k] for b in both) for k in both[0]},
                }
    for label in ("sync_2h", "sync_1d"):
        figures[label]["vs_minimum"] = round(figures[label]["server_requests"] / (2 * n), 2)
    return figures


def main() -> None:
    sizes = [int(a) for a in sys.argv[1:]] or [1, 10]
    for n in sizes:
        figures = measure(n)
        print(figures)
        _common.record("sources_incremental", figures)


if __name__ == "__main__":
    main()
