"""The DuckDB upsert IO manager: every asset output is merged into its keyed table, never replaced.

It stores and loads, nothing else: an output is a frame (one upsert), a :class:`Unit` or a
:class:`UnitStream` (units of work committed one transaction each), and the IO manager commits
them without knowing what domain they come from.

What it reports: an output of one partition (or of none) gets the output's figures. A ranged
output (a year of a symbol is one run, 366 partitions) gets, on each partition's
materialisation, the rows written to that partition's day and symbol (or wallet), counted from
the rows themselves; the output's figures go, prefixed ``run_``, on its newest partition only —
the one the event log records last and the UI shows as the latest materialisation.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import dagster as dg
import pandas as pd
import pyarrow as pa
from dagster._core.events import DagsterEvent, DagsterEventBatchMetadata, generate_event_batch_id
from dagster._core.execution.context.metadata_logging import (
    AssetMetadataHandle,
    OutputMetadataAccumulator,
)

from platform_pkg.outcome import IngestionError
from platform_pkg.partitions import windows_from_keys
from platform_pkg.warehouse.resources import Warehouse
from platform_pkg.warehouse.unit import Committed, Unit, UnitStream, commit, rows_by_day
from platform_pkg.warehouse.upsert import TableSpec, UpsertStats, q, table_columns

# Metadata an asset declares for this IO manager.
KEY_METADATA = "primary_key"  # list of key columns
AUDIT_METADATA = "audit_columns"  # columns that do not make a row "changed"
# The columns a partition selects on: the date and the symbol (defaults ts and symbol). Where
# the key holds them, rows after the newest stored for their symbol skip the merge.
TIME_COLUMN_METADATA = "time_column"
SYMBOL_COLUMN_METADATA = "symbol_column"
HISTORY_METADATA = "history_table"  # keeps the previous version of every changed row
VALID_FROM_METADATA = "valid_from_column"  # when a stored version began (history's valid_from)
TRACK_CHANGES_METADATA = "track_changes"  # stamp _change_seq for incremental consumers

# A ranged output's figures, on its newest partition: ``run_rows_written``, ``run_api_requests``...
RUN_PREFIX = "run_"
PARTITION_ROWS = "rows_written"  # the rows a ranged output wrote to one partition's slice


def table_spec(metadata: dict[str, Any], table: str) -> TableSpec:
    """The table spec an asset declares in its definition metadata."""
    keys = metadata.get(KEY_METADATA)
    if not keys:
        raise dg.DagsterInvariantViolationError(
            f"asset {table} declares no '{KEY_METADATA}' metadata; the upsert IO manager needs it"
        )
    schema = metadata.get("dagster/column_schema")
    columns = {c.name: c.type for c in schema.columns} if schema is not None else {}
    keys = tuple(_plain(keys))
    # A table keyed on its declared time column (and symbol) takes rows after the newest stored
    # for their symbol without merging them.
    time_column = _plain(metadata.get(TIME_COLUMN_METADATA))
    symbol_column = _plain(metadata.get(SYMBOL_COLUMN_METADATA, "symbol"))
    append = time_column if time_column in keys else None
    return TableSpec(
        name=table,
        keys=keys,
        columns=columns,
        audit_columns=tuple(_plain(metadata.get(AUDIT_METADATA, ()))),
        history=_plain(metadata.get(HISTORY_METADATA)),
        valid_from=_plain(metadata.get(VALID_FROM_METADATA)),
        track_changes=bool(_plain(metadata.get(TRACK_CHANGES_METADATA, False))),
        append_column=append,
        group_columns=(symbol_column,) if append and symbol_column in set(keys) - {append} else (),
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

    def handle_output(self, context: dg.OutputContext, obj: Any) -> Iterator[DagsterEvent]:
        # A generator: Dagster takes a generator's events as they come, and a plain function's
        # only once it returns, so the events of a failing stream's complete partitions would be
        # lost with its error.
        if obj is None:
            return
        spec = table_spec(dict(context.definition_metadata or {}), context.asset_key.path[-1])
        per_partition = PartitionRows.for_output(context, spec)
        total = Committed()
        try:
            self._store(context, spec, obj, per_partition, total)
        except IngestionError as exc:
            # A stream over several symbols failed for some: the others' partitions hold what
            # the run fetched, so they are reported materialised, and only the incomplete ones
            # are left for Dagster to mark failed.
            if per_partition is not None and exc.incomplete is not None:
                run = _stats_metadata(total.of(spec.name))
                yield from _complete_partitions(context, per_partition, exc.incomplete, run)
            raise

    def store(self, context: dg.OutputContext, obj: Any) -> None:
        """Store ``obj`` outside Dagster's output handling (benchmarks)."""
        for _ in self.handle_output(context, obj):
            pass

    def _store(
        self,
        context: dg.OutputContext,
        spec: TableSpec,
        obj: Any,
        per_partition: PartitionRows | None,
        total: Committed,
    ) -> None:
        run_id = _run_id(context)
        if isinstance(obj, UnitStream):
            self._commit_stream(spec, obj, run_id, total, per_partition)
            _report(context, _stats_metadata(total.of(spec.name)) | obj.metadata(), per_partition)
            return
        if isinstance(obj, pd.DataFrame | pa.Table):
            obj = Unit.of(obj)
        if not isinstance(obj, Unit):
            raise dg.DagsterInvariantViolationError(
                f"asset {spec.name} returned {type(obj).__name__}; the upsert IO manager stores "
                "DataFrames, Arrow tables, Units and UnitStreams"
            )
        committed = self._commit(spec, obj, run_id)
        if per_partition is not None:
            per_partition.count(spec, obj)
        run = _stats_metadata(committed.of(spec.name)) | {"table": spec.name}
        _report(context, run, per_partition)

    def _commit(self, spec: TableSpec, unit: Unit, run_id: str | None) -> Committed:
        with self.warehouse.transaction() as con:
            return commit(con, spec, unit, run_id=run_id, now=datetime.now(UTC))

    def _commit_stream(
        self,
        spec: TableSpec,
        stream: UnitStream,
        run_id: str | None,
        total: Committed,
        per_partition: PartitionRows | None = None,
    ) -> None:
        units = stream.units()
        committed: Committed | None = None
        try:
            while True:
                try:
                    unit = units.send(committed)  # type: ignore[arg-type]
                except StopIteration:
                    return
                committed = self._commit(spec, unit, run_id)
                total.add(committed)
                if per_partition is not None:
                    per_partition.count(spec, unit)
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


