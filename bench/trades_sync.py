"""Exchange trades: requests, time and memory of a first sync, of an incremental sync with nothing
new, and the ledger's incremental build.

  first      a first sync of 50,000 trades over 5 markets (10,000 each) from the local fake Binance
             through the real ccxt (the signed myTrades dialect, 1,000 per page), in a fresh
             process: requests (against Σ ceil(trades/1000)), weight, wall time, peak RSS; once
             under Binance's published limit (6,000 weight/min) and once with the limit lifted
             (what the platform itself costs);
  nothing    the incremental sync right after, with nothing new: requests per (account, market),
             for a one-day window and for a year of partitions;
  ledger     the ledger (and holdings) built incrementally after 100 new trades, on top of ledgers
             of 5,000, 50,000 and 500,000 trades: time, rows read, and the full first build.

Usage: trades_sync.py [--trades 50000] [--markets 5]
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import _common
import duckdb
import pandas as pd

sys.path.insert(0, str(_common.ROOT))

from platform_pkg.accounts.model import ExchangeAccount  # noqa: E402
from platform_pkg.ledger.assets import holdings, transactions  # noqa: E402
from platform_pkg.ledger.build import holdings_changes, ledger_changes  # noqa: E402
from platform_pkg.market.demo import DemoMarket  # noqa: E402
from platform_pkg.market.resources import MarketData  # noqa: E402
from platform_pkg.partitions import SymbolWindow  # noqa: E402
from platform_pkg.trades.assets import exchange_trades  # noqa: E402
from platform_pkg.trades.ingest import TradeSync, TradeTask  # noqa: E402
from platform_pkg.trades.paging import NEWEST, OLDEST, SYNCED, Watermarks  # noqa: E402
from platform_pkg.trades.rows import TRADE_COLUMNS  # noqa: E402
from platform_pkg.trades.sources import trade_source  # noqa: E402
from platform_pkg.warehouse import watermarks  # noqa: E402
from platform_pkg.warehouse.io_manager import DuckDBUpsertIOManager, table_spec  # noqa: E402
from platform_pkg.warehouse.resources import Warehouse  # noqa: E402
from platform_pkg.warehouse.unit import Unit, commit  # noqa: E402
from platform_tests.fakes.binance import FakeBinance, make_trades  # noqa: E402

NOW = datetime(2026, 11, 24, 10, 30, tzinfo=UTC)
KEY, SECRET = "bench-key", "bench-secret"
BASES = ["BTC", "ETH", "SOL", "ADA", "XRP", "DOT", "LTC", "BNB"]
SPEC = table_spec(dict(exchange_trades.metadata_by_key[exchange_trades.key]), "exchange_trades")


def _sync(fake: FakeBinance, tmp: Path, markets: list[str], window: SymbolWindow | None, limit):
    """One TradeSync of ``markets`` committed by the IO manager; returns (figures, the stream)."""
    warehouse = Warehouse(path=str(tmp / "warehouse.duckdb"))
    market = MarketData(now=NOW.isoformat(), state_dir=str(tmp / "sources"), ccxt_rate_limit=limit)
    account = ExchangeAccount(
        "binance-main", "binance", "BENCH_KEY", "BENCH_SECRET", markets=tuple(markets),
        api_url=fake.url,
    )  # fmt: skip
    env = {"BENCH_KEY": KEY, "BENCH_SECRET": SECRET}

    def marks(asset_id):
        with warehouse.connection() as con:
            return Watermarks(
                *(watermarks.read_cursor(con, asset_id, dt) for dt in (NEWEST, OLDEST, SYNCED))
            )

    windows = [window or SymbolWindow(m, NOW - timedelta(days=1), NOW) for m in markets]
    stream = TradeSync(
        tasks=[TradeTask(account, w.symbol, w, "bench") for w in windows],
        source_for=lambda acct, meter: trade_source(market, acct, meter, path=tmp, environ=env),
        read_marks=marks,
        now=NOW,
        accounts_file=tmp / "accounts.toml",
        run_id="bench",
    )
    before = len(fake.trade_requests)
    started = time.perf_counter()
    DuckDBUpsertIOManager(warehouse=warehouse)._commit_stream(SPEC, stream, "bench")
    wall = time.perf_counter() - started
    stored = warehouse.query("SELECT count(*) AS n FROM exchange_trades")["n"].iloc[0]
    return {
        "wall_s": round(wall, 2),
        "trade_requests": len(fake.trade_requests) - before,
        "weight": float(sum(stream.meter.units.values())),
        "stored": int(stored),
    }


def child(trades: int, markets: int, limit: str) -> dict:
    """In a fresh process: the first sync, then nothing new (a day, then a year)."""
    per_market = trades // markets
    symbols = [f"{b}-USDT" for b in BASES[:markets]]
    pairs = {f"{b}USDT": (b, "USDT") for b in BASES[:markets]}
    start_ms = int((NOW - timedelta(days=300)).timestamp() * 1000)
    with (
        tempfile.TemporaryDirectory(prefix="bench-trades-") as tmpdir,
        FakeBinance(DemoMarket(clock=lambda: NOW), pairs, api_key=KEY, api_secret=SECRET) as fake,
    ):
        for i, pid in enumerate(pairs):
            fake.trades[pid] = make_trades(
                pid, per_market, start_ms=start_ms, step_ms=2_000_000, seed=i,
                first_id=3_000_000_000 + i * 10_000_000,
            )  # fmt: skip
        tmp = Path(tmpdir)
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        first = _sync(fake, tmp, symbols, None, limit)
        first["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        first["rss_before_mb"] = round(rss_before / 1024)
        first["expected_pages"] = sum(math.ceil(len(t) / 1000) for t in fake.trades.values())
        day = _sync(fake, tmp, symbols, None, limit)
        year = {
            s: SymbolWindow(s, NOW - timedelta(days=365), NOW) for s in symbols
        }  # a re-run of a year already synced
        year_figures = _sync_year(fake, tmp, symbols, year, limit)
    return {"first": first, "nothing_new_day": day, "nothing_new_year": year_figures}


def _sync_year(fake, tmp, symbols, windows, limit):
    before = len(fake.trade_requests)
    total = {"trade_requests": 0}
    for symbol in symbols:
        figures = _sync(fake, tmp, [symbol], windows[symbol], limit)
        total["trade_requests"] += figures["trade_requests"]
    total["trade_requests"] = len(fake.trade_requests) - before
    return total


def ledger(sizes: list[int], new: int = 100) -> list[dict]:
    """Incremental ledger + holdings builds after ``new`` trades on ledgers of ``sizes``."""
    ledger_spec = table_spec(dict(transactions.metadata_by_key[transactions.key]), "transactions")
    holdings_spec = table_spec(dict(holdings.metadata_by_key[holdings.key]), "holdings")
    out = []
    for size in sizes:
        with tempfile.TemporaryDirectory(prefix="bench-ledger-") as tmpdir:
            con = duckdb.connect(str(Path(tmpdir) / "w.duckdb"))
            con.execute("SET TimeZone = 'UTC'")
            commit(con, SPEC, Unit.of(_trades(0, size)), run_id="seed", now=NOW)

            def build(con=con):
                started = time.perf_counter()
                con.execute("BEGIN TRANSACTION")
                lb = ledger_changes(con, NOW)
                commit(
                    con,
                    ledger_spec,
                    Unit.of(lb.rows, watermarks=tuple(lb.moves)),
                    run_id="b",
                    now=NOW,
                )
                con.execute("COMMIT")
                con.execute("BEGIN TRANSACTION")
                hb = holdings_changes(con, NOW)
                commit(
                    con,
                    holdings_spec,
                    Unit.of(hb.rows, watermarks=tuple(hb.moves)),
                    run_id="b",
                    now=NOW,
                )
                con.execute("COMMIT")
                return time.perf_counter() - started, lb.changed, hb.changed

            full, _, _ = build()
            times, read, held = [], None, None
            for rep in range(3):  # three batches of ``new`` trades, each built on its own
                commit(con, SPEC, Unit.of(_trades(size + rep * new, new)), run_id="new", now=NOW)
                took, read, held = build()
                times.append(took)
            ledger_rows = con.execute("SELECT count(*) FROM transactions").fetchall()[0][0]
            con.close()
        out.append(
            {
                "ledger_trades": size,
                "ledger_rows": ledger_rows,
                "full_build_s": round(full, 3),
                "new_trades": new,
                "incremental_s_median": round(sorted(times)[1], 4),
                "incremental_s_all": [round(t, 4) for t in times],
                "rows_read": read,
                "holdings_recomputed": held,
            }
        )
        print(out[-1])
    return out


def _trades(first: int, count: int) -> pd.DataFrame:
    ids = range(first, first + count)
    frame = pd.DataFrame(
        {
            "account": "binance-main",
            "exchange": "ccxt:binance",
            "symbol": [f"{BASES[i % 5]}-USDT" for i in ids],
            "trade_id": [str(i) for i in ids],
            "order_id": "o",
            "ts": [NOW - timedelta(minutes=count - k) for k in range(count)],
            "side": ["buy" if i % 3 else "sell" for i in ids],
            "price": 100.0,
            "amount": 0.01,
            "cost": 1.0,
            "fee": 0.00001,
            "fee_currency": [("BNB" if i % 10 == 0 else BASES[i % 5]) for i in ids],
            "taker_or_maker": "taker",
            "raw": "{}",
            "fetched_at": NOW,
            "is_deleted": False,
            "deleted_at": pd.NaT,
        }
    )
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
    frame["deleted_at"] = pd.to_datetime(frame["deleted_at"], utc=True)
    return frame[list(TRADE_COLUMNS)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trades", type=int, default=50_000)
    parser.add_argument("--markets", type=int, default=5)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.trades, args.markets, args.child)))
        return
    figures: dict = {"trades": args.trades, "markets": args.markets}
    for limit, name in (("6000/60", "binance_limit"), ("600000/60", "limit_lifted")):
        done = subprocess.run(
            [_common.python(), __file__, "--trades", str(args.trades), "--markets",
             str(args.markets), "--child", limit],
            capture_output=True, text=True, check=True, cwd=_common.ROOT,
        )  # fmt: skip
        figures[name] = json.loads(done.stdout.strip().splitlines()[-1])
        print(name, figures[name])
    figures["ledger"] = ledger([5_000, 50_000, 500_000])
    _common.record("trades_sync", figures)


if __name__ == "__main__":
    main()
