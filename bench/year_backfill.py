"""A year of hourly candles for one symbol (365 date partitions) through the real CLI.

In a temp dir: a fresh DAGSTER_HOME (a copy of the project's dagster.yaml), a fresh warehouse
(PLATFORM_WAREHOUSE) and a frozen clock (PLATFORM_NOW). Adds BTC-USDT with the project CLI, then
runs, as a subprocess each,
  backfill     dagster asset materialize --select prices_1h --partition-range <year>
  incremental  the same command again: only the lookback should be re-read.
For each: runs created (from the instance), wall time, run and step duration (event log), API
requests (materialisation metadata and sync_log), rows stored, and peak memory: the sum of PSS
over the process tree (sampled every 20 ms) and the largest single process (wait4 ru_maxrss).
All of it --rounds times (default 3) from scratch; times and memory are medians over the rounds.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import _common
import dagster as dg
import duckdb

SYMBOL = "BTC-USDT"
FIRST, LAST = "2023-01-01", "2023-12-31"  # 365 days, 8,760 hourly candles
NOW = "2024-06-01T00:00:00Z"
DAGSTER = _common.ROOT / ".venv" / "bin" / "dagster"


def tree_pss_kb(root: int) -> tuple[frozenset[int], int]:
    """The pids of ``root``'s process tree and their summed PSS, from /proc. PSS, not RSS: forked
    processes share pages, and summing their RSS would count those pages once per process."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    tree, frontier = {root}, [root]
    while frontier:
        pid = frontier.pop()
        kids = [c for c, p in parents.items() if p == pid and c not in tree]
        tree.update(kids)
        frontier += kids
    total = 0
    for pid in tree:
        try:
            rollup = Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()
        except OSError:
            continue
        total += next((int(ln.split()[1]) for ln in rollup if ln.startswith("Pss:")), 0)
    return frozenset(tree), total


def measured(cmd: list[str], env: dict, log: Path) -> dict:
    """Run ``cmd``; wall time, peak tree PSS (sampled) and the largest process's max RSS."""
    peak = [0]
    with log.open("w") as out:
        t0, started = time.perf_counter(), time.time()
        proc = subprocess.Popen(cmd, env=env, cwd=log.parent, stdout=out, stderr=subprocess.STDOUT)
        done = threading.Event()

        def sample() -> None:
            previous: frozenset[int] = frozenset()
            while not done.wait(0.02):
                pids, kb = tree_pss_kb(proc.pid)
                # A sample taken while a process forks reads the parent before and the child
                # after the fork and counts shared pages twice: keep samples of a settled tree.
                if pids == previous:
                    peak[0] = max(peak[0], kb)
                previous = pids

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        done.set()
        sampler.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        print(log.read_text()[-3000:])
        raise SystemExit(f"{' '.join(cmd[:3])} failed with exit code {proc.returncode}")
    return {
        "wall_s": round(wall, 2),
        "_window": (started, time.time()),
        "peak_tree_pss_mb": round(peak[0] / 1024, 1),
        "max_process_rss_mb": round(usage.ru_maxrss / 1024, 1),
        "executor": "in-process"
        if "Executing steps in process" in log.read_text()
        else "multiprocess",
    }


def run_facts(home: Path, warehouse: Path, known_runs: set[str], window: tuple) -> dict:
    os.environ["DAGSTER_HOME"] = str(home)  # the project's event log storage lives under it
    with dg.DagsterInstance.from_config(str(home)) as instance:
        runs = [r for r in instance.get_runs() if r.run_id not in known_runs]
        assert runs, "the CLI created no run"
        run = runs[0]
        stats = instance.get_run_stats(run.run_id)
        steps = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.STEP_SUCCESS)
        step_s = sum(e.dagster_event.event_specific_data.duration_ms for e in steps) / 1000
        events = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION)
        events_s = max(e.timestamp for e in events) - min(e.timestamp for e in events)
        record = instance.fetch_materializations(dg.AssetKey("prices_1h"), limit=1).records[0]
        raw = {k: v.value for k, v in record.asset_materialization.metadata.items()}
        # The run's totals sit on its newest partition, prefixed run_ (older code: unprefixed).
        meta = {k.removeprefix("run_"): v for k, v in raw.items()}
    with duckdb.connect(str(warehouse), read_only=True) as con:
        requests, fetched, ingest_s = con.execute(
            "SELECT sum(api_requests), sum(rows_fetched), "
            "epoch(max(finished_at)) - epoch(min(started_at)) FROM sync_log WHERE run_id = ?",
            [run.run_id],
        ).fetchone()
        rows, keys, first, last, final = con.execute(
            "SELECT count(*), count(DISTINCT (symbol, ts)), min(ts), max(ts), bool_and(is_final) "
            "FROM prices_1h"
        ).fetchone()
    return {
        "run_id": run.run_id,
        "runs_created": len(runs),
        "run_status": run.status.value,
        "materialized_partitions": stats.materializations,
        # The CLI process: start-up, loading the code, creating the run; then tear-down.
        "cli_before_run_s": round(stats.start_time - window[0], 2),
        "run_duration_s": round(stats.end_time - stats.start_time, 2),
        "cli_after_run_s": round(window[1] - stats.end_time, 2),
        "step_duration_s": round(step_s, 2),
        # Fetch + upsert + watermarks (sync_log start to finish). Most of the rest of the step is
        # Dagster storing one materialisation event per partition (first to last event below).
        "ingest_duration_s": round(ingest_s, 2),
        "materialization_events": len(events),
        "first_to_last_event_s": round(events_s, 2),
        "api_requests_metadata": meta.get("api_requests"),
        "api_requests_sync_log": requests,
        "rows_fetched": fetched,
        "rows_inserted": meta.get("rows_inserted"),
        "rows_updated": meta.get("rows_updated"),
        "watermark_after": meta.get("watermark_after"),
        "rows_stored": rows,
        "distinct_keys_stored": keys,
        "stored_range": f"{first:%Y-%m-%d %H:%M} .. {last:%Y-%m-%d %H:%M}",
        "all_final": final,
    }