@dataclass
class PartitionRows:
    """The rows a ranged output writes, counted per partition: a (symbol or wallet, day) slice."""

    keys: dict[tuple[str, str], str]  # (group value, YYYY-MM-DD) → the partition's key
    group_column: str
    time_column: str
    rows: Counter[tuple[str, str]] = field(default_factory=Counter)

    @classmethod
    def for_output(cls, context: dg.OutputContext, spec: TableSpec) -> PartitionRows | None:
        """For an output of several (group × date) partitions whose table has the asset's
        declared group and time columns; None for any other output."""
        if not context.has_asset_partitions or not _in_a_step(context):
            return None
        partitions_def = context.asset_partitions_def
        if not (
            isinstance(partitions_def, dg.MultiPartitionsDefinition)
            and partitions_def.has_time_window_dimension
        ):
            return None
        metadata = dict(context.definition_metadata or {})
        group_column = _plain(metadata.get(SYMBOL_COLUMN_METADATA, "symbol"))
        time_column = _plain(metadata.get(TIME_COLUMN_METADATA, "ts"))
        if spec.columns and not {group_column, time_column} <= set(spec.columns):
            return None
        keys = context.asset_partition_keys
        if len(keys) < 2:
            return None
        date = partitions_def.time_window_dimension.name
        slices = {}
        for key in keys:
            dims = dict(partitions_def.get_partition_key_from_str(key).keys_by_dimension)
            day = dims.pop(date)
            (group,) = dims.values()
            slices[(group, day)] = key
        return cls(slices, group_column, time_column)

    def count(self, own: TableSpec, unit: Unit) -> None:
        """Count what ``unit`` wrote (called once it is committed)."""
        self.rows.update(rows_by_day(unit, own, self.group_column, self.time_column))

    def metadata(
        self, run: Mapping[str, Any], without: frozenset[str] = frozenset()
    ) -> dict[str, dict[str, Any]]:
        """Each partition key's metadata: the rows of its slice; the newest partition (latest
        day, then group) also the output's figures ``run``, prefixed. Rows of days outside the
        output's partitions (a re-read of the day before) count only in the output's figures.
        The partitions of the groups ``without`` are left out."""
        slices = {s: key for s, key in self.keys.items() if s[0] not in without}
        if not slices:
            return {}
        by_key = {key: {PARTITION_ROWS: self.rows[s]} for s, key in slices.items()}
        newest = slices[max(slices, key=lambda s: (s[1], s[0]))]
        by_key[newest] |= {f"{RUN_PREFIX}partitions": len(by_key)} | {
            RUN_PREFIX + name: value for name, value in run.items()
        }
        return by_key


