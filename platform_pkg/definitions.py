"""The code location: assembles what the domain modules define."""

import dagster as dg

from platform_pkg.prices.assets import prices_1d, prices_1h
from platform_pkg.prices.jobs import prices_job
from platform_pkg.resources import default_resources

defs = dg.Definitions(
    assets=[prices_1h, prices_1d],
    jobs=[prices_job],
    resources=default_resources(),
    # One process per run: every price run is a single step, so a subprocess per step would
    # only add another ~2 s of imports to each run.
    executor=dg.in_process_executor,
)
