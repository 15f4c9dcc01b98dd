"""Daily balances and portfolio value: a full build over 5 years, then incremental builds.

  ledger   50,000 legs over 5 years (to the frozen "today"), 20 symbols × 3 accounts: 12 crypto
           pairs quoted in USDT (pegged), 2 in EUR (through EURUSD=X), 6 US stocks; buys, sells,
           transfers and fee legs. Daily closes of the 20 symbols and EURUSD=X for every day.
  full     the first build of daily_balances, then of portfolio_value (every day, every account),
           each committed like the IO manager does; the value chart drawn from the history;
  today    10 new legs dated today: both builds again;
  backdate 1 leg dated a year ago: both builds again;
  nothing  both builds with nothing changed.

Each step reports wall time, rows produced and rows the upsert inserted / updated.

Usage: portfolio_value.py [--legs 50000] [--years 5]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import _common
import duckdb
import numpy as np
import pandas as pd

sys.path.insert(0, str(_common.ROOT))

from platform_pkg.charts import value_chart  # noqa: E402
from platform_pkg.ledger.assets import transactions  # noqa: E402
from platform_pkg.ledger.legs import LEDGER_COLUMNS  # noqa: E402
from platform_pkg.market.candles import PRICE_TABLE_COLUMNS  # noqa: E402
from platform_pkg.portfolio.balances import balance_changes  # noqa: E402
from platform_pkg.portfolio.valuation import daily_balances, portfolio_value  # noqa: E402
from platform_pkg.portfolio.value import value_changes  # noqa: E402
from platform_pkg.prices.assets import prices_1d  # noqa: E402
from platform_pkg.warehouse.io_manager import table_spec  # noqa: E402
from platform_pkg.warehouse.unit import Unit, commit  # noqa: E402

NOW = datetime(2026, 11, 24, 10, 30, tzinfo=UTC)
ACCOUNTS = ["broker", "exchange", "cold"]
SYMBOLS = [f"C{n:02d}-USDT" for n in range(12)] + ["BTC-EUR", "ETH-EUR"]
SYMBOLS += [f"S{n:02d}" for n in range(6)]
SIDES = np.array(["buy", "sell", "transfer_in", "transfer_out", "fee"])


def _spec(asset, name):
    return table_spec(dict(asset.metadata_by_key[asset.key]), name)


LEDGER, PRICES = _spec(transactions, "transactions"), _spec(prices_1d, "prices_1d")
BALANCES, VALUES = (
    _spec(daily_balances, "daily_balances"),
    _spec(portfolio_value, "portfolio_value"),
)


def legs(count: int, first: datetime, last: datetime, seed: int, prefix: str) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    span = (last - first).total_seconds()
    ts = pd.to_datetime([first + timedelta(seconds=s) for s in rng.uniform(0, span, count)])
    return pd.DataFrame(
        {
            "domain": "manual", "source": "bench", "account": rng.choice(ACCOUNTS, count),
            "txid": [f"{prefix}{n}" for n in range(count)], "leg": 0, "ts": ts,
            "symbol": rng.choice(SYMBOLS, count), "asset_class": "crypto",
            "side": rng.choice(SIDES, count, p=[0.55, 0.3, 0.05, 0.05, 0.05]),
            "quantity": rng.uniform(0.01, 1.0, count).round(6), "price": 100.0,
            "currency": "USDT", "fee": 0.0, "fee_currency": None, "status": "ok",
            "is_deleted": False, "updated_at": NOW,
        }
    )[list(LEDGER_COLUMNS)]  # fmt: skip


def closes(years: int) -> pd.DataFrame:
    days = pd.date_range(NOW.date() - timedelta(days=365 * years + 30), NOW.date(), tz="UTC")
    rng = np.random.default_rng(7)
    parts = []
    for symbol in [*SYMBOLS, "EURUSD=X"]:
        level = 1.1 if symbol == "EURUSD=X" else 100.0
        walk = level * np.cumprod(1 + rng.normal(0, 0.01, len(days)))
        parts.append(pd.DataFrame({"symbol": symbol, "ts": days, "open": walk, "high": walk,
                                   "low": walk, "close": walk, "volume": 0.0, "source": "bench",
                                   "is_final": True, "fetched_at": NOW - timedelta(hours=2)}))  # fmt: skip
    return pd.concat(parts, ignore_index=True)[list(PRICE_TABLE_COLUMNS)]


def _write(con, spec, unit):
    con.execute("BEGIN TRANSACTION")
    done = commit(con, spec, unit, run_id="bench", now=NOW)
    con.execute("COMMIT")
    return done


def builds(con, now: datetime) -> dict:
    """Both builds as the assets do them, each committed in its own transaction."""
    started = time.perf_counter()
    rebuild = balance_changes(con, now.date(), now)
    stats = _write(con, BALANCES, Unit.of(rebuild.rows, watermarks=tuple(rebuild.moves)))
    balances_s = time.perf_counter() - started
    started = time.perf_counter()
    built = value_changes(con, "USD", now)
    values = _write(con, VALUES, built.unit())
    value_s = time.perf_counter() - started
    chart_s, chart_kb = 0.0, 0.0
    if built.history is not None:
        started = time.perf_counter()
        chart = value_chart(built.history, "USD")
        chart_s, chart_kb = time.perf_counter() - started, len(chart) * 3 / 4 / 1024
    b, v = stats.of("daily_balances"), values.of("portfolio_value")
    return {
        "balances_s": round(balances_s, 3),
        "balance_pairs": rebuild.pairs,
        "balances_from": str(rebuild.earliest),
        "balance_rows_produced": rebuild.rows.num_rows if rebuild.rows is not None else 0,
        "balance_rows_inserted_updated": [b.inserted, b.updated],
        "value_s": round(value_s, 3),
        "values_from": str(built.since),
        "value_rows_produced": built.rows.num_rows if built.rows is not None else 0,
        "value_rows_inserted_updated": [v.inserted, v.updated],
        "chart_s": round(chart_s, 3),
        "chart_kb": round(chart_kb, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--legs", type=int, default=50_000)
    parser.add_argument("--years", type=int, default=5)
    args = parser.parse_args()
    first = NOW - timedelta(days=365 * args.years)
    figures: dict = {"legs": args.legs, "years": args.years, "symbols": len(SYMBOLS),
                     "accounts": len(ACCOUNTS)}  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="bench-value-") as tmp:
        con = duckdb.connect(str(Path(tmp) / "warehouse.duckdb"))
        con.execute("SET TimeZone = 'UTC'")
        _write(con, LEDGER, Unit.of(legs(args.legs, first, NOW - timedelta(days=1), 1, "L")))
        _write(con, PRICES, Unit.of(closes(args.years)))
        steps = {
            "full": lambda: None,
            "today": lambda: _write(
                con, LEDGER, Unit.of(legs(10, NOW - timedelta(hours=2), NOW, 2, "T"))
            ),
            "backdate": lambda: _write(
                con, LEDGER, Unit.of(legs(1, NOW - timedelta(days=365), NOW - timedelta(days=364), 3, "B"))
            ),
            "nothing": lambda: None,
        }  # fmt: skip
        for n, (name, change) in enumerate(steps.items()):
            change()
            figures[name] = builds(con, NOW + timedelta(minutes=20 * n))
            print(name, figures[name])
        figures["stored"] = {
            table: con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]  # noqa: S608
            for table in ("transactions", "prices_1d", "daily_balances", "portfolio_value")
        }
        con.close()
    print(figures["stored"])
    _common.record("portfolio_value", figures)


if __name__ == "__main__":
    main()
