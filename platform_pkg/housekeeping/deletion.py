"""Deleting a run from the instance, with what Dagster's own ``delete_run`` leaves behind.

``DagsterInstance.delete_run`` removes the run and its events, but on SQLite it keeps the run's
event log shard (``history/runs/<run_id>.db``: ~140 KB of empty tables, most of a small run's
size), its rows of asset check executions (with their evaluation events) and its compute logs.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable

import dagster as dg
from dagster._core.storage.event_log import SqlEventLogStorage, SqliteEventLogStorage
from dagster._core.storage.event_log.schema import AssetCheckExecutionsTable


def shard_files(instance: dg.DagsterInstance, run_id: str) -> list[str] | None:
    """The files of ``run_id``'s own event log shard; None when runs have no shard of their own."""
    storage = instance.event_log_storage
    if not isinstance(storage, SqliteEventLogStorage) or not storage.is_run_sharded:
        return None
    path = storage.path_for_shard(run_id)
    return [p for p in (path, f"{path}-wal", f"{path}-shm") if os.path.exists(p)]


def shard_bytes(instance: dg.DagsterInstance, run_id: str) -> int | None:
    """The size of ``run_id``'s event log shard; None when runs have no shard of their own."""
    files = shard_files(instance, run_id)
    return None if files is None else sum(os.path.getsize(p) for p in files)


def delete_run(
    instance: dg.DagsterInstance, run_id: str, check_keys: Iterable[dg.AssetCheckKey] = ()
) -> None:
    """Deletes ``run_id``: the run, its events, its executions of ``check_keys``, its compute
    logs and its event log shard."""
    files = shard_files(instance, run_id) or []
    _delete_check_executions(instance, run_id, check_keys)
    instance.delete_run(run_id)
    instance.compute_log_manager.delete_logs(prefix=[run_id])
    for path in files:
        # Nothing reads a deleted run's shard; Dagster's own wipe() unlinks shards the same way.
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def _delete_check_executions(
    instance: dg.DagsterInstance, run_id: str, check_keys: Iterable[dg.AssetCheckKey]
) -> None:
    storage = instance.event_log_storage
    keys = list(check_keys)
    if not keys or not isinstance(storage, SqlEventLogStorage):
        return
    table = AssetCheckExecutionsTable
    with storage.index_connection() as conn:
        for key in keys:
            # (asset_key, check_name, run_id) leads the table's unique index: no scan.
            conn.execute(
                table.delete().where(
                    table.c.asset_key == key.asset_key.to_string(),
                    table.c.check_name == key.name,
                    table.c.run_id == run_id,
                )
            )
