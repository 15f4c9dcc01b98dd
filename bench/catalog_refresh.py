"""Requests and time of an asset catalogue refresh: ~2,000 exchange markets and ~15,000 coins.

Local servers only: a Binance-dialect exchange (platform_tests/fakes/binance.py, the real ccxt
library's ``load_markets`` talking to it through PLATFORM_CCXT_API_URL) listing N pairs, and a
CoinGecko server (platform_tests/fakes/coingecko.py) whose ``/coins/list`` holds M coins (every
10th sharing its predecessor's ticker) ranked 1..1,000 for ``/coins/markets``; the stock source is
``yfinance``, so the shipped listings file is read too. In a temp dir with a fresh warehouse, the
``asset_catalog`` asset is materialised (``dg.materialize``, IO manager included) three times:

1. ``first``: into an empty catalogue;
2. ``unchanged``: the same answers again (target: the same requests, 0 rows written);
3. ``changed``: 1 % of the pairs gone, 20 new, 1 % of the coins gone.

Requests are counted by the servers themselves and by the runs' ``sync_log`` rows. CoinGecko's
rate limit is lifted (``1000/1``) unless ``--coingecko-rate-limit 30/60`` (the platform's default,
the free plan's: a burst of 3, then one every ~2.2 s) measures the wait for tokens too.

    python bench/catalog_refresh.py [--markets 2000] [--coins 15000] [--pages 4]
                                    [--coingecko-rate-limit 1000/1]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from pathlib import Path

import _common

sys.path.insert(0, str(_common.ROOT))  # the local servers live with the tests
warnings.filterwarnings("ignore")

import dagster as dg  # noqa: E402
import duckdb  # noqa: E402

from platform_pkg.catalog.assets import asset_catalog  # noqa: E402
from platform_pkg.market.demo import DemoMarket  # noqa: E402
from platform_pkg.market.resources import MarketData  # noqa: E402
from platform_pkg.warehouse.io_manager import DuckDBUpsertIOManager  # noqa: E402
from platform_pkg.warehouse.resources import Warehouse  # noqa: E402
from platform_tests.fakes.binance import FakeBinance  # noqa: E402
from platform_tests.fakes.catalog import coin_directory, exchange_pairs  # noqa: E402
from platform_tests.fakes.coingecko import FakeCoinGecko  # noqa: E402


def refresh(tmp: Path, binance: FakeBinance, gecko: FakeCoinGecko, pages: int, rate: str) -> dict:
    warehouse = Warehouse(path=str(tmp / "warehouse.duckdb"))
    market = MarketData(
        crypto_source="ccxt",
        crypto_fallback="coingecko",
        stock_source="yfinance",
        ccxt_api_url=binance.url,
        coingecko_api_url=gecko.url + "/api/v3",
        coingecko_rate_limit=rate,
        state_dir=str(tmp / "sources"),
    )
    sent = len(binance.requests), len(gecko.requests)
    started = time.perf_counter()
    result = dg.materialize(
        [asset_catalog],
        resources={
            "warehouse": warehouse,
            "io_manager": DuckDBUpsertIOManager(warehouse=warehouse),
            "market": market,
        },
        run_config={"ops": {"asset_catalog": {"config": {"coingecko_pages": pages}}}},
    )
    wall = time.perf_counter() - started
    assert result.success
    (event,) = result.asset_materializations_for_node("asset_catalog")
    meta = {k: getattr(v, "value", v) for k, v in event.metadata.items()}
    con = duckdb.connect(str(tmp / "warehouse.duckdb"), read_only=True)
    try:
        logged = con.execute(
            "SELECT symbol, api_requests, round(epoch(finished_at - started_at), 2) FROM sync_log "
            "WHERE run_id = ? ORDER BY symbol",
            [result.run_id],
        ).fetchall()
        stored = con.execute("SELECT count(*) FROM asset_catalog").fetchall()[0][0]
    finally:
        con.close()
    return {
        "wall_s": round(wall, 2),
        "server_requests": {
            "exchange": len(binance.requests) - sent[0],
            "coingecko": len(gecko.requests) - sent[1],
        },
        "sync_log_requests": {source: n for source, n, _ in logged},
        "fetch_s": {source: s for source, _, s in logged},
        "rows_written": meta["rows_written"],
        **{k: meta[k] for k in ("added", "updated", "delisted", "restored")},
        "entries_active": meta["entries_active"],
        "entries_stored": stored,
        "listings": meta["listings"],
    }


def measure(markets: int, coins: int, pages: int, rate: str) -> dict:
    demo = DemoMarket()
    with (
        tempfile.TemporaryDirectory() as tmpdir,
        FakeBinance(demo, pairs=exchange_pairs(markets)) as binance,
        FakeCoinGecko(demo) as gecko,
    ):
        gecko.directory, gecko.ranks = coin_directory(coins, ranked=1000)
        tmp = Path(tmpdir)
        figures = {
            "markets_served": markets,
            "coins_served": coins,
            "coingecko_pages": pages,
            "coingecko_rate_limit": rate,
        }
        figures["first"] = refresh(tmp, binance, gecko, pages, rate)
        figures["unchanged"] = refresh(tmp, binance, gecko, pages, rate)
        for pair in list(binance.pairs)[::100]:
            del binance.pairs[pair]
        binance.pairs.update({f"NEW{i:02d}USDT": (f"NEW{i:02d}", "USDT") for i in range(20)})
        gecko.directory = [c for i, c in enumerate(gecko.directory) if i % 100 != 50]
        figures["changed"] = refresh(tmp, binance, gecko, pages, rate)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--markets", type=int, default=2000)
    parser.add_argument("--coins", type=int, default=15000)
    parser.add_argument("--pages", type=int, default=4)
    parser.add_argument("--coingecko-rate-limit", default="1000/1")
    args = parser.parse_args()
    figures = measure(args.markets, args.coins, args.pages, args.coingecko_rate_limit)
    for name in ("first", "unchanged", "changed"):
        print(name, figures[name])
    _common.record("catalog_refresh", figures)


if __name__ == "__main__":
    main()
