"""Facts about runs that sensors and schedules share: which statuses are still in flight, and the
tags the platform puts on the runs it requests."""

import os

import dagster as dg

# Queued or running: a run in one of these will still write.
IN_FLIGHT = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]
TRIGGER_TAG = "platform/trigger"  # the sensor that requested the run
SCHEDULE_TAG = "platform/schedule"  # the schedule that requested the run
LEDGER_TAG = "platform/ledger"  # a run of the ledger's chain
REASON_TAG = "platform/reason"


def in_flight(instance: dg.DagsterInstance, tags: dict[str, str]) -> dg.DagsterRun | None:
    """A queued or running run with ``tags``, if there is one."""
    runs = instance.get_runs(filters=dg.RunsFilter(tags=tags, statuses=IN_FLIGHT), limit=1)
    return runs[0] if runs else None


def seconds_from_env(var: str, default: int) -> int:
    """A sensor's interval from ``var`` (1-3600 s) or ``default``.

    Read when the definitions are built (an interval is part of a sensor's definition); a bad
    value fails with a clear message rather than silently using the default.
    """
    raw = os.environ.get(var, str(default))
    try:
        seconds = int(raw)
    except ValueError:
        seconds = 0
    if not 1 <= seconds <= 3600:
        raise ValueError(f"{var}={raw!r} is not a number of seconds (1-3600)")
    return seconds
