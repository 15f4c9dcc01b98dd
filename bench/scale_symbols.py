"""The platform's own paths at 10 and at 300 symbols: schedule ticks, the holdings sensor's ticks,
a ranged run over one day × N symbols and its checks — against what the UI pays to list every
symbol × date partition key.

Each N gets an on-disk Dagster instance with N dynamic ``symbols`` partitions (``S000-USDT``…),
and a temp DuckDB warehouse tracking them as active crypto. The market is the demo market serving
BTC-USDT's candles for every symbol. Only the evaluations are timed, never the setup.
Usage: ``python bench/scale_symbols.py [--symbols 10 300] [--reps 5] [--run-reps 3]``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

import dagster as dg
import duckdb
from _common import record

from platform_pkg.ledger.assets import SUMMARY_METADATA, holdings
from platform_pkg.market.demo import DEMO_LISTINGS, DemoMarket
from platform_pkg.market.resources import MarketData
from platform_pkg.market.source import RequestMeter
from platform_pkg.partitions import RANGE_END_TAG, RANGE_START_TAG, symbol_date_partitions
from platform_pkg.portfolio.refresh import Block
from platform_pkg.portfolio.resources import PortfolioFile
from platform_pkg.portfolio.sensors import holdings_sensor
from platform_pkg.prices.assets import prices_1h
from platform_pkg.prices.checks import Evaluation, PriceChecks
from platform_pkg.prices.schedules import block_range_tags, daily_close, intraday_refresh
from platform_pkg.warehouse.io_manager import DuckDBUpsertIOManager
from platform_pkg.warehouse.resources import Warehouse

NOW = datetime(2026, 11, 24, 10, 30, tzinfo=UTC)
DAILY_CLOSE_AT = datetime(2026, 11, 24, 0, 10, tzinfo=UTC)
DAY = NOW.date().isoformat()
CHECKS = ["keys", "ohlc", "gaps", "freshness", "spikes"]
# The console only: the run's events are stored in the event log as in any run.
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


class AnySymbolDemo(DemoMarket):
    """The demo market serving BTC-USDT's candles under any symbol."""

    def listing(self, symbol: str):
        return DEMO_LISTINGS["BTC-USDT"]


class AnySymbolMarket(MarketData):
    """The market resource whose every symbol is served by :class:`AnySymbolDemo`."""

    def source_for(self, symbol: str, meter: RequestMeter):
        return AnySymbolDemo(clock=self.clock(), page_limit=self.demo_page_limit, meter=meter)


def symbols(n: int) -> list[str]:
    return [f"S{i:03d}-USDT" for i in range(n)]


def timed(fn, reps: int) -> tuple[float, object]:
    """The median seconds of ``reps`` calls of ``fn``, and the last call's result."""
    times, out = [], None
    for _ in range(reps):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def make_warehouse(path: Path, keys: list[str]) -> None:
    con = duckdb.connect(str(path))
    try:
        con.execute(
            "CREATE TABLE tracked_assets (asset_id VARCHAR PRIMARY KEY, asset_class VARCHAR, "
            "is_active BOOLEAN, tracking_users INTEGER, first_acquired DATE, history_start DATE, "
            "first_tracked_at TIMESTAMPTZ, last_tracked_at TIMESTAMPTZ, "
            "last_price_update TIMESTAMPTZ, updated_at TIMESTAMPTZ)"
        )
        con.executemany(
            "INSERT INTO tracked_assets (asset_id, asset_class, is_active, tracking_users, "
            "first_acquired) VALUES (?, 'crypto', true, 1, DATE '2025-01-01')",
            [[k] for k in keys],
        )
    finally:
        con.close()


def resources(path: Path, state: Path, market_cls=AnySymbolMarket) -> dict:
    warehouse = Warehouse(path=str(path), lock_timeout_seconds=60)
    return {
        "warehouse": warehouse,
        "io_manager": DuckDBUpsertIOManager(warehouse=warehouse),
        "market": market_cls(
            now=NOW.isoformat(), crypto_source="demo", stock_source="demo", state_dir=str(state)
        ),
        "portfolio": PortfolioFile(path=str(state / "no-portfolio.csv")),
        "price_checks": PriceChecks(),
    }


