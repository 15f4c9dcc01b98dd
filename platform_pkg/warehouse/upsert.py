"""Bulk writes into keyed DuckDB tables: a few set-based statements per batch, never one per row.

Tables carry no index: uniqueness on the key is kept by the write path (every write merges on the
key, batches are checked for duplicate and null keys first) and verified by asset checks.
DuckDB's ART index makes a million-row upsert several times slower and buys nothing here.
Identifiers come from code (asset definitions); values only ever travel as Arrow data or
parameters.

A table may keep more than its current rows (declared on its :class:`TableSpec`):

* a **history table**: the previous version of every row an upsert changes or a soft delete
  marks, with ``valid_from`` (when that version was written), ``valid_to``, the run and the kind
  of change, appended in the same statement batch;
* **soft deletes**: a table with ``is_deleted`` / ``deleted_at`` columns never loses a row — a row
  its source no longer returns is marked, and restored when it comes back;
* a **change sequence** (``_change_seq``): every row a transaction writes gets one number from a
  sequence, so a derived table can read exactly what changed since it last looked.

A table whose rows mostly arrive after what it holds (candles: new ones after the newest stored
per symbol) declares an **append column** and its **group columns**. A batch row whose append value
lies beyond the largest stored for its group cannot have its key stored, so it is inserted
without a join; only the rest (the lookback's re-reads, revisions) is merged.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

_BATCH_VIEW = "__upsert_batch"
_BEYOND_VIEW = "__upsert_beyond"  # the batch rows beyond everything stored for their group
_HITS = "__upsert_hits"  # the batch rows whose key is already stored
_OLD = "__upsert_old"  # stored versions about to be replaced (tables with history)
_CHANGED = "__upsert_changed"  # a hit that changes its stored row
CHANGE_COLUMN = "_change_seq"
CHANGE_SEQUENCE = "platform_change_seq"
DELETED, DELETED_AT = "is_deleted", "deleted_at"
HISTORY_COLUMNS = {
    "valid_from": "TIMESTAMPTZ",
    "valid_to": "TIMESTAMPTZ",
    "run_id": "VARCHAR",
    "change": "VARCHAR",
}


class Combine(StrEnum):
    """How an upsert merges a stored value with an incoming one (default: take the incoming)."""

    LEAST = "least"
    GREATEST = "greatest"
    KEEP = "keep"  # the stored value, unless it is null


class Change(StrEnum):
    UPDATE = "update"
    DELETE = "delete"
    RESTORE = "restore"


@dataclass(frozen=True)
class TableSpec:
    """A keyed table: its key columns, declared column types, and columns that are not data.

    ``audit_columns`` (such as ``fetched_at``) are written with every changed row but a difference
    in them alone does not make a row count as updated, so re-reading unchanged data is a no-op.
    ``history`` names the table that keeps replaced versions; ``valid_from`` the column of a
    stored row that says since when its version is valid. ``track_changes`` stamps
    ``_change_seq`` on every row written. ``append_column`` (a key column, such as ``ts``) and
    ``group_columns`` (other key columns, such as ``symbol``) let rows beyond the newest stored
    for their group skip the merge.
    """

    name: str
    keys: tuple[str, ...]
    columns: dict[str, str] = field(default_factory=dict)
    audit_columns: tuple[str, ...] = ()
    history: str | None = None
    valid_from: str | None = None
    track_changes: bool = False
    append_column: str | None = None
    group_columns: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for ident in (self.name, *self.keys, *self.columns, *self.audit_columns):
            _check_ident(ident)
        for ident in (self.history, self.valid_from):
            if ident is not None:
                _check_ident(ident)
        if not self.keys:
            raise ValueError(f"table {self.name} declares no key columns")
        # Only a key made of them proves a row beyond the stored maximum new.
        if self.append_column is not None and self.append_column not in self.keys:
            raise ValueError(f"append column {self.append_column!r} of {self.name} is not a key")
        others = set(self.keys) - {self.append_column}
        if self.group_columns and (
            self.append_column is None or not set(self.group_columns) <= others
        ):
            raise ValueError(
                f"group columns {list(self.group_columns)} of {self.name} must be key columns "
                "other than its append column"
            )

    @property
    def soft_delete(self) -> bool:
        return DELETED in self.columns

    @property
    def all_columns(self) -> dict[str, str]:
        """The declared columns plus the bookkeeping column the spec asks for."""
        extra = {CHANGE_COLUMN: "BIGINT"} if self.track_changes else {}
        return {**self.columns, **extra}


@dataclass(frozen=True)
class UpsertStats:
    rows: int = 0
    inserted: int = 0
    updated: int = 0
    deleted: int = 0  # soft-deleted (or removed, for bookkeeping tables)
    restored: int = 0  # soft-deleted rows that came back (counted in ``updated`` too)

    @property
    def unchanged(self) -> int:
        return self.rows - self.inserted - self.updated

    def __add__(self, other: UpsertStats) -> UpsertStats:
        return UpsertStats(
            self.rows + other.rows,
            self.inserted + other.inserted,
            self.updated + other.updated,
            self.deleted + other.deleted,
            self.restored + other.restored,
        )


@dataclass(frozen=True)
class WriteContext:
    """What a write stamps on the rows it changes: the change number, the run, the time."""

    change: int | None = None
    run_id: str | None = None
    now: datetime | None = None


def _check_ident(ident: str) -> None:
    if not ident.replace("_", "").isalnum():
        raise ValueError(f"{ident!r} is not a plain identifier")


def q(ident: str) -> str:
    return '"' + ident.replace('"', '""') + '"'


def as_arrow(data: pd.DataFrame | pa.Table) -> pa.Table:
    if isinstance(data, pa.Table):
        return data
    return pa.Table.from_pandas(data, preserve_index=False)


def table_columns(con: duckdb.DuckDBPyConnection, table: str) -> dict[str, str]:
    # duckdb_columns(), which information_schema.columns wraps: the same rows in a third the time.
    rows = con.execute(
        "SELECT column_name, data_type FROM duckdb_columns() "
        "WHERE schema_name = current_schema() AND table_name = ? ORDER BY column_index",
        [table],
    ).fetchall()
    return dict(rows)


def ensure_table(
    con: duckdb.DuckDBPyConnection, spec: TableSpec, batch_types: dict[str, str] | None = None
) -> dict[str, str]:
    """Create ``spec``'s table if missing, add nullable columns the batch brings; return columns."""
    return _ensure(con, spec.name, spec.all_columns, batch_types)


