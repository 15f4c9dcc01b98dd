"""The DuckDB upsert IO manager: every asset output is merged into its keyed table, never replaced.

It stores and loads, nothing else: an output is a frame (one upsert), a :class:`Unit` or a
:class:`UnitStream` (units of work committed one transaction each), and the IO manager commits
them without knowing what domain they come from.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import dagster as dg
import pandas as pd
import pyarrow as pa

from platform_pkg.partitions import windows_from_keys
from platform_pkg.warehouse.resources import Warehouse
from platform_pkg.warehouse.unit import Committed, Unit, UnitStream, commit
from platform_pkg.warehouse.upsert import TableSpec, UpsertStats, q, table_columns

# Metadata an asset declares for this IO manager.
KEY_METADATA = "primary_key"  # list of key columns
AUDIT_METADATA = "audit_columns"  # columns that do not make a row "changed"
# The columns a partition selects on: the date and the symbol (defaults ts and symbol).
TIME_COLUMN_METADATA = "time_column"
SYMBOL_COLUMN_METADATA = "symbol_column"
HISTORY_METADATA = "history_table"  # keeps the previous version of every changed row
VALID_FROM_METADATA = "valid_from_column"  # when a stored version began (history's valid_from)
TRACK_CHANGES_METADATA = "track_changes"  # stamp _change_seq for incremental consumers


def table_spec(metadata: dict[str, Any], table: str) -> TableSpec:
    """The table spec an asset declares in its definition metadata."""
    keys = metadata.get(KEY_METADATA)
    if not keys:
        raise dg.DagsterInvariantViolationError(
            f"asset {table} declares no '{KEY_METADATA}' metadata; the upsert IO manager needs it"
        )
    schema = metadata.get("dagster/column_schema")
    columns = {c.name: c.type for c in schema.columns} if schema is not None else {}
    return TableSpec(
        name=table,
        keys=tuple(_plain(keys)),
        columns=columns,
        audit_columns=tuple(_plain(metadata.get(AUDIT_METADATA, ()))),
        history=_plain(metadata.get(HISTORY_METADATA)),
        valid_from=_plain(metadata.get(VALID_FROM_METADATA)),
        track_changes=bool(_plain(metadata.get(TRACK_CHANGES_METADATA, False))),
    )


def _plain(value: Any) -> Any:
    """Definition metadata may arrive wrapped in a MetadataValue."""
    return getattr(value, "value", value)


class DuckDBUpsertIOManager(dg.ConfigurableIOManager):
    """Stores asset outputs in the DuckDB warehouse by upsert on each asset's declared key.

    An output is a DataFrame / Arrow table (merged in one transaction), a :class:`Unit`, or a
    :class:`UnitStream` (each unit committed in its own transaction as it comes: data, side
    tables, watermarks and log together). An empty output changes nothing. New nullable columns
    are added to the table. A lock held by another process is waited out with bounded backoff.
    """

    warehouse: Warehouse

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        if obj is None:
            return
        spec = table_spec(dict(context.definition_metadata or {}), context.asset_key.path[-1])
        run_id = _run_id(context)
        if isinstance(obj, UnitStream):
            total = self._commit_stream(spec, obj, run_id)
            context.add_output_metadata(_stats_metadata(total.of(spec.name)) | obj.metadata())
            return
        if isinstance(obj, pd.DataFrame | pa.Table):
            obj = Unit.of(obj)
        if not isinstance(obj, Unit):
            raise dg.DagsterInvariantViolationError(
                f"asset {spec.name} returned {type(obj).__name__}; the upsert IO manager stores "
                "DataFrames, Arrow tables, Units and UnitStreams"
            )
        committed = self._commit(spec, obj, run_id)
        context.add_output_metadata(_stats_metadata(committed.of(spec.name)) | {"table": spec.name})

    def _commit(self, spec: TableSpec, unit: Unit, run_id: str | None) -> Committed:
        with self.warehouse.transaction() as con:
            return commit(con, spec, unit, run_id=run_id, now=datetime.now(UTC))

    def _commit_stream(self, spec: TableSpec, stream: UnitStream, run_id: str | None) -> Committed:
        total = Committed()
        units = stream.units()
        committed: Committed | None = None
        try:
            while True:
                try:
                    unit = units.send(committed)  # type: ignore[arg-type]
                except StopIteration:
                    return total
                committed = self._commit(spec, unit, run_id)
                total.add(committed)
        finally:
            units.close()

    def load_input(self, context: dg.InputContext) -> pd.DataFrame:
        upstream = context.upstream_output
        table = context.asset_key.path[-1]
        metadata = dict(upstream.definition_metadata or {}) if upstream else {}
        time_column = _plain(metadata.get(TIME_COLUMN_METADATA, "ts"))
        symbol_column = _plain(metadata.get(SYMBOL_COLUMN_METADATA, "symbol"))
        where, params = "", []
        if context.has_asset_partitions and upstream is not None:
            windows = windows_from_keys(context.asset_partition_keys)
            clauses = []
            for window in windows:
                clauses.append(
                    f"({q(symbol_column)} = ? AND {q(time_column)} >= ? AND {q(time_column)} < ?)"
                )
                params += [window.symbol, window.start, window.end]
            where = " WHERE " + (" OR ".join(clauses) or "false")
        with self.warehouse.connection() as con:
            if not table_columns(con, table):
                return pd.DataFrame()
            return con.execute(f"SELECT * FROM {q(table)}{where} ORDER BY ALL", params).df()


def _run_id(context: dg.OutputContext) -> str | None:
    try:
        return context.run_id
    except dg.DagsterInvariantViolationError:  # a context built outside a run (benchmarks)
        return None


def _stats_metadata(stats: UpsertStats) -> dict[str, Any]:
    meta = {
        "rows_written": stats.rows,
        "rows_inserted": stats.inserted,
        "rows_updated": stats.updated,
        "rows_unchanged": stats.unchanged,
    }
    if stats.deleted or stats.restored:
        meta |= {"rows_soft_deleted": stats.deleted, "rows_restored": stats.restored}
    return meta
