"""Jobs over the price assets."""

import dagster as dg

from platform_pkg.prices.assets import prices_1d, prices_1h

prices_job = dg.define_asset_job(
    "prices_job",
    selection=[prices_1h, prices_1d],
    description="Fetch hourly and daily candles for the selected symbols and days.",
)
