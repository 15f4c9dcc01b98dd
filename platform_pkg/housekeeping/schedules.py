"""Pruning the instance every night."""

import dagster as dg

from platform_pkg.housekeeping.jobs import prune_job
from platform_pkg.prices.schedules import busy
from platform_pkg.runs import SCHEDULE_TAG

NAME = "daily_prune"


@dg.schedule(
    name=NAME,
    cron_schedule="20 3 * * *",
    execution_timezone="UTC",
    target=prune_job,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="03:20 UTC: prune_runs with its defaults: scheduled and sensor runs older than 14 "
    "days (failed ones 30) whose every record a later run replaced are deleted.",
)
def daily_prune(context: dg.ScheduleEvaluationContext):
    if (skip := busy(context, NAME)) is not None:
        return skip
    stamp = context.scheduled_execution_time.strftime("%Y-%m-%dT%H:%M")
    return dg.RunRequest(run_key=f"{NAME}:{stamp}", tags={SCHEDULE_TAG: NAME})
