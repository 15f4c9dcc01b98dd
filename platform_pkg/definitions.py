"""The code location: assembles what the domain modules define."""

import dagster as dg

from platform_pkg.accounts.sensors import accounts_sensor
from platform_pkg.catalog.assets import asset_catalog
from platform_pkg.catalog.schedules import catalog_job, catalog_refresh
from platform_pkg.housekeeping.jobs import prune_job
from platform_pkg.housekeeping.schedules import daily_prune
from platform_pkg.ledger.assets import holdings, transactions
from platform_pkg.ledger.checks import holdings_checks, transactions_checks
from platform_pkg.portfolio.assets import portfolio_transactions, tracked_assets
from platform_pkg.portfolio.schedules import portfolio_valuation, valuation_job
from platform_pkg.portfolio.sensors import holdings_sensor
from platform_pkg.portfolio.valuation import daily_balances, portfolio_value
from platform_pkg.prices.assets import prices_1d, prices_1h
from platform_pkg.prices.checks import prices_1d_checks, prices_1h_checks
from platform_pkg.prices.jobs import prices_job
from platform_pkg.prices.schedules import daily_close, intraday_refresh, weekly_reconcile
from platform_pkg.resources import default_resources
from platform_pkg.status.assets import platform_status
from platform_pkg.status.schedules import platform_status_refresh, status_job
from platform_pkg.trades.assets import exchange_trades
from platform_pkg.trades.checks import exchange_trades_checks
from platform_pkg.trades.schedules import (
    exchange_trades_reconcile,
    exchange_trades_sync,
    trades_job,
)
from platform_pkg.wallets.assets import onchain_transactions
from platform_pkg.wallets.schedules import onchain_reconcile, onchain_sync, wallets_job

defs = dg.Definitions(
    assets=[
        prices_1h,
        prices_1d,
        portfolio_transactions,
        exchange_trades,
        onchain_transactions,
        transactions,
        holdings,
        tracked_assets,
        daily_balances,
        portfolio_value,
        asset_catalog,
        platform_status,
    ],
    asset_checks=[
        prices_1h_checks,
        prices_1d_checks,
        exchange_trades_checks,
        transactions_checks,
        holdings_checks,
    ],
    jobs=[prices_job, trades_job, wallets_job, valuation_job, prune_job, status_job, catalog_job],
    sensors=[holdings_sensor, accounts_sensor],
    schedules=[
        intraday_refresh,
        daily_close,
        weekly_reconcile,
        exchange_trades_sync,
        exchange_trades_reconcile,
        onchain_sync,
        onchain_reconcile,
        portfolio_valuation,
        daily_prune,
        catalog_refresh,
        platform_status_refresh,
    ],
    resources=default_resources(),
    # One process per run: every fetching run is a single step, so a subprocess per step would
    # only add another ~2 s of imports to each run.
    executor=dg.in_process_executor,
)
