"""The price checks on 5 years of hourly candles for 100 symbols (4.4 M rows): the whole table, and
the windows of a day's run (one symbol, and all 100), with each evaluation's peak memory.

Each evaluation runs in a fresh process (the way a check step runs in its run's process), so its
peak RSS is its own. Usage: ``python bench/price_checks.py [--symbols 100] [--years 5]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import tempfile
import textwrap
from pathlib import Path

from _common import ROOT, python, record

BUILD = """
CREATE TABLE prices_1h AS
SELECT 'S' || lpad(s::VARCHAR, 3, '0') || '-USDT' AS symbol,
       TIMESTAMPTZ '{start}' + INTERVAL (h) HOUR AS ts,
       p AS open, p * 1.004 AS high, p * 0.996 AS low, p * (1 + 0.002 * sin(h)) AS close,
       100.0 + s AS volume, 'ccxt:binance' AS source, true AS is_final,
       TIMESTAMPTZ '{now}' AS fetched_at
FROM (SELECT s, h, 100 + s + 10 * sin(h / 500.0 + s) AS p
      FROM range({symbols}) r(s), range({hours}) t(h));
CREATE TABLE tracked_assets AS
SELECT DISTINCT symbol AS asset_id, 'crypto' AS asset_class, true AS is_active FROM prices_1h;
CREATE TABLE ingestion_state AS
SELECT symbol AS asset_id, 'prices_1h' AS data_type, max(ts) AS last_timestamp
FROM prices_1h GROUP BY symbol;
CREATE TABLE sync_log AS
SELECT 'day-run' AS run_id, symbol, 'prices_1h' AS data_type,
       TIMESTAMPTZ '{last_day}' AS requested_start,
       TIMESTAMPTZ '{last_day}' + INTERVAL 1 DAY AS requested_end
FROM tracked_assets t(symbol);
"""

EVALUATE = textwrap.dedent(
    """
    import json, resource, sys, time, warnings
    warnings.filterwarnings("ignore")
    from datetime import datetime
    t0 = time.perf_counter()
    from platform_pkg.market.resources import MarketData
    from platform_pkg.prices.checks import Evaluation, PriceChecks
    from platform_pkg.warehouse.resources import Warehouse
    path, run_id, now = sys.argv[1], sys.argv[2] or None, datetime.fromisoformat(sys.argv[3])
    names = ["keys", "ohlc", "gaps", "freshness", "spikes"]
    warehouse, market = Warehouse(path=path), MarketData(now=now.isoformat())
    imported = time.perf_counter()
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    results = list(Evaluation("prices_1h", "1h", now, run_id, PriceChecks()).run(
        warehouse, market, names))
    done = time.perf_counter()
    print(json.dumps({
        "seconds": done - imported,
        "import_seconds": imported - t0,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "rss_before_mb": rss_before / 1024,
        "passed": {r.check_name: r.passed for r in results},
        "rows": next(r for r in results if r.check_name == "keys").metadata["rows"].value,
    }))
    """
)


def evaluate(path: Path, run_id: str, now: str) -> dict:
    done = subprocess.run(
        [python(), "-c", EVALUATE, str(path), run_id, now],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--symbols", type=int, default=100)
    parser.add_argument("--years", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    import duckdb

    hours = args.years * 8766
    start, now = "2021-01-01 00:00:00+00", None
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "warehouse.duckdb"
        con = duckdb.connect(str(path))
        con.execute("SET TimeZone = 'UTC'")
        last = con.execute(
            f"SELECT TIMESTAMPTZ '{start}' + INTERVAL ({hours - 1}) HOUR"
        ).fetchone()[0]
        now = (last.replace(minute=30)).isoformat()
        last_day = last.replace(hour=0).isoformat()
        con.execute(
            BUILD.format(start=start, now=now, symbols=args.symbols, hours=hours, last_day=last_day)
        )
        rows = con.execute("SELECT count(*) FROM prices_1h").fetchone()[0]
        con.execute("CREATE TABLE one_symbol AS SELECT * FROM sync_log WHERE symbol = 'S000-USDT'")
        con.execute("UPDATE one_symbol SET run_id = 'one-symbol-day'")
        con.execute("INSERT INTO sync_log SELECT * FROM one_symbol")
        con.close()
        figures: dict = {"symbols": args.symbols, "years": args.years, "rows": rows}
        for name, run_id in (
            ("whole_table", ""),
            ("day_all_symbols", "day-run"),
            ("day_one_symbol", "one-symbol-day"),
        ):
            runs = [evaluate(path, run_id, now) for _ in range(args.repeat)]
            assert all(all(r["passed"].values()) for r in runs), runs[0]["passed"]
            figures[name] = {
                "seconds_median": round(statistics.median(r["seconds"] for r in runs), 3),
                "seconds_all": [round(r["seconds"], 3) for r in runs],
                "peak_rss_mb": round(max(r["peak_rss_mb"] for r in runs), 1),
                "rss_before_mb": round(runs[0]["rss_before_mb"], 1),
                "rows_checked": runs[0]["rows"],
            }
            print(name, figures[name])
    record("price_checks", figures)


if __name__ == "__main__":
    main()