def _ensure(
    con: duckdb.DuckDBPyConnection,
    table: str,
    columns: dict[str, str],
    batch_types: dict[str, str] | None = None,
) -> dict[str, str]:
    existing = table_columns(con, table)
    wanted = dict(columns)
    for col, typ in (batch_types or {}).items():
        wanted.setdefault(col, typ)
    if not existing:
        cols = ", ".join(f"{q(c)} {t}" for c, t in wanted.items())
        con.execute(f"CREATE TABLE IF NOT EXISTS {q(table)} ({cols})")
        return table_columns(con, table)
    added = {col: typ for col, typ in wanted.items() if col not in existing}
    for col, typ in added.items():
        con.execute(f"ALTER TABLE {q(table)} ADD COLUMN {q(col)} {typ}")
    return existing | added


def next_change(con: duckdb.DuckDBPyConnection) -> int:
    """A new change number, inside the caller's transaction (one per committed unit)."""
    con.execute(f"CREATE SEQUENCE IF NOT EXISTS {CHANGE_SEQUENCE} START 1")
    return int(con.execute(f"SELECT nextval('{CHANGE_SEQUENCE}')").fetchall()[0][0])


def upsert(
    con: duckdb.DuckDBPyConnection,
    spec: TableSpec,
    data: pd.DataFrame | pa.Table,
    *,
    combine: Mapping[str, Combine] | None = None,
    ctx: WriteContext = WriteContext(),
) -> UpsertStats:
    """Insert new keys and update changed rows of ``data`` into ``spec.name``, inside ``con``'s
    current transaction. Rows identical to what is stored (audit columns aside) are left alone;
    an empty batch changes nothing. ``combine`` merges chosen columns with the stored value."""
    with _registered(con, spec, data, runs=True) as batch:
        if batch is None:
            return UpsertStats()
        _check_combine(spec, combine or {}, batch.cols)
        beyond, rest = _split(con, spec, batch)
        inserted = updated = restored = 0
        if beyond is not None:
            inserted = _insert_beyond(con, spec, batch.cols, ctx, beyond)
        if rest is not None:
            if rest is not batch.rows:
                con.unregister(_BATCH_VIEW)
                con.register(_BATCH_VIEW, rest)
            within = _within(spec, rest) if batch.runs is not None else None
            merged = _merge(con, spec, batch.cols, combine or {}, ctx, rest.num_rows, within)
            inserted, updated, restored = inserted + merged[0], merged[1], merged[2]
        else:
            _ensure_history_for(con, spec, batch.cols)
    return UpsertStats(
        rows=batch.rows.num_rows, inserted=inserted, updated=updated, restored=restored
    )


