"""Valuing the portfolio every night, once the day's closing candles are stored.

The ledger run (requested by the holdings sensor) rebuilds balances and values whenever
transactions change; this schedule covers what changes without a transaction: a new day for
every open position, and the closes ``daily_close`` stored at 00:10 UTC.
"""

import dagster as dg

from platform_pkg.portfolio.valuation import daily_balances, portfolio_value
from platform_pkg.runs import single_run_schedule

valuation_job = dg.define_asset_job(
    "portfolio_valuation_job",
    selection=[daily_balances, portfolio_value],
    description="Carry the balances to today and value the portfolio from the earliest day "
    "whose balances or daily closes changed.",
)


portfolio_valuation = single_run_schedule(
    "portfolio_valuation",
    "40 0 * * *",
    valuation_job,
    "00:40 UTC, after daily_close: balances carried to the new day and the portfolio valued with "
    "yesterday's final closes.",
)
