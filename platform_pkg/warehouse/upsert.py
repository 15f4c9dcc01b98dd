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
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

_BATCH_VIEW = "__upsert_batch"
_HITS = "__upsert_hits"  # the batch rows whose key is already stored
_OLD = "__upsert_old"  # stored versions about to be replaced (tables with history)
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
    ``_change_seq`` on every row written.
    """

    name: str
    keys: tuple[str, ...]
    columns: dict[str, str] = field(default_factory=dict)
    audit_columns: tuple[str, ...] = ()
    history: str | None = None
    valid_from: str | None = None
    track_changes: bool = False

    def __post_init__(self) -> None:
        for ident in (self.name, *self.keys, *self.columns, *self.audit_columns):
            _check_ident(ident)
        for ident in (self.history, self.valid_from):
            if ident is not None:
                _check_ident(ident)
        if not self.keys:
            raise ValueError(f"table {self.name} declares no key columns")

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
    rows = con.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND table_name = ? ORDER BY ordinal_position",
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
    with _registered(con, spec, data) as (batch, cols):
        if batch is None:
            return UpsertStats()
        _check_combine(spec, combine or {}, cols)
        keys = ", ".join(q(k) for k in spec.keys)
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {_HITS} AS "
            f"SELECT s.* FROM {_BATCH_VIEW} s SEMI JOIN {q(spec.name)} t USING ({keys})"
        )
        updated, restored = _update(con, spec, cols, combine or {}, ctx)
        inserted = _insert(
            con, spec, cols, ctx, f"{_BATCH_VIEW} s ANTI JOIN {_HITS} h USING ({keys})"
        )
        con.execute(f"DROP TABLE {_HITS}")
    return UpsertStats(rows=batch.num_rows, inserted=inserted, updated=updated, restored=restored)


def insert_new(
    con: duckdb.DuckDBPyConnection,
    spec: TableSpec,
    data: pd.DataFrame | pa.Table,
    *,
    ctx: WriteContext = WriteContext(),
) -> UpsertStats:
    """Insert the rows of ``data`` whose key is not stored; stored rows are never touched."""
    with _registered(con, spec, data) as (batch, cols):
        if batch is None:
            return UpsertStats()
        keys = ", ".join(q(k) for k in spec.keys)
        inserted = _insert(
            con, spec, cols, ctx, f"{_BATCH_VIEW} s ANTI JOIN {q(spec.name)} t USING ({keys})"
        )
    return UpsertStats(rows=batch.num_rows, inserted=inserted)


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
    with _registered(con, spec, data) as (batch, cols):
        if batch is None:
            return UpsertStats()
        keys = ", ".join(q(k) for k in spec.keys)
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {_HITS} AS "
            f"SELECT s.* FROM {_BATCH_VIEW} s SEMI JOIN {q(spec.name)} t USING ({keys})"
        )
        updated, restored = _update(con, spec, cols, {}, ctx)
        con.execute(f"DROP TABLE {_HITS}")
    return UpsertStats(rows=batch.num_rows, updated=updated, restored=restored)


def delete_keys(
    con: duckdb.DuckDBPyConnection, spec: TableSpec, data: pd.DataFrame | pa.Table
) -> UpsertStats:
    """Remove the rows with the keys of ``data``: for bookkeeping tables (a served deferral),
    never for data, which is soft-deleted."""
    if not table_columns(con, spec.name):
        return UpsertStats()
    with _registered(con, spec, data, create=False) as (batch, _cols):
        if batch is None:
            return UpsertStats()
        on = " AND ".join(f"t.{q(k)} = s.{q(k)}" for k in spec.keys)
        deleted = con.execute(
            f"DELETE FROM {q(spec.name)} t USING {_BATCH_VIEW} s WHERE {on}"
        ).fetchall()[0][0]
    return UpsertStats(rows=batch.num_rows, deleted=deleted)


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


class _registered:
    """Registers the deduplicated batch as a view and makes sure the table and its columns
    exist; yields (batch, the batch columns the table has) or (None, []) for an empty batch."""

    def __init__(self, con, spec: TableSpec, data, create: bool = True):
        self.con, self.spec, self.data, self.create = con, spec, data, create

    def __enter__(self):
        batch = as_arrow(self.data)
        if batch.num_rows == 0:
            self.registered = False
            return None, []
        missing = [k for k in self.spec.keys if k not in batch.column_names]
        if missing:
            raise ValueError(f"output for table {self.spec.name} lacks key column(s) {missing}")
        self.con.register(_BATCH_VIEW, batch)
        self.registered = True
        batch = _dedupe_keys(self.con, self.spec, batch)
        if self.create:
            described = self.con.execute(f"DESCRIBE SELECT * FROM {_BATCH_VIEW}").fetchall()
            batch_types = {row[0]: row[1] for row in described}
            table_cols = ensure_table(self.con, self.spec, batch_types)
        else:
            table_cols = table_columns(self.con, self.spec.name)
        cols = [c for c in batch.column_names if c in table_cols and c != CHANGE_COLUMN]
        return batch, cols

    def __exit__(self, *exc):
        if self.registered:
            self.con.unregister(_BATCH_VIEW)
        return False


def _dedupe_keys(con: duckdb.DuckDBPyConnection, spec: TableSpec, batch: pa.Table) -> pa.Table:
    if any(batch.column(k).null_count for k in spec.keys):  # Arrow keeps the counts: free
        null_key = functools.reduce(pc.or_, (pc.is_null(batch.column(k)) for k in spec.keys))
        raise ValueError(
            f"{pc.sum(null_key).as_py()} row(s) for table {spec.name} have a null key "
            f"({', '.join(spec.keys)})"
        )
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
) -> tuple[int, int]:
    """Update the stored rows the batch changes (the batch rows set aside in ``_HITS``);
    returns (updated, restored)."""
    table = q(spec.name)
    data_cols = [c for c in cols if c not in spec.keys and c not in spec.audit_columns]
    set_cols = [c for c in cols if c not in spec.keys]
    if not set_cols:
        return 0, 0
    on = " AND ".join(f"t.{q(k)} = s.{q(k)}" for k in spec.keys)
    changed = (
        " OR ".join(f"t.{q(c)} IS DISTINCT FROM {_merged(c, combine)}" for c in data_cols)
        or "false"
    )
    assignments = [f"{q(c)} = {_merged(c, combine)}" for c in set_cols]
    params: list[Any] = []
    if spec.track_changes:
        assignments.append(f"{q(CHANGE_COLUMN)} = ?")
        params.append(ctx.change)
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
            + f" AS __restored FROM {table} t JOIN {_HITS} s ON {on} WHERE ({changed})"
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
        f"UPDATE {table} t SET {', '.join(assignments)} FROM {_HITS} s WHERE {on} AND ({changed})",
        params,
    ).fetchall()[0][0]
    return updated, restored


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
    table_cols = table_columns(con, spec.name)
    _ensure(con, spec.history, {**table_cols, **HISTORY_COLUMNS})
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