def one_round() -> dict[str, dict]:
    """A fresh instance and warehouse: the year's backfill, then the same range again."""
    phases: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="bench-backfill-") as tmp:
        home, warehouse = Path(tmp) / "dagster_home", Path(tmp) / "warehouse.duckdb"
        home.mkdir()
        shutil.copy(_common.ROOT / "dagster.yaml", home / "dagster.yaml")
        env = os.environ | {
            "DAGSTER_HOME": str(home),
            "PLATFORM_WAREHOUSE": str(warehouse),
            "PLATFORM_NOW": NOW,
            # As scripts/dev.sh: the run's 365 materialisation events are written as one batch.
            "DAGSTER_EVENT_BATCH_SIZE": "1000",
        }
        add = [_common.python(), "-m", "platform_pkg.cli", "symbols", "add", SYMBOL]
        subprocess.run(add, env=env, cwd=tmp, check=True, capture_output=True)
        materialize = [str(DAGSTER), "asset", "materialize", "-m", "platform_pkg.definitions"]
        materialize += ["--select", "prices_1h"]
        materialize += ["--partition-range", f"{FIRST}|{SYMBOL}...{LAST}|{SYMBOL}"]
        for phase in ("backfill", "incremental"):
            facts = measured(materialize, env, Path(tmp) / f"{phase}.log")
            known = {f["run_id"] for f in phases.values()}
            phases[phase] = facts | run_facts(home, warehouse, known, facts.pop("_window"))
    return phases


def checks(phases: dict[str, dict]) -> dict[str, bool]:
    backfill, again = phases["backfill"], phases["incremental"]
    return {
        "one run for 365 partitions": (backfill["runs_created"], backfill["materialized_partitions"])
        == (1, 365),
        "8,760 rows, no duplicates": backfill["rows_stored"] == backfill["distinct_keys_stored"] == 8760,
        "incremental re-run: one request": again["api_requests_sync_log"] == 1,
        "incremental re-run adds no rows": again["rows_stored"] == 8760,
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="fresh instance + 2 runs, each")
    rounds = [one_round() for _ in range(parser.parse_args().rounds)]
    figures: dict = {"symbol": SYMBOL, "range": f"{FIRST}..{LAST}", "now": NOW}
    figures["rounds"] = len(rounds)
    for phase in ("backfill", "incremental"):
        print(f"\n{phase}: dagster asset materialize --partition-range {FIRST}..{LAST} ({SYMBOL})")
        figures[phase] = rounds[-1][phase]  # counts are the same every round (checked below)
        for key in TIMINGS:  # times and memory: the median over the rounds, and each round
            values = [r[phase][key] for r in rounds]
            figures[phase][key] = statistics.median(values)
            figures[phase][f"{key}_rounds"] = values
        for key, value in figures[phase].items():
            if not key.endswith("_rounds"):
                print(f"  {key:26}{value}")
    figures["checks"] = {name: all(checks(r)[name] for r in rounds) for name in checks(rounds[0])}
    print()
    for check, ok in figures["checks"].items():
        print(f"  {'OK  ' if ok else 'FAIL'} {check}")
    _common.record("year_backfill", figures)


TIMINGS = [
    "wall_s", "cli_before_run_s", "run_duration_s", "cli_after_run_s", "step_duration_s",
    "ingest_duration_s", "first_to_last_event_s", "peak_tree_pss_mb", "max_process_rss_mb",
]  # fmt: skip


if __name__ == "__main__":
    main()
