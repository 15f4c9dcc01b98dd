"""The code location: assembles what the domain modules define."""

import dagster as dg

from platform_pkg.portfolio.assets import holdings, portfolio_transactions, tracked_assets
from platform_pkg.portfolio.sensors import holdings_sensor
from platform_pkg.prices.assets import prices_1d, prices_1h
from platform_pkg.prices.jobs import prices_job
from platform_pkg.prices.schedules import daily_close, intraday_refresh, weekly_reconcile
from platform_pkg.resources import default_resources

defs = dg.Definitions(
    assets=[prices_1h, prices_1d, portfolio_transactions, holdings, tracked_assets],
    jobs=[prices_job],
    sensors=[holdings_sensor],
    schedules=[intraday_refresh, daily_close, weekly_reconcile],
    resources=default_resources(),
    # One process per run: every price run is a single step, so a subprocess per step would
    # only add another ~2 s of imports to each run.
    executor=dg.in_process_executor,
)
