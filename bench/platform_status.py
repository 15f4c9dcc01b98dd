"""The platform status on 100 symbols × 5 years of hourly candles (4.4 M rows) with a year of
15-minute refreshes in ``sync_log`` (~7 M rows): how long building it takes, and its peak memory.

Each measurement runs in a fresh process, as the status command does (the asset's run process
has Dagster loaded besides). 20 of the symbols are stocks served by Yahoo whose newest candles are
a day old, so each is judged by the NYSE's calendar from exchange-calendars, built once per
process (~0.3 s): the slow case; a symbol fresher than the grace needs no calendar. Usage:
``python bench/platform_status.py [--symbols 100] [--years 5] [--sync-days 365]``.
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

STOCK_SHARE = 0.2

BUILD = """
CREATE TABLE prices_1h AS
SELECT CASE WHEN s < {crypto} THEN 'S' || lpad(s::VARCHAR, 3, '0') || '-USDT'
            ELSE 'S' || lpad(s::VARCHAR, 3, '0') END AS symbol,
       TIMESTAMPTZ '{start}' + INTERVAL (h) HOUR AS ts,
       p AS open, p * 1.004 AS high, p * 0.996 AS low, p AS close, 100.0 AS volume,
       CASE WHEN s < {crypto} THEN 'ccxt:binance' ELSE 'yfinance' END AS source,
       true AS is_final, TIMESTAMPTZ '{now}' AS fetched_at
FROM (SELECT s, h, 100 + s + 10 * sin(h / 500.0 + s) AS p
      FROM range({symbols}) r(s), range({hours}) t(h));
CREATE TABLE prices_1d AS
SELECT symbol, time_bucket(INTERVAL 1 DAY, ts) AS ts, first(open ORDER BY ts) AS open,
       max(high) AS high, min(low) AS low, last(close ORDER BY ts) AS close,
       sum(volume) AS volume, any_value(source) AS source, true AS is_final,
       TIMESTAMPTZ '{now}' AS fetched_at
FROM prices_1h GROUP BY ALL;
INSERT INTO tracked_assets
SELECT DISTINCT symbol, CASE WHEN symbol LIKE '%-USDT' THEN 'crypto' ELSE 'stock' END,
       true, 1, NULL, NULL, NULL, NULL, TIMESTAMPTZ '{now}', TIMESTAMPTZ '{now}'
FROM prices_1h;
INSERT INTO ingestion_state
SELECT symbol, dt, NULL, CASE WHEN dt LIKE '%_oldest' THEN min_ts
                              WHEN symbol LIKE '%-USDT' THEN max_ts
                              ELSE max_ts - INTERVAL 1 DAY END,
       TIMESTAMPTZ '{now}'
FROM (SELECT symbol, 'prices_1h' AS t, min(ts) AS min_ts, max(ts) AS max_ts
      FROM prices_1h GROUP BY symbol
      UNION ALL
      SELECT symbol, 'prices_1d', min(ts), max(ts) FROM prices_1d GROUP BY symbol),
     (SELECT unnest([t, t || '_oldest']) AS dt);
"""

# Per symbol and price table: one backfill of the history, then a refresh every 15 minutes for
# the last sync_days (each a request or two, a candle or two), a few deferred and failed ones.
SYNCS = """
INSERT INTO sync_log (sync_id, run_id, symbol, data_type, source, started_at, finished_at,
    requested_start, requested_end, rows_fetched, rows_inserted, rows_updated, rows_rejected,
    api_requests, api_units, status, error, rows_deleted)
SELECT 'b-' || symbol || t, 'backfill', symbol, t, any_value(source),
       TIMESTAMPTZ '{now}' - INTERVAL ({sync_days} + 1) DAY, NULL, NULL, NULL,
       count(*), count(*), 0, 0, ceil(count(*) / 1000), 2 * ceil(count(*) / 1000), 'success',
       NULL, 0
FROM (SELECT symbol, source, 'prices_1h' AS t FROM prices_1h
      UNION ALL SELECT symbol, source, 'prices_1d' FROM prices_1d)
GROUP BY symbol, t;
INSERT INTO sync_log (sync_id, run_id, symbol, data_type, source, started_at, finished_at,
    requested_start, requested_end, rows_fetched, rows_inserted, rows_updated, rows_rejected,
    api_requests, api_units, status, error, rows_deleted)
SELECT 'i-' || s || '-' || t || '-' || q, 'run-' || q, symbol, t, source, started,
       started + INTERVAL 2 SECOND, NULL, NULL, 4, (q % 4 = 0)::INT, 1, 0, 1, 2,
       CASE WHEN q % 997 = 5 THEN 'rate_limited' WHEN q % 1499 = 7 THEN 'failed'
            ELSE 'success' END, NULL, 0
FROM (SELECT symbol, any_value(source) AS source, row_number() OVER (ORDER BY symbol) AS s
      FROM prices_1d GROUP BY symbol) y,
     (SELECT unnest(['prices_1h', 'prices_1d']) AS t),
     (SELECT q, TIMESTAMPTZ '{now}' - INTERVAL (({sync_days} * 96 - q) * 15) MINUTE AS started
      FROM range({sync_days} * 96) r(q))
