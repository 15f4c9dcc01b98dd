"""Recomputing the platform status every hour."""

import dagster as dg

from platform_pkg.runs import single_run_schedule
from platform_pkg.status.assets import platform_status

NAME = "platform_status_refresh"

status_job = dg.define_asset_job(
    "platform_status_job",
    selection=[platform_status],
    description="Recompute platform_status: reads the warehouse and the instance, writes nothing.",
)


platform_status_refresh = single_run_schedule(
    NAME,
    "5 * * * *",
    status_job,
    "Hourly at :05: platform_status, so its figures plot over time (under a second a run on 100 "
    "symbols × 5 years; every 15 minutes would add ~15 MB a day of run history). Materialise it "
    "from the UI, or run `python -m platform_pkg.cli status`, for a look now.",
)