def insert_new(
    con: duckdb.DuckDBPyConnection,
    spec: TableSpec,
    data: pd.DataFrame | pa.Table,
    *,
    ctx: WriteContext = WriteContext(),
) -> UpsertStats:
    """Insert the rows of ``data`` whose key is not stored; stored rows are never touched."""
    with _registered(con, spec, data) as batch:
        if batch is None:
            return UpsertStats()
        keys = ", ".join(q(k) for k in spec.keys)
        inserted = _insert(
            con, spec, batch.cols, ctx, f"{_BATCH_VIEW} s ANTI JOIN {q(spec.name)} t USING ({keys})"
        )
    return UpsertStats(rows=batch.rows.num_rows, inserted=inserted)


def update_existing(
    con: duckdb.DuckDBPyConnection,
    spec: TableSpec,
    data: pd.DataFrame | pa.Table,
    *,
    ctx: WriteContext = WriteContext(),
) -> UpsertStats:
    """Update the stored rows whose key ``data`` has; never insert, and never create the table."""
    if not table_columns(con, spec.name):
        return UpsertStats(rows=as_arrow(data).num_rows)
    with _registered(con, spec, data) as batch:
        if batch is None:
            return UpsertStats()
        _set_aside_hits(con, spec, batch.cols, {})
        updated, restored = _update(con, spec, batch.cols, {}, ctx)
        con.execute(f"DROP TABLE {_HITS}")
    return UpsertStats(rows=batch.rows.num_rows, updated=updated, restored=restored)


def delete_keys(
    con: duckdb.DuckDBPyConnection, spec: TableSpec, data: pd.DataFrame | pa.Table
) -> UpsertStats:
    """Remove the rows with the keys of ``data``: for bookkeeping tables (a served deferral),
    never for data, which is soft-deleted."""
    if not table_columns(con, spec.name):
        return UpsertStats()
    with _registered(con, spec, data, create=False) as batch:
        if batch is None:
            return UpsertStats()
        on = " AND ".join(f"t.{q(k)} = s.{q(k)}" for k in spec.keys)
        deleted = con.execute(
            f"DELETE FROM {q(spec.name)} t USING {_BATCH_VIEW} s WHERE {on}"
        ).fetchall()[0][0]
    return UpsertStats(rows=batch.rows.num_rows, deleted=deleted)


@dataclass(frozen=True)
class Scope:
    """A slice of a table: columns equal to values (or, ``within``, one of several), and a time
    column inside ``[start, end)``."""

    equals: Mapping[str, Any]
    time_column: str
    start: datetime
    end: datetime
    within: Mapping[str, Sequence[Any]] = field(default_factory=dict)

    def sql(self, alias: str) -> tuple[str, list[Any]]:
        for ident in (*self.equals, *self.within, self.time_column):
            _check_ident(ident)
        clauses = [f"{alias}.{q(c)} = ?" for c in self.equals]
        clauses += [f"list_contains(?, {alias}.{q(c)})" for c in self.within]
        clauses += [f"{alias}.{q(self.time_column)} >= ?", f"{alias}.{q(self.time_column)} < ?"]
        params = [*self.equals.values(), *(list(v) for v in self.within.values())]
        return " AND ".join(clauses), [*params, self.start, self.end]


