"""``python -m platform_pkg.cli status``: the platform status at a terminal.

Read-only: the warehouse is opened as the ``sql`` command opens it (``read_only``, waiting for a
writer's transaction to end) and closed as soon as the status is read, so it works while runs
write. The Dagster instance is read before the warehouse is opened (importing Dagster and loading the
instance take seconds, and a reader holds the writers up), or not at all with ``--no-runs``.
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import UTC, datetime
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    status = sub.add_parser(
        "status",
        help="how the platform is doing: freshness, what is stuck, what it cost",
        description="Show tracked symbols and accounts, freshness per source, deferred fetches, "
        "failed runs of the last 24 h, API use per source, known gaps, unreviewed anomalies and "
        "sizes. Reads only. Exit status 3 when a writer keeps the warehouse locked past --wait.",
    )
    status.add_argument("--format", choices=["text", "markdown", "json"], default="text")
    status.add_argument(
        "--no-runs",
        action="store_true",
        help="do not load the Dagster instance: no failed runs or symbol partitions, ~3 s sooner",
    )
    status.add_argument(
        "--wait",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="how long to wait for a writer to release the warehouse (default 30)",
    )
    status.add_argument(
        "--warehouse", type=Path, help="default $PLATFORM_WAREHOUSE, else data/warehouse.duckdb"
    )


def run(args: argparse.Namespace) -> int:
    import duckdb

    from platform_pkg.cli import WAREHOUSE_BUSY
    from platform_pkg.status import build, instance, render
    from platform_pkg.warehouse import query
    from platform_pkg.warehouse.connection import warehouse_path

    now = datetime.now(UTC)
    facts = instance.home_facts(now, read_runs=not args.no_runs)
    path = warehouse_path(str(args.warehouse) if args.warehouse else None)

    def waiting(holder: query.LockHolder) -> None:
        print(f"waiting up to {args.wait:g} s for {holder} to release {path} ...", file=sys.stderr)

    market_now = frozen_now() or now
    try:
        with query.open_read_only(path, wait_seconds=args.wait, on_wait=waiting) as con:
            status = build.build(con, now, market_now=market_now, instance=facts)
    except query.WarehouseMissingError as exc:
        with duckdb.connect() as con:  # nothing stored yet: the instance's half still stands
            status = build.build(con, now, market_now=market_now, instance=facts, notes=(str(exc),))
    except query.WarehouseBusyError as exc:
        print(exc, file=sys.stderr)
        return WAREHOUSE_BUSY
    shown = {"text": render.text, "markdown": render.markdown, "json": render.as_json}
    sys.stdout.write(shown[args.format](status).rstrip("\n") + "\n")
    return 0


def frozen_now() -> datetime | None:
    """``$PLATFORM_NOW``, the frozen clock the price runs judge candles by, if set."""
    raw = os.environ.get("PLATFORM_NOW")
    if not raw:
        return None
    moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
