"""Pruning superseded runs: time per run and what it frees in an instance on disk.

  build    a fresh DAGSTER_HOME with the project's dagster.yaml; --runs scheduled runs (tags of
           intraday_refresh) of a trivial asset partitioned by day, each with an asset check:
           every partition twice, one pass after the other, so the first pass is superseded;
  dry      prune with dry_run (examining only), then prune for real (examining and deleting),
           14 days later, every run old enough;
  after    the latest materialisation of every partition and the check's latest evaluation are
           the same as before; sizes of the instance's parts before and after;
  reuse    --reuse-runs more runs: how much the SQLite files grow into the pages pruning freed.

Usage: prune_runs.py [--runs 300] [--reuse-runs 50]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import _common
import dagster as dg
from dagster._core.event_api import PartitionKeyFilter

sys.path.insert(0, str(_common.ROOT))

from platform_pkg.housekeeping.prune import Policy, prune  # noqa: E402
from platform_pkg.runs import SCHEDULE_TAG  # noqa: E402

TAGS = {SCHEDULE_TAG: "intraday_refresh", "dagster/schedule_name": "intraday_refresh"}


def build_assets(partitions: int):
    days = dg.DailyPartitionsDefinition(start_date="2025-01-01")
    keys = days.get_partition_keys(current_time=datetime(2026, 1, 1, tzinfo=UTC))[:partitions]

    @dg.asset(partitions_def=days)
    def candles() -> None:
        return None

    @dg.asset_check(asset=candles)
    def candles_ok() -> dg.AssetCheckResult:
        return dg.AssetCheckResult(passed=True, metadata={"rows": 24})

    return candles, candles_ok, keys


def sizes(home: Path) -> dict:
    """Bytes of the instance's parts (apparent size) and the run shards' count."""
    shards = [p for p in (home / "history" / "runs").glob("*.db") if p.name != "index.db"]

    def tree(path: Path) -> int:
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())

    def db(path: Path) -> int:
        return sum(p.stat().st_size for p in path.parent.glob(f"{path.name}*") if p.is_file())

    return {
        "total": tree(home),
        "run_shards": sum(p.stat().st_size for p in shards),
        "run_shard_files": len(shards),
        "index_db": db(home / "history" / "runs" / "index.db"),
        "runs_db": db(home / "history" / "runs.db"),
        "compute_log_dirs": len(list((home / "storage").glob("*-*-*-*-*"))),
        "check_execution_rows": rows(home / "history" / "runs" / "index.db"),
    }


def rows(index_db: Path) -> int:
    with sqlite3.connect(index_db) as con:
        return con.execute("SELECT count(*) FROM asset_check_executions").fetchone()[0]


def free_pages(path: Path) -> int:
    """Bytes of the SQLite file's free pages: reused by later writes before the file grows."""
    with sqlite3.connect(path) as con:
        pages = con.execute("PRAGMA freelist_count").fetchone()[0]
        return pages * con.execute("PRAGMA page_size").fetchone()[0]


def latest_state(instance, candles, check_key, keys) -> dict:
    out = {}
    for key in keys:
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=candles.key, asset_partitions=[key]), limit=1
        ).records
        out[key] = records[0].storage_id if records else None
        history = instance.event_log_storage.get_asset_check_execution_history(
            check_key, limit=1, partition_filter=PartitionKeyFilter(key=key)
        )
        out[f"check {key}"] = history[0].run_id if history else None
    history = instance.event_log_storage.get_asset_check_execution_history(check_key, limit=1)
    out["check"] = history[0].run_id if history else None
    return out


def materialize(instance, assets, keys) -> float:
    started = time.perf_counter()
    for key in keys:
        assert dg.materialize(assets, partition_key=key, instance=instance, tags=TAGS).success
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--reuse-runs", type=int, default=50)
    args = parser.parse_args()
    candles, candles_ok, keys = build_assets(args.runs // 2)
    home = Path(tempfile.mkdtemp(prefix="prune_runs_"))
    shutil.copy(_common.ROOT / "dagster.yaml", home / "dagster.yaml")
    os.environ["DAGSTER_HOME"] = str(home)
    try:
        with dg.DagsterInstance.from_config(str(home)) as instance:
            build_s = materialize(instance, [candles, candles_ok], keys + keys)
            before = sizes(home)
            state = latest_state(instance, candles, candles_ok.check_key, keys)
            now = datetime.now(UTC) + timedelta(days=15)
            policy = Policy(max_runs=args.runs)

            started = time.perf_counter()
            dry = prune(instance, policy, now=now, dry_run=True)
            dry_s = time.perf_counter() - started
            started = time.perf_counter()
            report = prune(instance, policy, now=now)
            prune_s = time.perf_counter() - started

            after = sizes(home)
            unchanged = latest_state(instance, candles, candles_ok.check_key, keys) == state
            index_free = free_pages(home / "history" / "runs" / "index.db")
            runs_free = free_pages(home / "history" / "runs.db")
            reuse_keys = (keys * 2)[: args.reuse_runs]
            materialize(instance, [candles, candles_ok], reuse_keys)
            reused = sizes(home)
        figures = {
            "runs": 2 * len(keys),
            "build_s_per_run": round(build_s / (2 * len(keys)), 3),
            "examined": report.examined,
            "deleted": len(report.deleted),
            "kept": report.kept_by_verdict(),
            "dry_run_deleted": len(dry.deleted),
            "examine_ms_per_run": round(1000 * dry_s / dry.examined, 2),
            "prune_ms_per_run": round(1000 * prune_s / report.examined, 2),
            "delete_ms_per_deleted_run": round(1000 * (prune_s - dry_s) / len(report.deleted), 2),
            "shard_bytes_freed": report.shard_bytes,
            "latest_unchanged": unchanged,
            "before": before,
            "after": after,
            "free_pages_bytes_after": {"index_db": index_free, "runs_db": runs_free},
            "reuse_runs": len(reuse_keys),
            "after_reuse": reused,
        }
    finally:
        shutil.rmtree(home, ignore_errors=True)
    for name, value in figures.items():
        print(f"{name:28} {value}")
    _common.record("prune_runs", figures)


if __name__ == "__main__":
    main()
