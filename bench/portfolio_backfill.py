"""From a new holding in the portfolio file to full one-year coverage, with the daemon running.

For N new symbols (default: 1, then 20), in a temp dir: a real ``dagster dev`` (webserver + daemon,
a copy of the project's dagster.yaml, the defaults of scripts/dev.sh, the sensor's default
interval), a fresh warehouse, a portfolio file and a frozen clock. Once the sensor has read the
empty portfolio, N buys dated today are appended at once and the clock starts. Reported:

  coverage_s     until the last (symbol, asset) fetch committed: every symbol's year is stored
  runs_done_s    until the last price run finished (Dagster's own bookkeeping included)
  first_run_s    until the first price run started (sensor tick + run queue)
  ledger_*_s     when the ledger run the file change asked for started and finished
  runs           price runs created (blocks of symbols, both price assets in each)

and checks that every symbol holds exactly the demo market's candles for its year. Targets:
1 symbol ≤ 15 s, 20 symbols ≤ 45 s. The 20 symbols are synthetic demo listings registered by
``bench/portfolio_location.py`` (the demo market lists 8). ``--instance postgres`` runs the same
on Dagster's PostgreSQL instance (deploy/dagster.postgres.yaml) against a local server started
for the benchmark (platform_tests/postgres.py).

    .venv/bin/python bench/portfolio_backfill.py [--symbols 1 20] [--instance sqlite|postgres]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import _common
import portfolio_location  # noqa: F401 - the synthetic listings, for the expected candles

sys.path.insert(0, str(_common.ROOT))

from platform_pkg.market.demo import DemoMarket  # noqa: E402
from platform_pkg.partitions import range_symbols  # noqa: E402
from platform_pkg.warehouse.connection import connect  # noqa: E402
from platform_tests.e2e.harness import TERMINAL, DagsterDev  # noqa: E402
from platform_tests.postgres import PostgresServer  # noqa: E402

NOW = datetime(2026, 6, 15, 10, 30, tzinfo=UTC)
FIRST_DAY = NOW.date() - timedelta(days=365)
HEADER = "date,account,symbol,asset_class,side,quantity,price,currency,fee\n"
LOCATION = _common.ROOT / "bench" / "portfolio_location.py"


def workspace(workdir: Path) -> Path:
    path = workdir / "workspace.yaml"
    path.write_text(
        "load_from:\n  - python_file:\n"
        f"      relative_path: {LOCATION}\n"
        "      location_name: platform\n"
        f"      working_directory: {_common.ROOT}\n"
    )
    return path


def run_case(
    n: int, dagster_yaml: Path | None, timeout: float, postgres: dict[str, str] | None = None
) -> dict:
    symbols = [f"BENCH{i:02d}-USDT" for i in range(1, n + 1)]
    with tempfile.TemporaryDirectory(prefix="bench_portfolio_") as tmp:
        workdir = Path(tmp)
        dev = DagsterDev(
            workdir,
            env={"PLATFORM_NOW": NOW.isoformat(), "PLATFORM_INTRADAY_MINUTES": "60"},
            workspace=workspace(workdir),
            dagster_yaml=dagster_yaml,
            postgres=postgres,
        )
        dev.portfolio.write_text(HEADER)
        with dev:
            dev.wait_for("the sensor's first run", lambda: _finished(dev.runs(TRIGGER)), 120)
            lines = [f"{NOW.date()}T09:00:00Z,bench,{s},crypto,buy,1,100,USDT,0\n" for s in symbols]
            start = time.time()
            with dev.portfolio.open("a") as fh:
                fh.writelines(lines)

            def price_runs():
                runs = [r for r in dev.runs(TRIGGER) if r["assets"][0].startswith("prices")]
                covered = {
                    (symbol, asset)
                    for r in runs
                    for symbol in range_symbols(r["tags"], symbols)
                    for asset in r["assets"]
                }
                whole = len(covered) >= 2 * n
                return runs if whole and _finished(runs) else None

            runs = dev.wait_for(f"{n} symbols' price runs", price_runs, timeout, every=0.5)
            done = time.time()
            figures = _figures(dev, symbols, runs, start, done)
            ledger = [r for r in dev.runs(TRIGGER) if r["tags"].get("platform/ledger")]
            ledger = [r for r in ledger if r["startTime"] and r["startTime"] > start]
            if ledger:
                figures["ledger_started_s"] = round(ledger[-1]["startTime"] - start, 1)
                figures["ledger_done_s"] = round(ledger[-1]["endTime"] - start, 1)
            figures["schedule_runs_meanwhile"] = len(
                [r for r in dev.runs() if "platform/schedule" in r["tags"]]
            )
    return figures


TRIGGER = {"platform/trigger": "holdings_sensor"}


def _finished(runs: list[dict]) -> bool:
    return bool(runs) and all(r["status"] in TERMINAL for r in runs)


def _figures(dev: DagsterDev, symbols: list[str], runs: list[dict], start: float, done: float):
    market = DemoMarket(clock=lambda: NOW)
    begin = datetime.combine(FIRST_DAY, datetime.min.time(), tzinfo=UTC)
    exact = True
    with connect(dev.warehouse, max_wait_seconds=120) as con:
        finished = con.execute(
            "SELECT max(finished_at), sum(api_requests), sum(rows_inserted) FROM sync_log "
            f"WHERE symbol IN ({', '.join('?' for _ in symbols)})",
            symbols,
        ).fetchone()
        for symbol in symbols:
            for table, interval in (("prices_1d", "1d"), ("prices_1h", "1h")):
                expected = market.candles(symbol, interval, begin, NOW + timedelta(days=1))
                stored = con.execute(
                    f"SELECT ts, close FROM {table} WHERE symbol = ? ORDER BY ts",  # noqa: S608
                    [symbol],
                ).fetchall()
                exact &= (
                    len(stored) == len(expected)
                    and [round(c, 6) for _, c in stored] == expected["close"].round(6).tolist()
                )
    last_commit = finished[0].timestamp()
    starts = [r["startTime"] for r in runs if r["startTime"]]
    durations = [r["endTime"] - r["startTime"] for r in runs if r["endTime"] and r["startTime"]]
    return {
        "symbols": len(symbols),
        "days": (NOW.date() - FIRST_DAY).days + 1,
        "coverage_s": round(last_commit - start, 1),
        "runs_done_s": round(max(r["endTime"] for r in runs) - start, 1),
        "first_run_started_s": round(min(starts) - start, 1),
        "runs": len(runs),
        "runs_succeeded": sum(r["status"] == "SUCCESS" for r in runs),
        "mean_run_s": round(sum(durations) / len(durations), 1),
        "api_requests": int(finished[1]),
        "rows_inserted": int(finished[2]),
        "exactly_demo_candles": exact,
        "observed_wall_s": round(done - start, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, nargs="+", default=[1, 20])
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument(
        "--dagster-yaml",
        type=Path,
        help="instance config to use instead of the project's dagster.yaml (to compare settings)",
    )
    parser.add_argument("--instance", choices=["sqlite", "postgres"], default="sqlite")
    args = parser.parse_args()
    targets = {1: 15, 20: 45}
    server = PostgresServer().start() if args.instance == "postgres" else None
    try:
        for n in args.symbols:
            print(f"\n{n} new symbol(s), one year each, daemon running, {args.instance} instance")
            postgres = None
            if server is not None:
                postgres = server.dagster_env(server.create_database(f"bench_{n}_{time.time_ns()}"))
            figures = run_case(n, args.dagster_yaml, args.timeout, postgres)
            yaml = "deploy/dagster.postgres.yaml" if server else "dagster.yaml (project)"
            figures["instance"] = args.instance
            figures["dagster_yaml"] = str(args.dagster_yaml or yaml)
            target = targets.get(n)
            figures["target_s"] = target
            for key, value in figures.items():
                print(f"  {key:26}{value}")
            if target is not None:
                verdict = "OK  " if figures["coverage_s"] <= target else "MISS"
                print(f"  {verdict} coverage {figures['coverage_s']} s (target ≤ {target} s)")
            _common.record("portfolio_backfill", figures)
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
