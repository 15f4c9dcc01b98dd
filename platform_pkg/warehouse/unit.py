"""A unit of work: every write that must be true together, as data, and the one function that
commits it in one DuckDB transaction.

A fetch (prices, exchange trades, wallet history) or a derived-table build yields :class:`Unit`
values: rows for the asset's own table, rows for side tables (``rejected_rows``,
``corporate_actions``, ...), watermark moves, the ``sync_log`` row. :func:`commit` applies them
knowing nothing of prices, trades or wallets, and returns what it changed. A crash between two
units leaves the first committed and the second absent: exact.

An output that commits several units is a :class:`UnitStream`: a generator the IO manager drives,
sending back what each unit committed (``committed = yield unit``) so the stream can report it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Generator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa

from platform_pkg.warehouse import rejected_rows, sync_log, watermarks
from platform_pkg.warehouse.upsert import (
    Combine,
    Scope,
    TableSpec,
    UpsertStats,
    WriteContext,
    delete_keys,
    insert_new,
    next_change,
    soft_delete_missing,
    update_existing,
    upsert,
)
from platform_pkg.warehouse.watermarks import Coverage, Cursor, WatermarkMove

Rows = pd.DataFrame | pa.Table


class Mode(StrEnum):
    UPSERT = "upsert"  # insert new keys, update changed rows (old versions to history)
    INSERT_NEW = "insert_new"  # insert rows whose key is not stored; never update
    UPDATE_EXISTING = "update_existing"  # update stored rows only; never insert
    DELETE = "delete"  # remove rows by key (bookkeeping tables only)
    SOFT_DELETE_MISSING = "soft_delete_missing"  # mark live rows in scope not among rows deleted


@dataclass(frozen=True)
class TableWrite:
    """Rows for one table. ``spec`` None means the output's own table (declared by its asset)."""

    rows: Rows
    spec: TableSpec | None = None
    mode: Mode = Mode.UPSERT
    combine: Mapping[str, Combine] = field(default_factory=dict)
    scope: Scope | None = None  # for SOFT_DELETE_MISSING: the slice the rows are all of

    @property
    def table(self) -> str | None:
        return self.spec.name if self.spec is not None else None


@dataclass(frozen=True)
class Unit:
    """Everything that must be true together: data, side rows, watermarks, the log row."""

    writes: tuple[TableWrite, ...] = ()
    watermarks: tuple[WatermarkMove, ...] = ()
    # The sync_log row as of the units before this one; commit adds what this unit wrote.
    log: sync_log.SyncEntry | None = None
    close_runs: Mapping[str, str] = field(default_factory=dict)  # ended run → its status

    @classmethod
    def of(cls, rows: Rows | None, *more: TableWrite, **kwargs: Any) -> Unit:
        """A unit writing ``rows`` to the output's own table (upsert), plus ``more``."""
        own = (TableWrite(rows),) if rows is not None else ()
        return cls(writes=own + tuple(more), **kwargs)


@dataclass
class Committed:
    """What one unit (or, added up, a whole output) changed."""

    stats: dict[str, UpsertStats] = field(default_factory=dict)  # per table
    watermarks: dict[tuple[str, str], Coverage | Cursor | None] = field(default_factory=dict)
    deleted_keys: dict[str, list[tuple]] = field(default_factory=dict)
    runs_closed: int = 0

    def of(self, table: str) -> UpsertStats:
        return self.stats.get(table, UpsertStats())

    def add(self, other: Committed) -> None:
        for table, stats in other.stats.items():
            self.stats[table] = self.of(table) + stats
        self.watermarks.update(other.watermarks)
        for table, keys in other.deleted_keys.items():
            self.deleted_keys.setdefault(table, []).extend(keys)
        self.runs_closed += other.runs_closed


