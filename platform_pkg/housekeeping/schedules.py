"""Pruning the instance every night."""

from platform_pkg.housekeeping.jobs import prune_job
from platform_pkg.runs import single_run_schedule

daily_prune = single_run_schedule(
    "daily_prune",
    "20 3 * * *",
    prune_job,
    "03:20 UTC: prune_runs with its defaults: scheduled and sensor runs older than 14 days (failed "
    "ones 30) whose every record a later run replaced are deleted.",
)
