"""Recomputing the platform status every hour."""

import dagster as dg

from platform_pkg.prices.schedules import one_run
from platform_pkg.status.assets import platform_status

NAME = "platform_status_refresh"

status_job = dg.define_asset_job(
    "platform_status_job",
    selection=[platform_status],
    description="Recompute platform_status: reads the warehouse and the instance, writes nothing.",
)


@dg.schedule(
    name=NAME,
    cron_schedule="5 * * * *",
    execution_timezone="UTC",
    target=status_job,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Hourly at :05: platform_status, so its figures plot over time (under a "
    "second a run on 100 symbols × 5 years; a run a day more would add ~15 MB a day of run "
    "history at every 15 minutes). Materialise it from the UI, or run `python -m "
    "platform_pkg.cli status`, for a look now.",
)
def platform_status_refresh(context: dg.ScheduleEvaluationContext):
    return one_run(context, NAME)