def soft_delete_missing(
    con: duckdb.DuckDBPyConnection,
    spec: TableSpec,
    present: pd.DataFrame | pa.Table,
    scope: Scope,
    *,
    ctx: WriteContext = WriteContext(),
) -> tuple[UpsertStats, list[tuple]]:
    """Mark deleted every live row inside ``scope`` whose key is not among ``present`` (the keys
    the source returned for exactly that slice); returns the stats and the keys marked."""
    if not spec.soft_delete:
        raise ValueError(f"table {spec.name} has no {DELETED} column to soft-delete with")
    if not table_columns(con, spec.name):
        return UpsertStats(), []
    keys = list(spec.keys)
    batch = as_arrow(present).select(keys)
    con.register(_BATCH_VIEW, batch)
    try:
        where, params = scope.sql("t")
        on = " AND ".join(f"t.{q(k)} = s.{q(k)}" for k in keys)
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {_OLD} AS SELECT t.* FROM {q(spec.name)} t "
            f"WHERE {where} AND NOT coalesce(t.{q(DELETED)}, false) "
            f"AND NOT EXISTS (SELECT 1 FROM {_BATCH_VIEW} s WHERE {on})",
            params,
        )
        gone = con.execute(
            f"SELECT {', '.join(q(k) for k in keys)} FROM {_OLD} ORDER BY ALL"
        ).fetchall()
        if gone:
            _append_history(con, spec, f"{_OLD}", f"'{Change.DELETE}'", ctx)
            sets = [f"{q(DELETED)} = true", f"{q(DELETED_AT)} = ?"]
            params = [ctx.now]
            if spec.track_changes:
                sets.append(f"{q(CHANGE_COLUMN)} = ?")
                params.append(ctx.change)
            on_old = " AND ".join(f"t.{q(k)} = o.{q(k)}" for k in keys)
            con.execute(
                f"UPDATE {q(spec.name)} t SET {', '.join(sets)} FROM {_OLD} o WHERE {on_old}",
                params,
            )
        con.execute(f"DROP TABLE {_OLD}")
    finally:
        con.unregister(_BATCH_VIEW)
    return UpsertStats(rows=0, deleted=len(gone)), gone


# -- the statements ------------------------------------------------------------------------------


@dataclass
class _Batch:
    """A registered, deduplicated batch: its rows, the columns of it the table has (bookkeeping
    aside), the table's column types and, where the table has an append column, its runs."""

    rows: pa.Table
    cols: list[str]
    table_types: dict[str, str]
    runs: _Runs | None = None


class _registered:
    """Registers the deduplicated batch as a view and makes sure the table and its columns
    exist; yields a :class:`_Batch`, or None for an empty batch. ``runs``: cut the batch into
    runs along the table's append column, if it declares one."""

    def __init__(self, con, spec: TableSpec, data, create: bool = True, runs: bool = False):
        self.con, self.spec, self.data, self.create, self.runs = con, spec, data, create, runs

    def __enter__(self) -> _Batch | None:
        con, spec = self.con, self.spec
        batch = as_arrow(self.data)
        self.registered = False
        if batch.num_rows == 0:
            return None
        missing = [k for k in spec.keys if k not in batch.column_names]
        if missing:
            raise ValueError(f"output for table {spec.name} lacks key column(s) {missing}")
        _check_null_keys(spec, batch)
        con.register(_BATCH_VIEW, batch)
        self.registered = True
        types = _ensure_for(con, spec, batch) if self.create else table_columns(con, spec.name)
        runs = _runs(spec, batch, types) if self.runs else None
        # Distinct keys proven from the runs spare the batch DuckDB's count of distinct keys.
        if runs is None or not runs.distinct(spec, batch):
            deduped = _dedupe_keys(con, spec, batch)
            if deduped is not batch:
                batch, runs = deduped, _runs(spec, deduped, types) if self.runs else None
        cols = [c for c in batch.column_names if c in types and c != CHANGE_COLUMN]
        return _Batch(batch, cols, types, runs)

    def __exit__(self, *exc):
        if self.registered:
            self.con.unregister(_BATCH_VIEW)
        return False


def _ensure_for(con: duckdb.DuckDBPyConnection, spec: TableSpec, batch: pa.Table) -> dict[str, str]:
    """The table's columns, after creating it or adding what the spec or the batch brings."""
    existing = table_columns(con, spec.name)
    if existing and all(c in existing for c in (*spec.all_columns, *batch.column_names)):
        return existing  # nothing to add: the batch's DuckDB types are not needed
    described = con.execute(f"DESCRIBE SELECT * FROM {_BATCH_VIEW}").fetchall()
    return ensure_table(con, spec, {row[0]: row[1] for row in described})


def _check_null_keys(spec: TableSpec, batch: pa.Table) -> None:
    if any(batch.column(k).null_count for k in spec.keys):  # Arrow keeps the counts: free
        null_key = functools.reduce(pc.or_, (pc.is_null(batch.column(k)) for k in spec.keys))
        raise ValueError(
            f"{pc.sum(null_key).as_py()} row(s) for table {spec.name} have a null key "
            f"({', '.join(spec.keys)})"
        )


