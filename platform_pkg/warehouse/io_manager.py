"""The DuckDB upsert IO manager: every asset output is merged into its keyed table, never replaced."""

from __future__ import annotations

from typing import Any

import dagster as dg
import pandas as pd
import pyarrow as pa

from platform_pkg.partitions import windows_from_keys
from platform_pkg.warehouse.batches import BatchStream
from platform_pkg.warehouse.resources import Warehouse
from platform_pkg.warehouse.upsert import TableSpec, UpsertStats, q, table_columns, upsert

# Metadata an asset declares for this IO manager.
KEY_METADATA = "primary_key"  # list of key columns
AUDIT_METADATA = "audit_columns"  # columns that do not make a row "changed"
# The columns a partition selects on: the date and the symbol (defaults ts and symbol).
TIME_COLUMN_METADATA = "time_column"
SYMBOL_COLUMN_METADATA = "symbol_column"


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
    )


def _plain(value: Any) -> Any:
    """Definition metadata may arrive wrapped in a MetadataValue."""
    return getattr(value, "value", value)


class DuckDBUpsertIOManager(dg.ConfigurableIOManager):
    """Stores asset outputs in the DuckDB warehouse by upsert on each asset's declared key.

    An output is a DataFrame / Arrow table (merged in one transaction) or a :class:`BatchStream`
    (merged batch by batch, each batch with its watermark in one transaction). An empty output
    changes nothing. New nullable columns are added to the table. A lock held by another process
    is waited out with bounded backoff.
    """

    warehouse: Warehouse

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        if obj is None:
            return
        spec = table_spec(dict(context.definition_metadata or {}), context.asset_key.path[-1])
        if isinstance(obj, BatchStream):
            stats = self._write_stream(spec, obj)
            context.add_output_metadata(_stats_metadata(stats) | obj.metadata())
            return
        if not isinstance(obj, pd.DataFrame | pa.Table):
            raise dg.DagsterInvariantViolationError(
                f"asset {spec.name} returned {type(obj).__name__}; the upsert IO manager stores "
                "DataFrames, Arrow tables and BatchStreams"
            )
        with self.warehouse.transaction() as con:
            stats = upsert(con, spec, obj)
        context.add_output_metadata(_stats_metadata(stats) | {"table": spec.name})

    def _write_stream(self, spec: TableSpec, stream: BatchStream) -> UpsertStats:
        total = UpsertStats()
        try:
            for batch in stream.batches():
                with self.warehouse.transaction() as con:
                    stats = upsert(con, spec, batch.frame)
                    stream.in_transaction(con, batch, stats)
                stream.committed(batch, stats)
                total += stats
        except BaseException as exc:
            with self.warehouse.transaction() as con:
                stream.finish(con, exc)
            raise
        with self.warehouse.transaction() as con:
            stream.finish(con, None)
        return total

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


def _stats_metadata(stats: UpsertStats) -> dict[str, Any]:
    return {
        "rows_written": stats.rows,
        "rows_inserted": stats.inserted,
        "rows_updated": stats.updated,
        "rows_unchanged": stats.unchanged,
    }
