"""The instance's event log: Dagster's SQLite storage, writing a ranged run's events in bulk.

A ranged run over a year of dates logs one event per partition, twice: 366 "planned" events when
the run is created and 366 materialisations when it ends, per symbol and asset. Dagster's SQLite
storage writes each one on its own, opening and committing the run's shard and the cross-run index
shard for every event (about 9 ms each on this machine), so recording the events cost several
times more than fetching and storing the candles. Dagster already hands such events over as one
batch when ``DAGSTER_EVENT_BATCH_SIZE`` is set, but only its Postgres storage writes a batch at
once; SQLite falls back to one at a time.

This storage writes such a batch the way Dagster's Postgres storage does: one insert into the index
shard with the event ids back, the asset-event tags (which hold the partition dimensions) for
every event, the asset's latest-event row from its last event, then one insert into the run's
shard. Any other batch goes through the stock path.

A batch is written in partition order. Dagster hands a ranged run's events over in the order of a
set of partition keys (``DefaultPartitionsSubset``), which is scrambled, so event by event the
asset's latest materialisation named a day from the middle of the range and the UI's event list
jumped around. Here the events are sorted by partition key (a ``date|symbol`` key sorts by day,
then symbol) and their timestamps follow: each event of a run's batch is stamped at least 1 ms
after the one before (a year's 366 events span 0.37 s), because the UI tells events of one run
apart by their millisecond and listed only one of the several logged within the same one. A
run's batches keep their order; the order holds across a run when its partitions fit one batch
(``DAGSTER_EVENT_BATCH_SIZE``).
"""

from __future__ import annotations

import math
import os
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

from dagster._config import Field, StringSource
from dagster._core.events import DagsterEventType
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.event_log import SqliteEventLogStorage
from dagster._core.storage.event_log.schema import SqlEventLogStorageTable
from dagster._serdes import ConfigurableClassData

# The kinds a ranged run produces one per partition: planned when the run is created, then
# materialised (or observed). Each goes through the same steps as event by event in the stock
# storage: the index row, its tags, the asset's latest-event row.
BULK_EVENT_TYPES = frozenset(
    {
        DagsterEventType.ASSET_MATERIALIZATION_PLANNED,
        DagsterEventType.ASSET_MATERIALIZATION,
        DagsterEventType.ASSET_OBSERVATION,
    }
)


def default_base_dir() -> str:
    """Where Dagster's default SQLite storage keeps run event logs: ``$DAGSTER_HOME/history/runs``,
    so switching to this storage keeps an instance's history."""
    home = os.environ.get("DAGSTER_HOME")
    if not home:
        raise ValueError(
            "DAGSTER_HOME is not set: the event log storage configured in dagster.yaml keeps run "
            "events in $DAGSTER_HOME/history/runs. Set DAGSTER_HOME to the instance's folder, or "
            "give event_log_storage a config base_dir."
        )
    return os.path.join(home, "history", "runs", "")


def bulk_writable(events: Sequence[EventLogEntry]) -> bool:
    """A batch of one run's asset events of a single bulk-writable kind."""
    if not events:
        return False
    kinds = {event.dagster_event_type for event in events}
    return (
        len(kinds) == 1
        and kinds <= BULK_EVENT_TYPES
        and len({event.run_id for event in events}) == 1
        and all(event.dagster_event and event.dagster_event.asset_key for event in events)
    )


def in_partition_order(
    events: Sequence[EventLogEntry], after: float | None = None
) -> list[EventLogEntry]:
    """``events`` sorted by partition key (stable), restamped in that order: the earliest of their
    own timestamps first, each at least 1 ms after the one before (and after ``after``)."""
    ordered = sorted(events, key=lambda event: event.dagster_event.partition or "")
    stamps = sorted(event.timestamp for event in events)
    restamped = []
    last_ms = None if after is None else math.floor(after * 1000)
    for event, stamp in zip(ordered, stamps, strict=True):
        ms = math.floor(stamp * 1000)
        if last_ms is not None and ms <= last_ms:
            ms = last_ms + 1
        last_ms = ms
        # The middle of the millisecond: float rounding cannot move it to the one before.
        restamped.append(event._replace(timestamp=(ms + 0.5) / 1000))
    return restamped


class BatchingSqliteEventLogStorage(SqliteEventLogStorage):
    """SQLite event log storage that writes a batch of asset events in one statement per shard."""

    RUNS_REMEMBERED = 64

    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None):
        super().__init__(base_dir, inst_data=inst_data)
        # The last stamp given to each recent run's batch: the run's next batch comes after it.
        self._last_stamps: OrderedDict[str, float] = OrderedDict()

    @classmethod
    def config_type(cls) -> Mapping[str, Any]:
        return {"base_dir": Field(StringSource, is_required=False)}

    @classmethod
    def from_config_value(  # ty: ignore[invalid-method-override]
        cls, inst_data: ConfigurableClassData | None, config_value: Mapping[str, Any]
    ) -> BatchingSqliteEventLogStorage:
        base_dir = config_value.get("base_dir") or default_base_dir()
        return cls(base_dir=base_dir, inst_data=inst_data)

    def store_event_batch(self, events: Sequence[EventLogEntry]) -> None:
        if not bulk_writable(events):
            super().store_event_batch(events)
            return
        run_id = events[0].run_id
        events = in_partition_order(events, after=self._last_stamps.get(run_id))
        rows = [self._event_to_row(event) for event in events]
        # The index shard first: it is the one every run process and the daemon write to, so the
        # one a write can fail on (busy). If it fails, nothing is stored and Dagster's fallback
        # stores the events one by one, without duplicates; the run's own shard comes after.
        with self.index_transaction() as conn:
            inserted = conn.execute(
                SqlEventLogStorageTable.insert().returning(
                    SqlEventLogStorageTable.c.id, sort_by_parameter_order=True
                ),
                rows,
            )
            event_ids = [row[0] for row in inserted]
            self._store_asset_event_tags(conn, events, event_ids)
            # Event by event, each write replaces its asset's latest-event row: the last one stays.
            latest = {
                event.dagster_event.asset_key: (event, event_id)
                for event, event_id in zip(events, event_ids, strict=True)
            }
            for event, event_id in latest.values():
                self._store_asset_event(conn, event, event_id)
        with self.run_connection(run_id) as conn:
            conn.execute(SqlEventLogStorageTable.insert(), rows)
        self._last_stamps[run_id] = events[-1].timestamp
        self._last_stamps.move_to_end(run_id)
        while len(self._last_stamps) > self.RUNS_REMEMBERED:
            self._last_stamps.popitem(last=False)
