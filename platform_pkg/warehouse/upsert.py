"""Bulk upserts into keyed DuckDB tables: one ``MERGE`` per batch, never a statement per row.

Tables carry no index: uniqueness on the key is kept by the write path (every write is a MERGE on
the key, batches are checked for duplicate and null keys first) and verified by asset checks.
DuckDB's ART index makes a million-row upsert several times slower and buys nothing here.
Identifiers come from code (asset definitions); values only ever travel as Arrow data.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

_BATCH_VIEW = "__upsert_batch"
_HITS = "__upsert_hits"  # the batch rows whose key is already stored


@dataclass(frozen=True)
class TableSpec:
    """A keyed table: its key columns, declared column types, and columns that are not data.

    ``audit_columns`` (such as ``fetched_at``) are written with every changed row but a difference
    in them alone does not make a row count as updated, so re-reading unchanged data is a no-op.
    """

    name: str
    keys: tuple[str, ...]
    columns: dict[str, str] = field(default_factory=dict)
    audit_columns: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for ident in (self.name, *self.keys, *self.columns, *self.audit_columns):
            if not ident.replace("_", "").isalnum():
                raise ValueError(f"{ident!r} is not a plain identifier")
        if not self.keys:
            raise ValueError(f"table {self.name} declares no key columns")


@dataclass(frozen=True)
class UpsertStats:
    rows: int = 0
    inserted: int = 0
    updated: int = 0

    @property
    def unchanged(self) -> int:
        return self.rows - self.inserted - self.updated

    def __add__(self, other: UpsertStats) -> UpsertStats:
        return UpsertStats(
            self.rows + other.rows, self.inserted + other.inserted, self.updated + other.updated
        )


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
    existing = table_columns(con, spec.name)
    wanted = dict(spec.columns)
    for col, typ in (batch_types or {}).items():
        wanted.setdefault(col, typ)
    if not existing:
        cols = ", ".join(f"{q(c)} {t}" for c, t in wanted.items())
        con.execute(f"CREATE TABLE IF NOT EXISTS {q(spec.name)} ({cols})")
        return table_columns(con, spec.name)
    added = {col: typ for col, typ in wanted.items() if col not in existing}
    for col, typ in added.items():
        con.execute(f"ALTER TABLE {q(spec.name)} ADD COLUMN {q(col)} {typ}")
    return existing | added


def upsert(
    con: duckdb.DuckDBPyConnection, spec: TableSpec, data: pd.DataFrame | pa.Table
) -> UpsertStats:
    """Insert new keys and update changed rows of ``data`` into ``spec.name``, inside ``con``'s
    current transaction. Rows identical to what is stored (audit columns aside) are left alone;
    an empty batch changes nothing."""
    batch = as_arrow(data)
    if batch.num_rows == 0:
        return UpsertStats()
    missing = [k for k in spec.keys if k not in batch.column_names]
    if missing:
        raise ValueError(f"output for table {spec.name} lacks key column(s) {missing}")
    con.register(_BATCH_VIEW, batch)
    try:
        batch = _dedupe_keys(con, spec, batch)
        described = con.execute(f"DESCRIBE SELECT * FROM {_BATCH_VIEW}").fetchall()
        batch_types = {row[0]: row[1] for row in described}
        table_cols = ensure_table(con, spec, batch_types)
        cols = [c for c in batch.column_names if c in table_cols]
        set_aside, update, insert = _upsert_sql(spec, cols)
        con.execute(set_aside)
        updated = con.execute(update).fetchall()[0][0]
        inserted = con.execute(insert).fetchall()[0][0]
        con.execute(f"DROP TABLE {_HITS}")
    finally:
        con.unregister(_BATCH_VIEW)
    return UpsertStats(rows=batch.num_rows, inserted=inserted, updated=updated)


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


def _upsert_sql(spec: TableSpec, cols: list[str]) -> list[str]:
    """The statements of one upsert: set aside stored keys, update (count), insert (count).

    The batch rows whose key is stored are set aside first (a semi join), so the update joins
    only those and the insert appends the rest through DuckDB's bulk insert path. This measured
    faster than one ``MERGE``, which routes every new row through its join (bench/).
    """
    table = q(spec.name)
    data_cols = [c for c in cols if c not in spec.keys and c not in spec.audit_columns]
    set_cols = [c for c in cols if c not in spec.keys]
    keys = ", ".join(q(k) for k in spec.keys)
    on = " AND ".join(f"t.{q(k)} = s.{q(k)}" for k in spec.keys)
    changed = " OR ".join(f"t.{q(c)} IS DISTINCT FROM s.{q(c)}" for c in data_cols) or "false"
    assignments = ", ".join(f"{q(c)} = s.{q(c)}" for c in set_cols)
    col_list = ", ".join(q(c) for c in cols)
    update = (
        f"UPDATE {table} t SET {assignments} FROM {_HITS} s WHERE {on} AND ({changed})"
        if set_cols
        else "SELECT 0"
    )
    return [
        f"CREATE OR REPLACE TEMP TABLE {_HITS} AS "
        f"SELECT s.* FROM {_BATCH_VIEW} s SEMI JOIN {table} t USING ({keys})",
        update,
        f"INSERT INTO {table} ({col_list}) SELECT {col_list} FROM {_BATCH_VIEW} s "
        f"ANTI JOIN {_HITS} h USING ({keys})",
    ]
