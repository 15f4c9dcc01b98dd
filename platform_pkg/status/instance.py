"""What the Dagster instance knows that the status shows: failed runs and why, the symbol
partitions, and the instance's size on disk.

Dagster is imported only when an instance is read (it takes about a second to import), so the
status command can skip it. Every read degrades to a note: a status without run facts is still
worth showing.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from platform_pkg.status.build import directory_bytes
from platform_pkg.status.model import FAILED_RUNS_WINDOW, FailedRun, InstanceFacts

FAILED_RUNS_LISTED = 20  # the newest failed runs whose reason is read (one query each)
REASON_CHARS = 300


def instance_facts(instance: Any, now: datetime) -> InstanceFacts:
    """Facts from a ``DagsterInstance``: the runs that failed in the last 24 h before ``now``,
    the ``symbols`` partitions, and the size of the instance's directory."""
    import dagster as dg

    from platform_pkg.partitions import symbols_partitions

    since = now - FAILED_RUNS_WINDOW
    records = [
        r
        for r in instance.get_run_records(
            filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.FAILURE], updated_after=since)
        )
        if (r.end_time or r.update_timestamp.timestamp()) >= since.timestamp()
    ]
    failed = tuple(_failed_run(instance, r) for r in records[:FAILED_RUNS_LISTED])
    root = getattr(instance, "root_directory", None)
    return InstanceFacts(
        failed_runs=failed,
        failed_runs_total=len(records),
        symbol_partitions=tuple(sorted(instance.get_dynamic_partitions(symbols_partitions.name))),
        instance_bytes=directory_bytes(Path(root)) if root else None,
    )


def home_facts(now: datetime, *, read_runs: bool = True) -> InstanceFacts:
    """Facts from the instance ``$DAGSTER_HOME`` names (the CLI's way in); a note instead of
    run facts when there is none, it cannot be loaded, or ``read_runs`` is off."""
    home = os.environ.get("DAGSTER_HOME")
    if not home:
        return InstanceFacts(note="DAGSTER_HOME is not set: no Dagster instance to read")
    size = directory_bytes(Path(home))
    if not read_runs:
        return InstanceFacts(instance_bytes=size, note="runs and partitions not read (--no-runs)")
    if not (Path(home) / "dagster.yaml").is_file():
        return InstanceFacts(instance_bytes=size, note=f"no dagster.yaml in {home}: no instance")
    try:
        import dagster as dg

        with dg.DagsterInstance.get() as instance:
            return instance_facts(instance, now)
    except Exception as exc:  # noqa: BLE001 - the warehouse half of the status still stands
        return InstanceFacts(
            instance_bytes=size,
            note=f"could not read the instance in {home}: {type(exc).__name__}: {exc}",
        )


def _failed_run(instance: Any, record: Any) -> FailedRun:
    run = record.dagster_run
    ended = record.end_time
    return FailedRun(
        run_id=run.run_id,
        job_name=run.job_name,
        ended_at=datetime.fromtimestamp(ended, UTC) if ended else record.update_timestamp,
        trigger=_trigger(run.tags),
        reason=_reason(instance, run.run_id),
    )


def _trigger(tags: dict[str, str]) -> str:
    for tag, kind in (
        ("dagster/schedule_name", "schedule"),
        ("dagster/sensor_name", "sensor"),
        ("dagster/backfill", "backfill"),
    ):
        if tag in tags:
            return f"{kind} {tags[tag]}"
    return "manual"


def _reason(instance: Any, run_id: str) -> str:
    """The first failed step's error (its innermost cause), else the run failure's own words."""
    import dagster as dg

    found = instance.get_records_for_run(
        run_id, of_type=dg.DagsterEventType.RUN_FAILURE, limit=1, ascending=False
    ).records
    if not found:
        return "no failure event recorded (the run was marked failed from outside)"
    entry = found[0].event_log_entry
    data = entry.dagster_event.event_specific_data if entry.dagster_event else None
    step = getattr(data, "first_step_failure_event", None)
    error = getattr(getattr(step, "event_specific_data", None), "error", None)
    if step is not None and error is not None:
        return _cut(f"step {step.step_key}: {_user_error(error)}")
    if getattr(data, "error", None) is not None:
        return _cut(_user_error(data.error))
    return _cut(entry.message or str(getattr(data, "failure_reason", "")) or "unknown")


def _user_error(error: Any) -> str:
    """The error below Dagster's wrappers ("Error occurred while executing op ...")."""
    while error.cause is not None and (error.cls_name or "").startswith("Dagster"):
        error = error.cause
    return error.message.strip()


def _cut(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= REASON_CHARS else text[: REASON_CHARS - 1] + "…"
