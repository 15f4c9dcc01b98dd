"""Facts about runs that sensors and schedules share: which statuses are still in flight, the tags
the platform puts on the runs it requests, and the schedules that ask one run a tick."""

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


def busy(context: dg.ScheduleEvaluationContext, name: str) -> dg.SkipReason | None:
    """A skip while an earlier run of schedule ``name`` is still queued or running."""
    run = in_flight(context.instance, {SCHEDULE_TAG: name})
    if run is not None:
        return dg.SkipReason(f"run {run.run_id} of {name} is still {run.status.value}")
    return None


def one_run(context: dg.ScheduleEvaluationContext, name: str) -> dg.RunRequest | dg.SkipReason:
    """The tick's one run of schedule ``name``'s job, unless its previous run is in flight."""
    if (skip := busy(context, name)) is not None:
        return skip
    stamp = context.scheduled_execution_time.strftime("%Y-%m-%dT%H:%M")
    return dg.RunRequest(run_key=f"{name}:{stamp}", tags={SCHEDULE_TAG: name})


def single_run_schedule(name: str, cron: str, job, description: str) -> dg.ScheduleDefinition:
    """A schedule (UTC, running by default) asking one run of ``job`` (a job or an asset job) a
    tick, none on top of a previous run still in flight."""

    @dg.schedule(
        name=name,
        cron_schedule=cron,
        execution_timezone="UTC",
        target=job,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=description,
    )
    def _schedule(context: dg.ScheduleEvaluationContext):
        return one_run(context, name)

    return _schedule
