"""What every fetching stream (prices, exchange trades, wallets) does alike with its fetches'
``sync_log`` entries: count what each unit committed, fail an entry, end a fetch with its deferral
recorded or cleared, and close what an interrupted run left open.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from platform_pkg.warehouse import deferrals, rejected_rows
from platform_pkg.warehouse.sync_log import SyncEntry, SyncStatus
from platform_pkg.warehouse.unit import Committed, Mode, TableWrite, Unit


@dataclass
class Changes:
    """What a fetch changed in its table, beyond the counts its ``sync_log`` row keeps."""

    new: int = 0
    changed: int = 0  # updated, restores aside
    restored: int = 0
    deleted: list[tuple] = field(default_factory=list)  # keys soft-deleted


def count(entry: SyncEntry, committed: Committed, table: str, changes: Changes | None = None):
    """Add what a unit committed to ``table`` (and to ``rejected_rows``) to the entry."""
    mine = committed.of(table)
    entry.rows_inserted += mine.inserted
    entry.rows_updated += mine.updated
    entry.rows_deleted += mine.deleted
    entry.rows_rejected += committed.of(rejected_rows.SPEC.name).inserted
    if changes is not None:
        changes.new += mine.inserted
        changes.changed += mine.updated - mine.restored
        changes.restored += mine.restored
        changes.deleted += committed.deleted_keys.get(table, [])


def fail(entry: SyncEntry, exc: BaseException) -> None:
    """The fetch ended on ``exc``: ``partial`` if it stored something, else ``failed``."""
    entry.status = (
        SyncStatus.PARTIAL if entry.rows_inserted or entry.rows_updated else SyncStatus.FAILED
    )
    entry.error = f"{type(exc).__name__}: {exc}"
    entry.finished_at = datetime.now(UTC)


def closing_unit(
    entry: SyncEntry, data_type: str, deferral: deferrals.Deferral | None = None
) -> Unit:
    """A fetch's last unit: its final log row, and its deferral recorded (``deferral``) or, on
    success, cleared."""
    writes = []
    if deferral is not None:
        row = deferral.row(datetime.now(UTC))
        writes.append(TableWrite(row, deferrals.SPEC, combine=deferrals.COMBINE))
    elif entry.status == SyncStatus.SUCCESS:
        writes.append(
            TableWrite(deferrals.key(entry.symbol, data_type), deferrals.SPEC, Mode.DELETE)
        )
    return Unit(writes=tuple(writes), log=replace(entry))


def guarded(
    body: Generator[Unit, Committed, None], entries: Callable[[], list[SyncEntry]]
) -> Generator[Unit, Committed, None]:
    """``body``'s units; if the run is interrupted (cancelled) while they flow, the entries
    still ``running`` are closed before the interruption goes on."""
    try:
        yield from body
    except GeneratorExit:
        raise
    except BaseException as exc:
        for entry in entries():
            if entry.status == SyncStatus.RUNNING:
                fail(entry, exc)
                yield Unit(log=entry)
        raise
