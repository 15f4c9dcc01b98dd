"""Refreshing the asset catalogue every week."""

import dagster as dg

from platform_pkg.catalog.assets import asset_catalog
from platform_pkg.runs import single_run_schedule

NAME = "catalog_refresh"

catalog_job = dg.define_asset_job(
    "asset_catalog_job",
    selection=[asset_catalog],
    description="Ask the configured sources what they list and write what changed to "
    "asset_catalog: new listings, delistings, listings that came back.",
)


catalog_refresh = single_run_schedule(
    NAME,
    "10 4 * * 1",
    catalog_job,
    "Mondays 04:10 UTC: asset_catalog refreshed from the configured sources (exchange markets, "
    "CoinGecko's coins, the listings files, or the demo market).",
)