def _dedupe_keys(con: duckdb.DuckDBPyConnection, spec: TableSpec, batch: pa.Table) -> pa.Table:
    # Equal keys hash equally, so as many distinct hashes as rows proves the keys distinct; a
    # hash collision only sends the batch down the exact (slower) path below.
    keys = ", ".join(q(k) for k in spec.keys)
    # fetchall, not fetchone: DuckDB 2.0 keeps a half-read result open and refuses the next query.
    ((distinct,),) = con.execute(
        f"SELECT count(DISTINCT hash({keys})) FROM {_BATCH_VIEW}"
    ).fetchall()
    if distinct == batch.num_rows:
        return batch
    # The last occurrence of a key wins, as the newest page of an overlapping fetch should.
    deduped = batch.to_pandas().drop_duplicates(list(spec.keys), keep="last")
    batch = pa.Table.from_pandas(deduped, preserve_index=False, schema=batch.schema)
    con.unregister(_BATCH_VIEW)
    con.register(_BATCH_VIEW, batch)
    return batch


# -- rows beyond what is stored ------------------------------------------------------------------

# Arrow types DuckDB reads value for value as the named column type: equal in Arrow is equal
# stored, and an append value compares with the stored ones as the integer below.
_EXACT = {
    pa.string(): "VARCHAR",
    pa.large_string(): "VARCHAR",
    pa.string_view(): "VARCHAR",
    pa.bool_(): "BOOLEAN",
    pa.int8(): "TINYINT",
    pa.int16(): "SMALLINT",
    pa.int32(): "INTEGER",
    pa.int64(): "BIGINT",
    pa.date32(): "DATE",  # days since the epoch
    pa.timestamp("us"): "TIMESTAMP",  # microseconds since the epoch
}
_AS_INTEGER = {  # the stored maximum, as the same integer
    "TINYINT": "max({})",
    "SMALLINT": "max({})",
    "INTEGER": "max({})",
    "BIGINT": "max({})",
    "DATE": "max({}) - DATE '1970-01-01'",
    "TIMESTAMP": "epoch_us(max({}))",
    "TIMESTAMP WITH TIME ZONE": "epoch_us(max({}))",
}
_MAX_RUNS = 4096  # a batch more fragmented than this is merged whole
_SLICE_ROWS = 4096  # slices of the batch smaller than this on average are copied into one
_NOTHING_STORED = np.iinfo(np.int64).min


def _exact_type(typ: pa.DataType) -> str | None:
    if pa.types.is_timestamp(typ) and typ.unit == "us" and typ.tz is not None:
        return "TIMESTAMP WITH TIME ZONE"  # an instant, whatever the zone it is shown in
    return _EXACT.get(typ)


@dataclass(frozen=True)
class _Runs:
    """A batch cut into runs: consecutive rows equal in every key column but the append column,
    along which they strictly rise, so that no two rows of a run share a key."""

    starts: np.ndarray
    stops: np.ndarray
    values: np.ndarray  # each row's append value as an integer (days, microseconds, itself)
    first: Any  # the smallest append value, as the Python value DuckDB takes as a parameter

    def distinct(self, spec: TableSpec, batch: pa.Table) -> bool:
        """True if no two rows share a key: runs equal in the other key columns cover disjoint
        ranges of the append column. False says only that this proof failed."""
        if len(self.starts) == 1:
            return True
        others = [k for k in spec.keys if k != spec.append_column]
        heads = [batch.column(k).take(self.starts) for k in others]
        firsts, lasts = self.values[self.starts], self.values[self.stops - 1]
        runs = pa.Table.from_arrays(
            [*heads, pa.array(firsts), pa.array(lasts)],
            names=[*(f"k{i}" for i in range(len(others))), "first", "last"],
        )
        order = [(f"k{i}", "ascending") for i in range(len(others))] + [("first", "ascending")]
        runs = runs.take(pc.sort_indices(runs, sort_keys=order))
        overlaps = runs["last"].to_numpy()[:-1] >= runs["first"].to_numpy()[1:]
        for i in range(len(others)):
            overlaps &= _same_as_previous(runs.column(f"k{i}"))
        return not overlaps.any()


def _same_as_previous(column: pa.ChunkedArray) -> np.ndarray:
    n = len(column)
    return pc.equal(column.slice(1), column.slice(0, n - 1)).to_numpy()