def run_metadata(metadata: Mapping[str, Any]) -> dict[str, Any] | None:
    """The whole output's figures in one materialisation's metadata, without their prefix: those
    of a ranged output's newest partition, or all of an output of one partition (or none); None
    for the other partitions of a ranged output, which carry only their own rows."""
    prefixed = {
        name.removeprefix(RUN_PREFIX): value
        for name, value in metadata.items()
        if name.startswith(RUN_PREFIX)
    }
    if prefixed:
        return prefixed
    return None if set(metadata) <= {PARTITION_ROWS} else dict(metadata)


def _report(
    context: dg.OutputContext, run: dict[str, Any], per_partition: PartitionRows | None
) -> None:
    if per_partition is None:
        context.add_output_metadata(run)
        return
    # Dagster's public add_asset_metadata(partition_key=...) lists every key of the partitions
    # definition to check the one given, on each call (4.6 s for the 366 keys of a year), and
    # copies its accumulator each time. The accumulator it fills after that check is filled here
    # directly, once, with keys Dagster gave; Dagster reads it when it logs each partition's event.
    step = context.step_context
    merged = dict(step._metadata_accumulator.per_output_metadata)  # noqa: SLF001
    for key, metadata in per_partition.metadata(run).items():
        handle = AssetMetadataHandle(asset_key=context.asset_key, partition_key=key)
        merged[handle] = {**merged.get(handle, {}), **metadata}
    accumulated = OutputMetadataAccumulator(per_output_metadata=merged)
    step._metadata_accumulator = accumulated  # noqa: SLF001


def _complete_partitions(
    context: dg.OutputContext,
    per_partition: PartitionRows,
    incomplete: frozenset[str],
    run: dict[str, Any],
) -> Iterator[DagsterEvent]:
    """The materialisations of the partitions outside the ``incomplete`` groups, as one batch
    (the event log writes a batch in one statement, as it does a ranged output's)."""
    by_key = per_partition.metadata(run, without=incomplete)
    batch, last = generate_event_batch_id(), len(by_key) - 1
    for i, (key, metadata) in enumerate(sorted(by_key.items())):
        materialization = dg.AssetMaterialization(
            asset_key=context.asset_key, partition=key, metadata=metadata
        )
        yield DagsterEvent.asset_materialization(
            context.step_context, materialization, DagsterEventBatchMetadata(batch, i == last)
        )


def _in_a_step(context: dg.OutputContext) -> bool:
    try:
        context.step_context  # noqa: B018 - raises outside a run (build_output_context)
    except dg.DagsterInvariantViolationError:
        return False
    return True


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


def run_figures(materializations: Iterable[dg.AssetMaterialization]) -> dict[str, Any] | None:
    """The whole output's figures, as plain values, from a run's materialisations of one asset."""
    for materialization in materializations:
        found = run_metadata(materialization.metadata)
        if found is not None:
            return {name: getattr(value, "value", value) for name, value in found.items()}
    return None
