"""Refreshing a catalogue into a test warehouse as the IO manager does, without Dagster."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from platform_pkg.catalog import lookup
from platform_pkg.catalog.model import COLUMNS, KEY, TABLE, SourceResult
from platform_pkg.catalog.refresh import CatalogRefresh, plan_refresh
from platform_pkg.warehouse.connection import connect, transaction
from platform_pkg.warehouse.unit import Committed, commit
from platform_pkg.warehouse.upsert import TableSpec

SPEC = TableSpec(TABLE, tuple(KEY), COLUMNS)


def refresh(path: Path, results: list[SourceResult], now: datetime) -> CatalogRefresh:
    """Plan against what ``path`` stores, then commit each unit in its own transaction."""
    with connect(path) as con:
        plan = plan_refresh(lookup.read_entries(con), results, now, lookup.last_successes(con))
    stream = CatalogRefresh(results, plan, "run-1", now)
    units, committed = stream.units(), None
    try:
        while True:
            unit = units.send(committed)
            with transaction(path) as con:
                committed = commit(con, SPEC, unit, run_id="run-1", now=now)
    except StopIteration:
        pass
    assert isinstance(committed, Committed | None)
    return stream