def _runs(spec: TableSpec, batch: pa.Table, types: dict[str, str]) -> _Runs | None:
    """The batch's runs, or None: no append column, a key column of an Arrow type DuckDB does not
    store value for value, or more than ``_MAX_RUNS`` runs."""
    if spec.append_column is None or types.get(spec.append_column) not in _AS_INTEGER:
        return None
    if any(_exact_type(batch.schema.field(k).type) != types.get(k) for k in spec.keys):
        return None
    column = batch.column(spec.append_column)
    try:  # the bounds become query parameters: Python values, which end with the year 9999
        bounds = pc.min_max(column)
        first, _last = bounds["min"].as_py(), bounds["max"].as_py()
    except (ValueError, OverflowError):
        return None
    if pa.types.is_timestamp(column.type) or pa.types.is_date(column.type):
        column = column.cast(pa.int64() if pa.types.is_timestamp(column.type) else pa.int32())
    values = column.to_numpy().astype(np.int64, copy=False)
    rising = values[1:] > values[:-1]
    for key in spec.keys:
        if key != spec.append_column and rising.any():
            rising &= _same_as_previous(batch.column(key))
    starts = np.concatenate(([0], np.flatnonzero(~rising) + 1))
    if len(starts) > _MAX_RUNS:
        return None
    return _Runs(starts, np.append(starts[1:], len(values)), values, first)


def _split(
    con: duckdb.DuckDBPyConnection, spec: TableSpec, batch: _Batch
) -> tuple[pa.Table | None, pa.Table | None]:
    """(the batch rows beyond the newest stored for their group, the other rows); None for
    none."""
    runs = batch.runs
    if runs is None:
        return None, batch.rows
    newest = _newest_stored(con, spec, batch)
    # A run rises along the append column, so the rows beyond are its tail: found by bisection.
    cuts = np.array(
        [
            start + np.searchsorted(runs.values[start:stop], top, side="right")
            for start, stop, top in zip(runs.starts, runs.stops, newest, strict=True)
        ]
    )
    if (cuts == runs.starts).all():
        return batch.rows, None
    if (cuts == runs.stops).all():
        return None, batch.rows
    return _ranges(batch.rows, cuts, runs.stops), _ranges(batch.rows, runs.starts, cuts)


def _ranges(rows: pa.Table, starts: np.ndarray, stops: np.ndarray) -> pa.Table:
    """The rows in ``[starts[i], stops[i])``, as zero-copy slices (ranges that touch are one)."""
    keep = starts < stops
    starts, stops = starts[keep], stops[keep]
    apart = starts[1:] != stops[:-1]
    starts, stops = starts[np.r_[True, apart]], stops[np.r_[apart, True]]
    table = pa.concat_tables(rows.slice(a, b - a) for a, b in zip(starts, stops, strict=True))
    # DuckDB pays ~0.1 ms for every Arrow chunk it reads: small slices are copied into one.
    return table.combine_chunks() if table.num_rows < _SLICE_ROWS * len(starts) else table


def _newest_stored(con: duckdb.DuckDBPyConnection, spec: TableSpec, batch: _Batch) -> np.ndarray:
    """Per run, the largest append value stored for its group (as an integer), or the smallest
    int64 if the group has nothing stored at or after the batch's first value. Inside the
    caller's transaction, so it sees what this transaction wrote before."""
    column, groups = spec.append_column, [q(g) for g in spec.group_columns]
    newest = _AS_INTEGER[batch.table_types[column]].format(q(column))
    # The lower bound is the batch's own value, exact: a filter on the column skips, by its
    # zonemaps, the row groups that end before the batch begins.
    stored = con.execute(
        f"SELECT {', '.join([*groups, newest])} FROM {q(spec.name)} WHERE {q(column)} >= ?"
        + (" GROUP BY ALL" if groups else ""),
        [batch.runs.first],
    ).fetchall()
    found = {tuple(row[:-1]): row[-1] for row in stored if row[-1] is not None}
    heads = [batch.rows.column(g).take(batch.runs.starts).to_pylist() for g in spec.group_columns]
    runs = zip(*heads, strict=True) if heads else [()] * len(batch.runs.starts)
    return np.array([found.get(group, _NOTHING_STORED) for group in runs], dtype=np.int64)


def _within(spec: TableSpec, rows: pa.Table) -> tuple[str, list[Any]]:
    """A filter on the stored rows that keeps every one ``rows`` can match: its range of the
    append column (exact values of an exact type), which zonemaps and scans apply early."""
    column = q(spec.append_column)
    bounds = pc.min_max(rows.column(spec.append_column))
    return f"t.{column} BETWEEN ? AND ?", [bounds["min"].as_py(), bounds["max"].as_py()]