class UnitStream:
    """An output committed unit by unit. :meth:`units` yields each unit and receives what it
    committed; :meth:`metadata` describes the whole output once the last unit is in."""

    def units(self) -> Generator[Unit, Committed, None]:
        raise NotImplementedError

    def metadata(self) -> dict[str, Any]:
        return {}


def commit(
    con: duckdb.DuckDBPyConnection,
    own: TableSpec | None,
    unit: Unit,
    *,
    run_id: str | None,
    now: datetime,
) -> Committed:
    """Apply ``unit`` inside ``con``'s current transaction (the caller commits)."""
    result = Committed()
    specs = [w.spec or own for w in unit.writes]
    change = next_change(con) if any(s is not None and s.track_changes for s in specs) else None
    ctx = WriteContext(change=change, run_id=run_id, now=now)
    for write, spec in zip(unit.writes, specs, strict=True):
        if spec is None:
            raise ValueError("a unit writes to the output's own table, but none was declared")
        stats, deleted = _apply(con, spec, write, ctx)
        result.stats[spec.name] = result.of(spec.name) + stats
        if deleted:
            result.deleted_keys.setdefault(spec.name, []).extend(deleted)
    result.watermarks = watermarks.apply(con, unit.watermarks, now)
    result.runs_closed = sync_log.close_runs(con, unit.close_runs, now)
    if unit.log is not None:
        mine = result.of(own.name) if own is not None else UpsertStats()
        sync_log.save(
            con,
            replace(
                unit.log,
                rows_inserted=unit.log.rows_inserted + mine.inserted,
                rows_updated=unit.log.rows_updated + mine.updated,
                rows_deleted=unit.log.rows_deleted + mine.deleted,
                rows_rejected=unit.log.rows_rejected + result.of(rejected_rows.SPEC.name).inserted,
            ),
        )
    return result


def _apply(
    con: duckdb.DuckDBPyConnection, spec: TableSpec, write: TableWrite, ctx: WriteContext
) -> tuple[UpsertStats, list[tuple]]:
    if write.mode is Mode.UPSERT:
        return upsert(con, spec, write.rows, combine=write.combine, ctx=ctx), []
    if write.mode is Mode.INSERT_NEW:
        return insert_new(con, spec, write.rows, ctx=ctx), []
    if write.mode is Mode.UPDATE_EXISTING:
        return update_existing(con, spec, write.rows, ctx=ctx), []
    if write.mode is Mode.DELETE:
        return delete_keys(con, spec, write.rows), []
    if write.scope is None:
        raise ValueError(f"a soft delete of missing {spec.name} rows needs the scope they cover")
    return soft_delete_missing(con, spec, write.rows, write.scope, ctx=ctx)


def rows_by_day(
    unit: Unit, own: TableSpec, group_column: str, time_column: str
) -> Counter[tuple[str, str]]:
    """The rows ``unit`` writes to the output's own table, counted per (``group_column`` value,
    UTC day of ``time_column`` as YYYY-MM-DD) the way its commit counts them: a key twice in one
    write once (the last), a soft delete's key list not at all. Rows lacking either column are
    not counted."""
    counts: Counter[tuple[str, str]] = Counter()
    for write in unit.writes:
        spec = write.spec or own
        if spec.name != own.name or write.mode is Mode.SOFT_DELETE_MISSING:
            continue
        rows = write.rows
        names = rows.column_names if isinstance(rows, pa.Table) else list(rows.columns)
        if group_column not in names or time_column not in names or len(rows) == 0:
            continue
        keys = [k for k in spec.keys if k in names]
        wanted = list(dict.fromkeys([*keys, group_column, time_column]))
        frame = rows.select(wanted).to_pandas() if isinstance(rows, pa.Table) else rows[wanted]
        if keys and frame.duplicated(keys).any():
            frame = frame.drop_duplicates(keys, keep="last")
        days = pd.to_datetime(frame[time_column], utc=True).dt.strftime("%Y-%m-%d")
        groups = frame[group_column].astype(str)
        counts.update(zip(groups, days, strict=True))
    return counts
