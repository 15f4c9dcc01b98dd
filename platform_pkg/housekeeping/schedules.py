"""Pruning the instance every night."""

import dagster as dg

from platform_pkg.housekeeping.jobs import prune_job
from platform_pkg.prices.schedules import one_run

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
    return one_run(context, NAME)