ORDER BY started;
INSERT INTO deferred_fetches
SELECT symbol, 'prices_1h', source, TIMESTAMPTZ '{now}' - INTERVAL 1 HOUR,
       TIMESTAMPTZ '{now}' + INTERVAL 1 HOUR, NULL, NULL, 'HTTP 429, Retry-After 7200 s', 'run-x'
FROM (SELECT DISTINCT symbol, source FROM prices_1d) LIMIT 3;
INSERT INTO known_gaps
SELECT symbol, 'prices_1h', ts, ts + INTERVAL 1 HOUR, 1, 'no_candle', NULL, source, '24/7',
       TIMESTAMPTZ '{now}', 'run-y'
FROM prices_1d USING SAMPLE 2000 ROWS;
INSERT INTO price_anomalies
SELECT 'a' || row_number() OVER (), symbol, 'prices_1h', ts, ts - INTERVAL 1 HOUR, 1.0, 1.6, 0.6,
       0.5, TIMESTAMPTZ '{now}', 'run-z', NULL, NULL
FROM prices_1d USING SAMPLE 50 ROWS;
"""

MEASURE = textwrap.dedent(
    """
    import json, sys, time
    from datetime import datetime

    def peak_kb():
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1])

    t0 = time.perf_counter()
    from platform_pkg.status import build, render
    from platform_pkg.warehouse import query
    path, now = sys.argv[1], datetime.fromisoformat(sys.argv[2])
    imported = time.perf_counter()
    with query.open_read_only(__import__("pathlib").Path(path)) as con:
        status = build.build(con, now)
    built = time.perf_counter()
    text = render.text(status)
    done = time.perf_counter()
    print(json.dumps({
        "seconds": built - imported,
        "render_seconds": done - built,
        "import_seconds": imported - t0,
        # VmHWM, not ru_maxrss: Linux carries ru_maxrss over exec from the forking parent.
        "peak_rss_mb": peak_kb() / 1024,
        "dagster_imported": "dagster" in sys.modules,
        "stale": len(status.stale),
        "active": status.active_symbols,
        "figures": render.figures(status),
    }))
    """
)


def measure(path: Path, now: str) -> dict:
    done = subprocess.run(
        [python(), "-c", MEASURE, str(path), now],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def build_warehouse(path: Path, symbols: int, years: int, sync_days: int) -> tuple[str, dict]:
    import time

    import duckdb

    from platform_pkg.portfolio import tracked
    from platform_pkg.prices import anomalies, gaps
    from platform_pkg.warehouse import deferrals, sync_log, watermarks
    from platform_pkg.warehouse.upsert import ensure_table

    started = time.perf_counter()
    hours = years * 8766
    start = "2021-01-01 00:00:00+00"
    con = duckdb.connect(str(path))
    con.execute("SET TimeZone = 'UTC'")
    for spec in (tracked.SPEC, deferrals.SPEC, gaps.SPEC, anomalies.SPEC):
        ensure_table(con, spec)
    watermarks.ensure(con)
    sync_log.ensure(con)
    last = con.execute(f"SELECT TIMESTAMPTZ '{start}' + INTERVAL ({hours - 1}) HOUR").fetchone()[0]
    now = last.replace(minute=40).isoformat()
    crypto = symbols - int(symbols * STOCK_SHARE)
    con.execute(BUILD.format(start=start, now=now, symbols=symbols, hours=hours, crypto=crypto))
    con.execute(SYNCS.format(now=now, sync_days=sync_days))
    counts = {
        table: con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        for table in ("prices_1h", "prices_1d", "sync_log", "known_gaps", "price_anomalies")
    }
    con.close()
    counts["build_seconds"] = round(time.perf_counter() - started, 1)
    counts["warehouse_mb"] = round(path.stat().st_size / 1e6, 1)
    return now, counts


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--symbols", type=int, default=100)
    parser.add_argument("--years", type=int, default=5)
    parser.add_argument("--sync-days", type=int, default=365)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "warehouse.duckdb"
        now, counts = build_warehouse(path, args.symbols, args.years, args.sync_days)
        print("built", counts)
        runs = [measure(path, now) for _ in range(args.repeat)]
    figures = {
        "symbols": args.symbols,
        "years": args.years,
        "sync_days": args.sync_days,
        **counts,
        "seconds_median": round(statistics.median(r["seconds"] for r in runs), 3),
        "seconds_all": [round(r["seconds"], 3) for r in runs],
        "render_seconds": round(statistics.median(r["render_seconds"] for r in runs), 3),
        "import_seconds": round(statistics.median(r["import_seconds"] for r in runs), 3),
        "peak_rss_mb": round(max(r["peak_rss_mb"] for r in runs), 1),
        "dagster_imported": runs[0]["dagster_imported"],
        "active_symbols": runs[0]["active"],
        "stale": runs[0]["stale"],
        "requests_7d": runs[0]["figures"]["requests_7d"],
        "units_saved_7d": runs[0]["figures"]["units_saved_7d"],
    }
    print(figures)
    record("platform_status", figures)


if __name__ == "__main__":
    main()
