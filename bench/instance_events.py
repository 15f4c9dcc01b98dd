"""What recording a year-long ranged run costs the Dagster instance: SQLite (stock and the project's
batching event log) against PostgreSQL.

One ranged run of ``prices_1h`` over 2023 for BTC-USDT (365 partitions, 8,760 candles from the demo
market, a fresh warehouse) with ``dg.materialize`` in this process, on a fresh instance each time:

  sqlite-batching      dagster.yaml (platform_pkg/event_log_storage.py), DAGSTER_EVENT_BATCH_SIZE=1000
  sqlite-stock         dagster.yaml without its event_log_storage: Dagster's SQLite storage
  postgres             deploy/dagster.postgres.yaml, DAGSTER_EVENT_BATCH_SIZE=1000
  postgres-unbatched   deploy/dagster.postgres.yaml, no batching: one write per event

PostgreSQL is a local server started for the benchmark (platform_tests/postgres.py) with its
default durability (fsync and synchronous commit on), reached over TCP on 127.0.0.1: a server on
another machine adds a network round trip per statement. Timed by wrapping the instance's event
log storage: the time in ``store_event`` / ``store_event_batch`` for the run's materialisation
events (and, separately, for all its events), and the run's wall time. Variants alternate within
each round; reported are medians over ``--rounds`` (default 3).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

import _common
import dagster as dg
import yaml
from dagster._core.events.log import EventLogEntry

sys.path.insert(0, str(_common.ROOT))

from platform_pkg.prices.assets import prices_1h  # noqa: E402
from platform_tests.conftest import range_tags, resources_for  # noqa: E402
from platform_tests.postgres import PostgresServer  # noqa: E402

SYMBOL, FIRST, LAST = "BTC-USDT", "2023-01-01", "2023-12-31"
NOW = datetime(2024, 6, 1, tzinfo=UTC)
MATERIALIZATION = dg.DagsterEventType.ASSET_MATERIALIZATION
VARIANTS = {  # name: (instance file, DAGSTER_EVENT_BATCH_SIZE)
    "sqlite-batching": ("sqlite", "1000"),
    "sqlite-stock": ("sqlite-stock", "0"),
    "postgres": ("postgres", "1000"),
    "postgres-unbatched": ("postgres", "0"),
}


def instance_file(kind: str, home: Path) -> None:
    if kind == "postgres":
        shutil.copy(_common.ROOT / "deploy" / "dagster.postgres.yaml", home / "dagster.yaml")
        return
    config = yaml.safe_load((_common.ROOT / "dagster.yaml").read_text())
    if kind == "sqlite-stock":
        del config["event_log_storage"]
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))


def timed_storage(storage) -> dict[str, float]:
    """Wrap ``storage``'s writes; the returned dict fills with seconds and counts."""
    spent: dict[str, float] = defaultdict(float)

    def wrap(name: str):
        real = getattr(storage, name)

        def timed(arg):
            events = [arg] if isinstance(arg, EventLogEntry) else list(arg)
            t0 = time.perf_counter()
            real(arg)
            elapsed = time.perf_counter() - t0
            spent["all_events_s"] += elapsed
            spent["all_events"] += len(events)
            spent["writes"] += 1
            if all(e.dagster_event_type == MATERIALIZATION for e in events):
                spent["materialization_s"] += elapsed
                spent["materializations"] += len(events)
                spent["materialization_writes"] += 1

        setattr(storage, name, timed)

    wrap("store_event")
    wrap("store_event_batch")
    return spent


def one_run(variant: str, server: PostgresServer, tmp: Path) -> dict:
    kind, batch = VARIANTS[variant]
    home = tmp / variant
    home.mkdir()
    instance_file(kind, home)
    env = {"DAGSTER_HOME": str(home), "DAGSTER_EVENT_BATCH_SIZE": batch}
    env["DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS"] = "1"  # as scripts/dev.sh
    env["PLATFORM_RATE_LIMIT_DIR"] = str(home / "sources")
    if kind == "postgres":
        env |= server.dagster_env(server.create_database("bench"))
    os.environ.update(env)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        instance.add_dynamic_partitions("symbols", [SYMBOL])
        spent = timed_storage(instance.event_log_storage)
        t0 = time.perf_counter()
        result = dg.materialize(
            [prices_1h],
            instance=instance,
            resources=resources_for(home / "warehouse.duckdb", now=NOW),
            tags=range_tags(SYMBOL, FIRST, LAST),
        )
        wall = time.perf_counter() - t0
        assert result.success
        stored = len(instance.all_logs(result.run_id, of_type=MATERIALIZATION))
    assert stored == spent["materializations"] == 365, (stored, dict(spent))
    return {
        "run_wall_s": round(wall, 3),
        "materialization_s": round(spent["materialization_s"], 4),
        "materialization_writes": int(spent["materialization_writes"]),
        "all_events_s": round(spent["all_events_s"], 4),
        "all_events": int(spent["all_events"]),
        "writes": int(spent["writes"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    rounds = parser.parse_args().rounds
    results: dict[str, list[dict]] = defaultdict(list)
    server = PostgresServer(durable=True).start()
    try:
        for _ in range(rounds):
            with tempfile.TemporaryDirectory(prefix="bench-instance-") as tmp:
                for variant in VARIANTS:
                    results[variant].append(one_run(variant, server, Path(tmp)))
    finally:
        server.stop()
    figures: dict = {"symbol": SYMBOL, "range": f"{FIRST}..{LAST}", "rounds": rounds}
    print(f"\n{'variant':20}{'run s':>8}{'mat. events s':>15}{'writes':>8}{'all events s':>14}")
    for variant, runs in results.items():
        median = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        figures[variant] = median | {"rounds_" + k: [r[k] for r in runs] for k in runs[0]}
        print(
            f"{variant:20}{median['run_wall_s']:8.2f}{median['materialization_s']:15.3f}"
            f"{median['materialization_writes']:8.0f}{median['all_events_s']:14.3f}"
        )
    _common.record("instance_events", figures)


if __name__ == "__main__":
    main()
