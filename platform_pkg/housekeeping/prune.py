"""Pruning superseded runs: the recurring runs whose every record a later run has replaced.

A run's records are its materialisations (and observations) of asset partitions and its asset
check executions; deleting the run deletes them. So a run is deleted only when, for each of them,
the latest record of the same asset partition or check belongs to another run: pruning never
changes any partition's latest materialisation or any check's latest evaluation. Only finished
runs that a schedule or sensor started are considered; manual runs, their re-executions and
backfills are the users'.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum

import dagster as dg
from dagster._core.event_api import PartitionKeyFilter
from dagster._core.storage.asset_check_execution_record import (
    COMPLETED_ASSET_CHECK_EXECUTION_RECORD_STATUSES,
)

from platform_pkg.housekeeping.deletion import delete_run, shard_bytes
from platform_pkg.runs import SCHEDULE_TAG, TRIGGER_TAG

# A run that one of these started: the platform's own tags and Dagster's.
RECURRING_TAGS = (SCHEDULE_TAG, TRIGGER_TAG, "dagster/schedule_name", "dagster/sensor_name")
BACKFILL_TAG = "dagster/backfill"
PARENT_RUN_TAG = "dagster/parent_run_id"
RETRY_NUMBER_TAG = "dagster/retry_number"  # Dagster's automatic retries only, not the UI's

Event = dg.DagsterEventType
ASSET_EVENTS = (Event.ASSET_MATERIALIZATION, Event.ASSET_OBSERVATION)
CHECK_EVENTS = (Event.ASSET_CHECK_EVALUATION, Event.ASSET_CHECK_EVALUATION_PLANNED)
CHUNK = 500  # partitions per query, well within SQLite's limit on parameters
# Where the last pruning stopped (a creation time), in the instance's key-value store.
CURSOR_KEY = "platform/prune_runs/created_after"


@dataclass(frozen=True)
class Policy:
    """Which runs are old enough to prune, and how many to examine at most."""

    keep_days: int = 14
    keep_failed_days: int = 30
    max_runs: int = 2000


class Verdict(StrEnum):
    SUPERSEDED = "superseded"
    LATEST_MATERIALIZATION = "latest_materialization"
    LATEST_OBSERVATION = "latest_observation"
    LATEST_CHECK_EXECUTION = "latest_check_execution"
    USER_RE_EXECUTION = "user_re_execution"


KEEPS = {
    Event.ASSET_MATERIALIZATION: Verdict.LATEST_MATERIALIZATION,
    Event.ASSET_OBSERVATION: Verdict.LATEST_OBSERVATION,
}


@dataclass(frozen=True)
class Decision:
    """What to do with one run, and what keeps it (``detail``: an asset partition or a check)."""

    run_id: str
    verdict: Verdict
    detail: str = ""
    check_keys: tuple[dg.AssetCheckKey, ...] = ()


@dataclass
class Report:
    """One pruning: the runs examined, deleted and kept, and the shard bytes freed."""

    dry_run: bool = False
    resumed_after: datetime | None = None  # the runs examined were created after this
    examined: int = 0
    deleted: list[str] = field(default_factory=list)
    kept: list[Decision] = field(default_factory=list)
    shard_bytes: int | None = None  # None: runs have no event log file of their own

    def kept_by_verdict(self) -> dict[str, int]:
        counts = Counter(d.verdict.value for d in self.kept)
        return {v.value: counts[v.value] for v in Verdict if v is not Verdict.SUPERSEDED}


def prune(
    instance: dg.DagsterInstance,
    policy: Policy = Policy(),
    now: datetime | None = None,
    dry_run: bool = False,
) -> Report:
    """Deletes the superseded runs among the next ``policy.max_runs`` candidates, oldest first
    from where the last pruning stopped; after the newest, the next pruning starts again."""
    latest = Latest(instance)
    after = read_cursor(instance)
    report = Report(dry_run=dry_run, resumed_after=after)
    batch = candidates(instance, policy, now or datetime.now(UTC), after)
    if not dry_run:
        # Runs kept for ever (the latest of their partitions) would fill every batch taken from
        # the oldest; the cursor moves on, and the start comes round again after the newest.
        full = len(batch) == policy.max_runs
        write_cursor(instance, batch[-1].create_timestamp if full else None)
    for record in batch:
        run_id = record.dagster_run.run_id
        decision = decide(instance, record.dagster_run, latest)
        report.examined += 1
        if decision.verdict is not Verdict.SUPERSEDED:
            report.kept.append(decision)
            continue
        size = shard_bytes(instance, run_id)
        if size is not None:
            report.shard_bytes = (report.shard_bytes or 0) + size
        if not dry_run:
            delete_run(instance, run_id, decision.check_keys)
        report.deleted.append(run_id)
    return report


def candidates(
    instance: dg.DagsterInstance, policy: Policy, now: datetime, after: datetime | None = None
) -> list[dg.RunRecord]:
    """Finished runs a schedule or sensor started, outside backfills, older than the policy
    keeps them: the oldest ``policy.max_runs`` created after ``after``."""
    ages = [
        ([dg.DagsterRunStatus.SUCCESS], policy.keep_days),
        ([dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED], policy.keep_failed_days),
    ]
    found: dict[str, dg.RunRecord] = {}
    # Tag filters match values, not keys: each key's few values (schedule and sensor names).
    for key, values in instance.get_run_tags(tag_keys=list(RECURRING_TAGS)):
        for statuses, days in ages:
            filters = dg.RunsFilter(
                tags={key: sorted(values)},
                statuses=statuses,
                created_before=now - timedelta(days=days),
                created_after=after,
                exclude_subruns=True,
            )
            for record in instance.get_run_records(filters, limit=policy.max_runs, ascending=True):
                found.setdefault(record.dagster_run.run_id, record)
    oldest = sorted(found.values(), key=lambda r: (r.create_timestamp, r.storage_id))
    return [r for r in oldest if BACKFILL_TAG not in r.dagster_run.tags][: policy.max_runs]


def read_cursor(instance: dg.DagsterInstance) -> datetime | None:
    """Where the last pruning stopped: None to start from the oldest run."""
    value = instance.daemon_cursor_storage.get_cursor_values({CURSOR_KEY}).get(CURSOR_KEY)
    return datetime.fromisoformat(value) if value else None


def write_cursor(instance: dg.DagsterInstance, after: datetime | None) -> None:
    instance.daemon_cursor_storage.set_cursor_values(
        {CURSOR_KEY: after.isoformat() if after else ""}
    )


def decide(instance: dg.DagsterInstance, run: dg.DagsterRun, latest: Latest) -> Decision:
    """Superseded, or the first record of ``run`` that is still the latest of its kind."""
    if PARENT_RUN_TAG in run.tags and RETRY_NUMBER_TAG not in run.tags:
        return Decision(run.run_id, Verdict.USER_RE_EXECUTION, run.tags[PARENT_RUN_TAG])
    assets: dict[tuple[Event, dg.AssetKey], set[str | None]] = defaultdict(set)
    evaluated: set[tuple[dg.AssetCheckKey, str | None]] = set()
    checks: set[dg.AssetCheckKey] = set()
    kinds = {*ASSET_EVENTS, *CHECK_EVENTS}
    for record in instance.get_records_for_run(run.run_id, of_type=kinds).records:
        event = record.event_log_entry.dagster_event
        if event is None:
            continue
        if event.event_type in ASSET_EVENTS:
            assets[(event.event_type, event.asset_key)].add(event.partition)
            continue
        data = event.event_specific_data
        checks.add(data.asset_check_key)
        if event.event_type is Event.ASSET_CHECK_EVALUATION:
            evaluated.add((data.asset_check_key, data.partition))
    for (kind, key), partitions in sorted(assets.items(), key=lambda a: a[0][1].to_string()):
        held = latest.held_partitions(kind, key, partitions, run.run_id)
        if held:
            more = f" and {len(held) - 1} more" if len(held) > 1 else ""
            name = key.to_user_string()
            return Decision(run.run_id, KEEPS[kind], f"{name} {held[0] or ''}".strip() + more)
    held_checks = [k for k in checks if latest.check_run(k) in (None, run.run_id)]
    held_checks += [k for k, p in evaluated if latest.check_run(k, p, True) in (None, run.run_id)]
    if held_checks:
        key = min(held_checks, key=lambda k: k.to_user_string())
        return Decision(run.run_id, Verdict.LATEST_CHECK_EXECUTION, key.to_user_string())
    return Decision(run.run_id, Verdict.SUPERSEDED, check_keys=tuple(sorted(checks, key=str)))


class Latest:
    """Which run holds the latest record of an asset partition or a check.

    Remembered for one pruning: deleting superseded runs never changes the answers, and a newer
    record only moves one to a newer run, which supersedes the same runs.
    """

    def __init__(self, instance: dg.DagsterInstance):
        self._instance = instance
        self._assets: dict[tuple[Event, dg.AssetKey], str | None] = {}
        self._checks: dict[tuple[dg.AssetCheckKey, str | None, bool], str | None] = {}

    def held_partitions(
        self, kind: Event, key: dg.AssetKey, partitions: Iterable[str | None], run_id: str
    ) -> list[str | None]:
        """Those of ``partitions`` (None: unpartitioned) whose latest ``kind`` event is
        ``run_id``'s, or that have none: no other run's record would be left."""
        partitions = set(partitions)
        held: list[str | None] = []
        if None in partitions and self._asset_run(kind, key) in (None, run_id):
            held.append(None)
        keys = sorted(p for p in partitions if p is not None)
        for start in range(0, len(keys), CHUNK):
            chunk = keys[start : start + CHUNK]
            ids = self._instance.event_log_storage.get_latest_storage_id_by_partition(
                key, kind, set(chunk)
            )
            runs = self._runs_of(kind, key, list(ids.values()))
            held += [p for p in chunk if runs.get(ids.get(p, -1)) in (None, run_id)]
        return held

    def check_run(
        self, key: dg.AssetCheckKey, partition: str | None = None, evaluated: bool = False
    ) -> str | None:
        """The run of the check's latest execution (planned, or evaluated), or with ``evaluated``,
        of its latest evaluation of ``partition``."""
        memo = (key, partition, evaluated)
        if memo not in self._checks:
            storage = self._instance.event_log_storage
            if evaluated:
                records = storage.get_asset_check_execution_history(
                    key,
                    limit=1,
                    status=COMPLETED_ASSET_CHECK_EXECUTION_RECORD_STATUSES,
                    partition_filter=PartitionKeyFilter(key=partition),
                )
            else:
                records = storage.get_asset_check_execution_history(key, limit=1)
            self._checks[memo] = records[0].run_id if records else None
        return self._checks[memo]

    def _asset_run(self, kind: Event, key: dg.AssetKey) -> str | None:
        if (kind, key) not in self._assets:
            records = self._fetch(kind, dg.AssetRecordsFilter(asset_key=key), 1)
            self._assets[(kind, key)] = records[0].run_id if records else None
        return self._assets[(kind, key)]

    def _runs_of(self, kind: Event, key: dg.AssetKey, storage_ids: list[int]) -> dict[int, str]:
        if not storage_ids:
            return {}
        filters = dg.AssetRecordsFilter(asset_key=key, storage_ids=storage_ids)
        return {r.storage_id: r.run_id for r in self._fetch(kind, filters, len(storage_ids))}

    def _fetch(
        self, kind: Event, filters: dg.AssetRecordsFilter, limit: int
    ) -> Sequence[dg.EventLogRecord]:
        fetch = (
            self._instance.fetch_materializations
            if kind is Event.ASSET_MATERIALIZATION
            else self._instance.fetch_observations
        )
        return fetch(filters, limit=limit).records