def request_shape(result) -> dict:
    requests = result if isinstance(result, list) else []
    return {
        "run_requests": len(requests),
        "skip": None if requests else str(getattr(result, "skip_message", result)),
        "ranges": [[r.tags.get(RANGE_START_TAG), r.tags.get(RANGE_END_TAG)] for r in requests],
    }


def schedule_tick(schedule, instance, res: dict, at: datetime, reps: int) -> dict:
    def tick():
        with dg.build_schedule_context(
            instance=instance, scheduled_execution_time=at, resources=res
        ) as ctx:
            return schedule(ctx)

    seconds, result = timed(tick, reps)
    return {"seconds": seconds, **request_shape(result)}


def sensor_ticks(instance, res: dict, keys: list[str], reps: int) -> dict:
    summary = {k: {"first": "2025-01-01", "class": "crypto", "accounts": ["main"]} for k in keys}
    instance.report_runless_asset_event(
        dg.AssetMaterialization(
            holdings.key, metadata={SUMMARY_METADATA: dg.JsonMetadataValue(summary)}
        )
    )

    def tick(cursor):
        with dg.build_sensor_context(instance=instance, cursor=cursor, resources=res) as ctx:
            result = holdings_sensor(ctx)
        if isinstance(result, dg.SensorResult):
            return result.cursor or cursor, len(result.run_requests or [])
        return cursor, 0

    out, cursor = {}, None
    for name in ("first", "repairs"):  # holdings seen; then the repairs look (once per 5 min)
        t0 = time.perf_counter()
        cursor, requested = tick(cursor)
        out[f"{name}_seconds"], out[f"{name}_run_requests"] = time.perf_counter() - t0, requested
    out["steady_seconds"], (_, out["steady_run_requests"]) = timed(lambda: tick(cursor), reps)
    return out


def ranged_run(instance, base: Path, keys: list[str], state: Path, reps: int) -> dict:
    tags = {RANGE_START_TAG: f"{DAY}|{keys[0]}", RANGE_END_TAG: f"{DAY}|{keys[-1]}"}
    times, run_id, path = [], None, None
    for rep in range(reps):  # a fresh copy each time: the day's first fetch, every time
        path = base.with_name(f"run{rep}.duckdb")
        shutil.copy(base, path)
        res = resources(path, state)
        t0 = time.perf_counter()
        result = dg.materialize(
            [prices_1h], instance=instance, resources=res, tags=tags, run_config=QUIET
        )
        times.append(time.perf_counter() - t0)
        assert result.success
        run_id = result.run_id
    con = duckdb.connect(str(path), read_only=True)
    stored = con.execute("SELECT count(*), count(DISTINCT symbol) FROM prices_1h").fetchone()
    con.close()
    res = resources(path, state)
    evaluation = Evaluation("prices_1h", "1h", NOW, run_id, PriceChecks())
    check_seconds, results = timed(
        lambda: list(evaluation.run(res["warehouse"], res["market"], CHECKS)), reps
    )
    return {
        "run_seconds": statistics.median(times),
        "run_seconds_all": times,
        "rows": stored[0],
        "symbols_stored": stored[1],
        "checks_seconds": check_seconds,
        "checks_passed": {r.check_name: r.passed for r in results},
    }


def ui_listing(instance, keys: list[str], reps: int) -> dict:
    seconds, listed = timed(
        lambda: symbol_date_partitions.get_partition_keys(dynamic_partitions_store=instance), reps
    )
    block = Block(keys[0], keys[-1], tuple(keys))
    day = date.fromisoformat(DAY)
    loops = 1000
    t0 = time.perf_counter()
    for _ in range(loops):
        block_range_tags(block, day, day)
    return {
        "list_seconds": seconds,
        "keys": len(listed),
        "us_per_key": seconds / len(listed) * 1e6,
        "range_tags_seconds": (time.perf_counter() - t0) / loops,
    }