# -- the statements ------------------------------------------------------------------------------


def _merge(
    con: duckdb.DuckDBPyConnection,
    spec: TableSpec,
    cols: list[str],
    combine: Mapping[str, Combine],
    ctx: WriteContext,
    rows: int,
    within: tuple[str, list[Any]] | None,
) -> tuple[int, int, int]:
    """Update the stored rows the registered batch (of ``rows`` rows) changes and insert the
    others; ``within`` optionally narrows the stored rows it can match. Returns (inserted,
    updated, restored)."""
    hits = _set_aside_hits(con, spec, cols, combine, within)
    (updated, restored), inserted = _update(con, spec, cols, combine, ctx, within), 0
    if hits < rows:  # keys are unique in the table: one hit per batch row at most
        keys = ", ".join(q(k) for k in spec.keys)
        source = f"{_BATCH_VIEW} s" + (f" ANTI JOIN {_HITS} h USING ({keys})" if hits else "")
        inserted = _insert(con, spec, cols, ctx, source)
    con.execute(f"DROP TABLE {_HITS}")
    return inserted, updated, restored


def _set_aside_hits(
    con: duckdb.DuckDBPyConnection,
    spec: TableSpec,
    cols: list[str],
    combine: Mapping[str, Combine],
    within: tuple[str, list[Any]] | None = None,
) -> int:
    """Set aside in ``_HITS`` the batch rows whose key is stored, each flagged whether it changes
    the stored row (audit columns aside): this one join with the table also decides the update.
    Returns how many rows were set aside."""
    on = " AND ".join(f"t.{q(k)} = s.{q(k)}" for k in spec.keys)
    data_cols = [c for c in cols if c not in spec.keys and c not in spec.audit_columns]
    changed = (
        " OR ".join(f"t.{q(c)} IS DISTINCT FROM {_merged(c, combine)}" for c in data_cols)
        or "false"
    )
    where, params = (f" WHERE {within[0]}", within[1]) if within is not None else ("", [])
    ((hits,),) = con.execute(
        f"CREATE OR REPLACE TEMP TABLE {_HITS} AS SELECT s.*, ({changed}) AS {_CHANGED} "
        f"FROM {_BATCH_VIEW} s JOIN {q(spec.name)} t ON {on}{where}",
        params,
    ).fetchall()
    return hits


def _check_combine(spec: TableSpec, combine: Mapping[str, Combine], cols: Sequence[str]) -> None:
    for col in combine:
        if col not in cols or col in spec.keys:
            raise ValueError(f"cannot combine {col!r} of table {spec.name}: not a data column")


def _merged(col: str, combine: Mapping[str, Combine]) -> str:
    how = combine.get(col)
    if how is Combine.LEAST:
        return f"least(t.{q(col)}, s.{q(col)})"
    if how is Combine.GREATEST:
        return f"greatest(t.{q(col)}, s.{q(col)})"
    if how is Combine.KEEP:
        return f"coalesce(t.{q(col)}, s.{q(col)})"
    return f"s.{q(col)}"


def _update(
    con: duckdb.DuckDBPyConnection,
    spec: TableSpec,
    cols: list[str],
    combine: Mapping[str, Combine],
    ctx: WriteContext,
    within: tuple[str, list[Any]] | None = None,
) -> tuple[int, int]:
    """Update the stored rows the batch changes (the rows flagged in ``_HITS``); returns
    (updated, restored)."""
    table = q(spec.name)
    set_cols = [c for c in cols if c not in spec.keys]
    if not set_cols:
        return 0, 0
    ((changes,),) = con.execute(f"SELECT count(*) FILTER ({_CHANGED}) FROM {_HITS}").fetchall()
    if not changes:
        _ensure_history_for(con, spec, cols)
        return 0, 0
    on = " AND ".join(f"t.{q(k)} = s.{q(k)}" for k in spec.keys)
    assignments = [f"{q(c)} = {_merged(c, combine)}" for c in set_cols]
    params: list[Any] = []
    if spec.track_changes:
        assignments.append(f"{q(CHANGE_COLUMN)} = ?")
        params.append(ctx.change)
    narrow, narrow_params = (f" AND {within[0]}", within[1]) if within is not None else ("", [])
    restored = 0
    if spec.history or spec.soft_delete:
        # The versions about to be replaced: kept in the history table, and they tell restores.
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {_OLD} AS SELECT t.*, "
            + (
                f"(coalesce(t.{q(DELETED)}, false) AND NOT coalesce(s.{q(DELETED)}, false))"
                if spec.soft_delete and DELETED in cols
                else "false"
            )
            + f" AS __restored FROM {table} t JOIN {_HITS} s ON {on} WHERE s.{_CHANGED}{narrow}",
            narrow_params,
        )
        restored = con.execute(f"SELECT count(*) FILTER (__restored) FROM {_OLD}").fetchall()[0][0]
        _append_history(
            con,
            spec,
            _OLD,
            f"CASE WHEN __restored THEN '{Change.RESTORE}' ELSE '{Change.UPDATE}' END",
            ctx,
        )
        con.execute(f"DROP TABLE {_OLD}")
    updated = con.execute(
        f"UPDATE {table} t SET {', '.join(assignments)} "
        f"FROM {_HITS} s WHERE {on} AND s.{_CHANGED}{narrow}",
        params + narrow_params,
    ).fetchall()[0][0]
    return updated, restored


