"""Upsert of what the platform mostly writes — new candles after the newest stored per symbol, plus
the lookback's 3 re-read candles per symbol — onto a 1M-row table, vs a plain bulk insert.

Per repetition, on fresh DuckDB files in a temp dir, in the same process and in rotating order:
  bulk      connect, CREATE an unkeyed table, INSERT the Arrow batch, COMMIT, close (as in
            upsert_vs_bulk.py: the baseline of the targets);
  append    the same plain INSERT into a copy of the stored 1M-row table (no key handling);
  iomgr     DuckDBUpsertIOManager.handle_output (prices_1h's metadata: append column ts, group
            symbol), which connects, upserts in one transaction, commits and closes;
  upsert    upsert() alone in one transaction on its own connection;
  merge     upsert() with the same spec minus the append column: every row through the merge.
The 3 re-read candles come back as stored, or with ``--revised 1`` the newest (stored while
open) comes back final with other values. The stored table is laid out symbol by symbol (as
backfills write it; its newest rows spread over every row group) or hour by hour (as incremental
runs leave it). After every keyed write the table is checked: no duplicate key, every batch row
stored as sent, the untouched rows unchanged, the counts inserted / updated.
Usage: upsert_append.py [--reps N] [--new-hours 100 10000] [--layout symbol|time] [--revised N]
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import _common
import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import upsert_vs_bulk as base

from platform_pkg.warehouse.upsert import upsert

SYMBOLS, HOURS, REREAD = base.SYMBOLS, base.HOURS, 3  # 100 symbols x 10,000 hours stored
TABLE, SPEC = base.TABLE, base.SPEC
MERGE_SPEC = dataclasses.replace(SPEC, append_column=None, group_columns=())
NAMES = ("bulk", "append", "iomgr", "upsert", "merge")
TARGET = 1.2  # the IO manager's median against the bulk insert's


def stored_table(layout: str) -> pa.Table:
    """1,000,000 candles: symbol by symbol (as backfills write them) or hour by hour."""
    rows = base.candles(0, HOURS, seed=1)
    if layout == "time":
        rows = rows.take(pc.sort_indices(rows, [("ts", "ascending"), ("symbol", "ascending")]))
    return rows


def append_batch(existing: pa.Table, new_hours: int, revised: int) -> tuple[pa.Table, int]:
    """Per symbol the last 3 stored hours re-read (the newest ``revised`` with new values) and
    ``new_hours`` new; returns the batch and how many of its rows revise a stored one."""
    hour = (existing.column("ts").cast(pa.int64()).to_numpy() - base.START_US) // base.HOUR_US
    same = existing.filter(pa.array((hour >= HOURS - REREAD) & (hour < HOURS - revised)))
    changed = base.candles(HOURS - revised, revised, seed=2)  # e.g. the candle that was open
    parts = [same, changed, base.candles(HOURS, new_hours, seed=3)]
    batch = pa.concat_tables(parts).combine_chunks()
    order = pc.sort_indices(batch, [("symbol", "ascending"), ("ts", "ascending")])
    return batch.take(order), changed.num_rows  # what one page after another gives, per symbol


def time_plain_append(path: Path, batch: pa.Table) -> float:
    t0 = time.perf_counter()
    con = duckdb.connect(str(path))
    con.execute("BEGIN TRANSACTION")
    con.register("batch", batch)
    con.execute(f'INSERT INTO "{TABLE}" SELECT * FROM batch')  # noqa: S608 - constant
    con.execute("COMMIT")
    con.close()
    return time.perf_counter() - t0


def time_upsert(path: Path, batch: pa.Table, spec) -> tuple[float, tuple[int, int]]:
    t0 = time.perf_counter()
    con = duckdb.connect(str(path))
    con.execute("SET TimeZone = 'UTC'")  # as the warehouse's connections do
    con.execute("BEGIN TRANSACTION")
    stats = upsert(con, spec, batch)
    con.execute("COMMIT")
    con.close()
    return time.perf_counter() - t0, (stats.inserted, stats.updated)


def verify(path: Path, existing: pa.Table, batch: pa.Table, new_rows: int, revised: int) -> None:
    with duckdb.connect(str(path), read_only=True) as con:
        con.register("existing", existing)
        con.register("batch", batch)
        rows, keys = con.execute(
            f'SELECT count(*), count(DISTINCT (symbol, ts)) FROM "{TABLE}"'  # noqa: S608
        ).fetchall()[0]
        as_sent = con.execute(
            f'SELECT count(*) FROM batch b JOIN "{TABLE}" t USING (symbol, ts) '  # noqa: S608
            "WHERE (t.open, t.high, t.low, t.close, t.volume, t.source, t.is_final, t.fetched_at)"
            " IS NOT DISTINCT FROM "
            "(b.open, b.high, b.low, b.close, b.volume, b.source, b.is_final, b.fetched_at)"
        ).fetchall()[0][0]
        untouched = con.execute(
            f'SELECT count(*) FROM existing e JOIN "{TABLE}" t USING (symbol, ts) '  # noqa: S608
            "WHERE (t.close, t.fetched_at) = (e.close, e.fetched_at)"
        ).fetchall()[0][0]
    want = existing.num_rows + new_rows
    assert (rows, keys) == (want, want), f"{rows} rows, {keys} distinct keys; want {want}"
    assert as_sent == batch.num_rows, f"{as_sent} of {batch.num_rows} batch rows stored as sent"
    assert untouched == existing.num_rows - revised, f"{untouched} untouched rows kept"


def run_reps(tmp: Path, reps: int, existing: pa.Table, batch: pa.Table, revised: int) -> dict:
    seeded = tmp / "seeded.duckdb"
    base.seed_table(seeded, SPEC, existing)
    new_rows = batch.num_rows - SYMBOLS * REREAD
    want = (new_rows, revised)
    times: dict[str, list[float]] = {name: [] for name in NAMES}
    for rep in range(reps):
        paths = {name: tmp / f"{name}-{rep}.duckdb" for name in NAMES}
        for name in NAMES[1:]:
            shutil.copyfile(seeded, paths[name])
        # Rotate the order so that no variant always runs first or last.
        for name in NAMES[rep % len(NAMES) :] + NAMES[: rep % len(NAMES)]:
            if name == "bulk":
                times[name].append(base.time_bulk(paths[name], batch))
            elif name == "append":
                times[name].append(time_plain_append(paths[name], batch))
            elif name == "iomgr":
                seconds, meta = base.time_iomgr(paths[name], batch)
                assert (meta["rows_inserted"], meta["rows_updated"]) == want, meta
                times[name].append(seconds)
            else:
                seconds, counts = time_upsert(
                    paths[name], batch, SPEC if name == "upsert" else MERGE_SPEC
                )
                assert counts == want, (name, counts, want)
                times[name].append(seconds)
        for name in ("iomgr", "upsert", "merge"):
            verify(paths[name], existing, batch, new_rows, revised)
        print(f"  rep {rep + 1}/{reps}: " + "  ".join(f"{n} {times[n][-1]:.3f}s" for n in NAMES))
        for path in paths.values():
            path.unlink(missing_ok=True)
    seeded.unlink()
    return times


def summarise(times: dict[str, list[float]]) -> dict:
    bulk, append = statistics.median(times["bulk"]), statistics.median(times["append"])
    out = {}
    for name, values in times.items():
        median = statistics.median(values)
        out[name] = {
            "median_s": round(median, 4),
            "min_s": round(min(values), 4),
            "ratio_median": round(median / bulk, 2),
            # Per repetition against the bulk insert of the same repetition, then the median.
            "ratio_paired_median": round(
                statistics.median(v / b for v, b in zip(values, times["bulk"], strict=True)), 2
            ),
            "ratio_to_append_median": round(median / append, 2),
            "runs_s": [round(v, 4) for v in values],
        }
    out["target_met"] = out["iomgr"]["ratio_median"] <= TARGET
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=11)
    parser.add_argument("--new-hours", type=int, nargs="+", default=[100, 10_000])
    parser.add_argument("--layout", choices=("symbol", "time"), default="symbol")
    parser.add_argument(
        "--revised",
        type=int,
        choices=range(REREAD + 1),
        default=0,
        help="of the 3 re-read candles per symbol, how many come back with new values",
    )
    args = parser.parse_args()
    existing = stored_table(args.layout)
    figures: dict = {
        "reps": args.reps,
        "rows_existing": existing.num_rows,
        "layout": args.layout,
        "revised_per_symbol": args.revised,
    }
    with tempfile.TemporaryDirectory(prefix="bench-append-") as tmp:
        for new_hours in args.new_hours:
            batch, revised = append_batch(existing, new_hours, args.revised)
            print(f"\n{batch.num_rows:,} rows ({SYMBOLS * new_hours:,} new, {SYMBOLS * REREAD} "
                  f"re-read of which {revised} revised) onto {existing.num_rows:,} "
                  f"({args.layout}-major)")  # fmt: skip
            result = summarise(run_reps(Path(tmp), args.reps, existing, batch, revised))
            print(f"  {'':8}{'median':>9}{'min':>9}{'x bulk':>8}{'paired':>8}{'x append':>10}")
            for name in NAMES:
                s = result[name]
                print(f"  {name:8}{s['median_s']:>8.3f}s{s['min_s']:>8.3f}s"
                      f"{s['ratio_median']:>7.2f}x{s['ratio_paired_median']:>7.2f}x"
                      f"{s['ratio_to_append_median']:>9.2f}x")  # fmt: skip
            met = "MET" if result["target_met"] else "MISSED"
            print(f"  target <= {TARGET}x (IO manager, median, x bulk): {met}")
            figures[f"new_rows_{SYMBOLS * new_hours}"] = {
                "rows_batch": batch.num_rows,
                "rows_revised": revised,
                **result,
            }
    _common.record("upsert_append", figures)


if __name__ == "__main__":
    main()