def measure(n: int, reps: int, run_reps: int, list_reps: int) -> dict:
    keys = symbols(n)
    tmp = Path(tempfile.mkdtemp(prefix=f"scale{n}-"))
    try:
        state = tmp / "state"
        state.mkdir()
        base = tmp / "warehouse.duckdb"
        make_warehouse(base, keys)
        with dg.instance_for_test(temp_dir=str(tmp)) as instance:
            instance.add_dynamic_partitions("symbols", keys)
            res = resources(base, state)
            out = {
                "intraday_refresh": schedule_tick(intraday_refresh, instance, res, NOW, reps),
                "daily_close": schedule_tick(daily_close, instance, res, DAILY_CLOSE_AT, reps),
                "holdings_sensor": sensor_ticks(instance, res, keys, reps),
                "ranged_run": ranged_run(instance, base, keys, state, run_reps),
                "ui": ui_listing(instance, keys, list_reps),
            }
        return out
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


ROWS = [
    ("intraday_refresh tick", lambda m: m["intraday_refresh"]["seconds"]),
    ("daily_close tick", lambda m: m["daily_close"]["seconds"]),
    ("holdings_sensor first tick", lambda m: m["holdings_sensor"]["first_seconds"]),
    ("holdings_sensor repairs tick", lambda m: m["holdings_sensor"]["repairs_seconds"]),
    ("holdings_sensor steady tick", lambda m: m["holdings_sensor"]["steady_seconds"]),
    ("ranged run, 1 day × N", lambda m: m["ranged_run"]["run_seconds"]),
    ("its checks", lambda m: m["ranged_run"]["checks_seconds"]),
    ("UI: list all keys", lambda m: m["ui"]["list_seconds"]),
    ("platform: range tags", lambda m: m["ui"]["range_tags_seconds"]),
]


def table(figures: dict[int, dict]) -> str:
    ns = sorted(figures)
    lo, hi = ns[0], ns[-1]
    head = (
        f"| path | N={lo} | N={hi} | per symbol at {lo} | per symbol at {hi} "
        f"| each added symbol | ×{hi // lo} symbols → |"
    )
    lines = [head, "|---|---:|---:|---:|---:|---:|---|"]
    for name, get in ROWS:
        a, b = get(figures[lo]), get(figures[hi])
        ratio = b / a if a else float("nan")
        added = max(b - a, 0.0) / (hi - lo)
        verdict = (
            "flat"
            if ratio < 2
            else "linear, same per symbol"
            if b / hi <= 1.5 * a / lo
            else "grows per symbol"
        )
        lines.append(
            f"| {name} | {fmt(a)} | {fmt(b)} | {fmt(a / lo)} | {fmt(b / hi)} | {fmt(added)} "
            f"| ×{ratio:.1f} ({verdict}) |"
        )
    return "\n".join(lines)


def fmt(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds * 1e6:.1f} µs"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, nargs="+", default=[10, 300])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--run-reps", type=int, default=3)
    parser.add_argument("--list-reps", type=int, default=5)
    args = parser.parse_args()
    for var in [v for v in os.environ if v.startswith("PLATFORM_") and v != "PLATFORM_FIRST_DATE"]:
        os.environ.pop(var)  # the developer's sources and paths must not leak in
    print(f"load average at start: {os.getloadavg()}")
    figures = {}
    for n in args.symbols:
        t0 = time.perf_counter()
        figures[n] = measure(n, args.reps, args.run_reps, args.list_reps)
        print(f"N={n}: {time.perf_counter() - t0:.0f} s")
        print(json.dumps(figures[n], default=str, indent=1))
    print(table(figures))
    print(f"load average at end: {os.getloadavg()}")
    record(
        "scale_symbols",
        {
            "now": NOW.isoformat(),
            "reps": args.reps,
            "run_reps": args.run_reps,
            "list_reps": args.list_reps,
            "by_symbols": {str(n): m for n, m in figures.items()},
            "table": table(figures),
        },
    )


if __name__ == "__main__":
    main()