def _insert_beyond(
    con: duckdb.DuckDBPyConnection,
    spec: TableSpec,
    cols: list[str],
    ctx: WriteContext,
    rows: pa.Table,
) -> int:
    """Insert ``rows``, known to be new, with no join."""
    # To keep the order of an Arrow table's chunks DuckDB inserts each apart and then merges
    # them, half again as slow as one chunk; a keyed table has no order to keep.
    ordered = False
    if rows.column(0).num_chunks > 1:
        setting = "SELECT current_setting('preserve_insertion_order')"
        ((ordered,),) = con.execute(setting).fetchall()
    con.register(_BEYOND_VIEW, rows)
    try:
        if ordered:
            con.execute("SET preserve_insertion_order = false")
        return _insert(con, spec, cols, ctx, f"{_BEYOND_VIEW} s")
    finally:
        if ordered:
            con.execute("SET preserve_insertion_order = true")
        con.unregister(_BEYOND_VIEW)


def _insert(
    con: duckdb.DuckDBPyConnection, spec: TableSpec, cols: list[str], ctx: WriteContext, source: str
) -> int:
    col_list = ", ".join(q(c) for c in cols)
    values = ", ".join(f"s.{q(c)}" for c in cols)
    params: list[Any] = []
    if spec.track_changes:
        col_list += f", {q(CHANGE_COLUMN)}"
        values += ", ?"
        params.append(ctx.change)
    return con.execute(
        f"INSERT INTO {q(spec.name)} ({col_list}) SELECT {values} FROM {source}", params
    ).fetchall()[0][0]


def _append_history(
    con: duckdb.DuckDBPyConnection, spec: TableSpec, old: str, change_sql: str, ctx: WriteContext
) -> None:
    """Append the rows of the temp table ``old`` (stored versions) to ``spec.history``."""
    if not spec.history:
        return
    table_cols = _ensure_history(con, spec)
    cols = ", ".join(q(c) for c in table_cols)
    valid_from = f"{q(spec.valid_from)}" if spec.valid_from else "NULL"
    if spec.valid_from and DELETED in table_cols and DELETED_AT in table_cols:
        # A deleted version began when it was deleted, not when its data was last fetched.
        valid_from = (
            f"CASE WHEN coalesce({q(DELETED)}, false) AND {q(DELETED_AT)} IS NOT NULL "
            f"THEN {q(DELETED_AT)} ELSE {valid_from} END"
        )
    con.execute(
        f"INSERT INTO {q(spec.history)} ({cols}, valid_from, valid_to, run_id, change) "
        f"SELECT {cols}, {valid_from}, ?, ?, {change_sql} FROM {old}",
        [ctx.now, ctx.run_id],
    )


def _ensure_history(con: duckdb.DuckDBPyConnection, spec: TableSpec) -> dict[str, str]:
    """Create or widen ``spec.history`` to the table's columns; return the table's columns."""
    table_cols = table_columns(con, spec.name)
    _ensure(con, spec.history, {**table_cols, **HISTORY_COLUMNS})
    return table_cols


def _ensure_history_for(con: duckdb.DuckDBPyConnection, spec: TableSpec, cols: list[str]) -> None:
    """What :func:`_update` does to the history table when it finds nothing to replace: an
    upsert of data columns leaves the history table in step with the table."""
    if spec.history and any(c not in spec.keys for c in cols):
        _ensure_history(con, spec)
