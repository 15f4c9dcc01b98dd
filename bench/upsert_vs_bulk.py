"""Upsert of a 1M-row OHLCV batch (10 % revisions) into a 1M-row table vs a plain bulk insert.

Every repetition uses fresh DuckDB files in a temp dir and times, in the same process:
  bulk     connect, CREATE an unkeyed table, INSERT the Arrow batch, COMMIT, close;
  iomgr    DuckDBUpsertIOManager.handle_output (real OutputContext, prices_1h's metadata),
           which connects, upserts in one transaction, commits and closes;
  upsert   upsert() alone in one transaction on its own connection (no Dagster).
The upsert targets hold 1,000,000 rows beforehand (set up untimed). After each upsert the table is
checked: 1.9M rows, no duplicate key, every batch row stored as sent, untouched rows unchanged.
A last, separate pass times each statement upsert() issues. Usage: upsert_vs_bulk.py [--reps N]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import _common
import dagster as dg
import duckdb
import numpy as np
import pyarrow as pa

from platform_pkg.prices.assets import prices_1h
from platform_pkg.warehouse.io_manager import DuckDBUpsertIOManager, table_spec
from platform_pkg.warehouse.resources import Warehouse
from platform_pkg.warehouse.upsert import ensure_table, upsert

SYMBOLS, HOURS = 100, 10_000  # existing table: 100 symbols x 10,000 hours = 1,000,000 rows
REVISED, NEW = 1_000, 9_000  # per symbol: the newest 1,000 stored hours revised, 9,000 new ones
TABLE = "prices_1h"
START_US = 1_577_836_800_000_000  # 2020-01-01T00:00Z
HOUR_US = 3_600_000_000


def candles(first_hour: int, hours: int, seed: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    n = SYMBOLS * hours
    names = np.array([f"SYM{i:03d}-USDT" for i in range(SYMBOLS)], dtype=object)
    hour = np.tile(np.arange(first_hour, first_hour + hours, dtype=np.int64), SYMBOLS)
    open_ = rng.uniform(10, 1000, n)
    close = open_ * rng.lognormal(0, 0.01, n)
    return pa.table(
        {
            "symbol": pa.array(np.repeat(names, hours), pa.string()),
            "ts": pa.array(START_US + hour * HOUR_US, pa.timestamp("us", tz="UTC")),
            "open": open_,
            "high": np.maximum(open_, close) * 1.001,
            "low": np.minimum(open_, close) * 0.999,
            "close": close,
            "volume": rng.uniform(0, 1e6, n),
            "source": pa.array(["bench"] * n, pa.string()),
            "is_final": pa.array(np.ones(n, dtype=bool)),
            "fetched_at": pa.array(np.full(n, START_US + seed), pa.timestamp("us", tz="UTC")),
        }
    )


def seed_table(path: Path, spec, existing: pa.Table) -> None:
    with duckdb.connect(str(path)) as con:
        ensure_table(con, spec)
        con.register("existing", existing)
        con.execute(f'INSERT INTO "{TABLE}" SELECT * FROM existing')  # noqa: S608 - constant


def time_bulk(path: Path, batch: pa.Table) -> float:
    t0 = time.perf_counter()
    con = duckdb.connect(str(path))
    cols = ", ".join(f'"{c}" {t}' for c, t in SPEC.columns.items())
    con.execute(f"CREATE TABLE bulk ({cols})")
    con.execute("BEGIN TRANSACTION")
    con.register("batch", batch)
    con.execute("INSERT INTO bulk SELECT * FROM batch")
    con.execute("COMMIT")
    con.close()
    return time.perf_counter() - t0


def time_iomgr(path: Path, batch: pa.Table) -> tuple[float, dict]:
    manager = DuckDBUpsertIOManager(warehouse=Warehouse(path=str(path)))
    context = dg.build_output_context(asset_key=TABLE, definition_metadata=METADATA)
    t0 = time.perf_counter()
    manager.store(context, batch)
    elapsed = time.perf_counter() - t0
    return elapsed, {k: v.value for k, v in context.get_logged_metadata().items()}


def time_upsert(path: Path, batch: pa.Table, wrap=lambda con: con) -> tuple[float, dict]:
    steps, t0 = {}, time.perf_counter()
    con = duckdb.connect(str(path))
    con.execute("BEGIN TRANSACTION")
    steps["connect+BEGIN"] = time.perf_counter() - t0
    for step, action in (
        ("upsert() total", lambda: upsert(wrap(con), SPEC, batch)),
        ("COMMIT", lambda: con.execute("COMMIT")),
        ("close", con.close),
    ):
        t = time.perf_counter()
        action()
        steps[step] = time.perf_counter() - t
    return time.perf_counter() - t0, steps


def verify(path: Path, existing: pa.Table, batch: pa.Table) -> None:
    with duckdb.connect(str(path), read_only=True) as con:
        con.register("existing", existing)
        con.register("batch", batch)
        rows, keys = con.execute(
            f'SELECT count(*), count(DISTINCT (symbol, ts)) FROM "{TABLE}"'  # noqa: S608
        ).fetchone()
        as_sent = con.execute(
            f'SELECT count(*) FROM batch b JOIN "{TABLE}" t USING (symbol, ts) '  # noqa: S608
            "WHERE (t.open, t.high, t.low, t.close, t.volume, t.source, t.is_final, t.fetched_at)"
            " IS NOT DISTINCT FROM "
            "(b.open, b.high, b.low, b.close, b.volume, b.source, b.is_final, b.fetched_at)"
        ).fetchone()[0]
        untouched = con.execute(
            f'SELECT count(*) FROM existing e JOIN "{TABLE}" t USING (symbol, ts) '  # noqa: S608
            "WHERE t.close = e.close AND t.fetched_at = e.fetched_at"
        ).fetchone()[0]
    want = SYMBOLS * (HOURS + NEW)
    assert (rows, keys) == (want, want), f"{rows} rows, {keys} distinct keys; want {want}"
    assert as_sent == batch.num_rows, f"{as_sent} of {batch.num_rows} batch rows stored as sent"
    assert untouched == SYMBOLS * (HOURS - REVISED), f"{untouched} untouched rows kept"


class TimedConnection:
    """Times every statement upsert() runs (DuckDB's execute() runs a query to completion)."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self._con, self.timings = con, {}

    def execute(self, sql: str, *params) -> duckdb.DuckDBPyConnection:
        t0 = time.perf_counter()
        result = self._con.execute(sql, *params)
        label = next((lbl for key, lbl in LABELS if key in sql), sql.split()[0])
        self.timings[label] = self.timings.get(label, 0.0) + time.perf_counter() - t0
        return result

    def __getattr__(self, name):
        return getattr(self._con, name)


LABELS = [
    ("count(DISTINCT", "duplicate/null-key check"),
    ("DESCRIBE", "DESCRIBE batch"),
    ("information_schema", "table_columns (information_schema)"),
    ('SELECT count(*) FROM "', "count(*) before+after"),
    ("MERGE", "MERGE"),
]
METADATA = dict(prices_1h.specs_by_key[dg.AssetKey(TABLE)].metadata)
SPEC = table_spec(METADATA, TABLE)


def summary(values: list[float]) -> dict:
    return {"median_s": round(statistics.median(values), 3), "min_s": round(min(values), 3)}


def run_reps(tmp: Path, reps: int, existing: pa.Table, batch: pa.Table) -> dict[str, list]:
    times: dict[str, list[float]] = {"bulk": [], "iomgr": [], "upsert": []}
    for rep in range(reps):
        paths = {name: tmp / f"{name}-{rep}.duckdb" for name in times}
        seed_table(paths["iomgr"], SPEC, existing)
        seed_table(paths["upsert"], SPEC, existing)
        # Alternate the order so that neither side always runs on a warmer machine.
        for name in list(times) if rep % 2 == 0 else reversed(times):
            if name == "bulk":
                times[name].append(time_bulk(paths[name], batch))
            elif name == "iomgr":
                seconds, meta = time_iomgr(paths[name], batch)
                counts = (meta["rows_inserted"], meta["rows_updated"])
                assert counts == (SYMBOLS * NEW, SYMBOLS * REVISED), meta
                times[name].append(seconds)
            else:
                times[name].append(time_upsert(paths[name], batch)[0])
        verify(paths["iomgr"], existing, batch)
        verify(paths["upsert"], existing, batch)
        print(f"rep {rep + 1}/{reps}: " + "  ".join(f"{n} {times[n][-1]:.3f}s" for n in times))
        for path in paths.values():
            path.unlink()
    return times


def profile_pass(tmp: Path, existing: pa.Table, batch: pa.Table) -> dict[str, float]:
    seed_table(tmp / "profile.duckdb", SPEC, existing)
    timed: list[TimedConnection] = []
    _, outer = time_upsert(
        tmp / "profile.duckdb", batch, lambda c: timed.append(TimedConnection(c)) or timed[0]
    )
    frame = batch.to_pandas()
    t0 = time.perf_counter()
    pa.Table.from_pandas(frame, preserve_index=False)  # what as_arrow() does with a DataFrame
    return (
        outer | timed[0].timings | {"as_arrow(DataFrame), if given one": time.perf_counter() - t0}
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=7)
    reps = parser.parse_args().reps
    existing = candles(0, HOURS, seed=1)
    revisions = candles(HOURS - REVISED, REVISED, seed=2)  # same keys, new values
    batch = pa.concat_tables([revisions, candles(HOURS, NEW, seed=3)])
    with tempfile.TemporaryDirectory(prefix="bench-upsert-") as tmp:
        times = run_reps(Path(tmp), reps, existing, batch)
        profile = profile_pass(Path(tmp), existing, batch)
    bulk = summary(times["bulk"])
    figures: dict = {"reps": reps, "rows_existing": existing.num_rows, "rows_batch": batch.num_rows}
    print(
        f"\n{batch.num_rows:,} rows ({revisions.num_rows:,} revisions) into {existing.num_rows:,}"
    )
    print(f"{'':8}{'median':>9}{'min':>9}{'ratio(median)':>15}{'ratio(min)':>12}")
    for name, values in times.items():
        s = summary(values)
        s["ratio_median"] = round(s["median_s"] / bulk["median_s"], 2)
        s["ratio_min"] = round(s["min_s"] / bulk["min_s"], 2)
        figures[name] = s | {"runs_s": [round(v, 3) for v in values]}
        print(f"{name:8}{s['median_s']:>8.3f}s{s['min_s']:>8.3f}s"
              f"{s['ratio_median']:>14.2f}x{s['ratio_min']:>11.2f}x")  # fmt: skip
    figures["target_met"] = figures["iomgr"]["ratio_median"] <= 2.0
    print(f"target <= 2.0x (IO manager, median): {'MET' if figures['target_met'] else 'MISSED'}")
    print("\nprofile of one separate upsert() pass:")
    for label, seconds in profile.items():
        print(f"  {label:40}{seconds:8.3f}s")
    figures["profile_s"] = {k: round(v, 3) for k, v in profile.items()}
    _common.record("upsert_vs_bulk", figures)


if __name__ == "__main__":
    main()
