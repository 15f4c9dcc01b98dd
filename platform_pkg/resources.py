"""The resources every code location process uses, with their defaults (no env read at import)."""

from platform_pkg.accounts.resources import Accounts
from platform_pkg.market.resources import MarketData
from platform_pkg.portfolio.resources import PortfolioFile
from platform_pkg.prices.checks import PriceChecks
from platform_pkg.prices.schedules import RefreshSettings
from platform_pkg.wallets.resources import Debank
from platform_pkg.warehouse.io_manager import DuckDBUpsertIOManager
from platform_pkg.warehouse.resources import Warehouse


def default_resources() -> dict:
    warehouse = Warehouse()
    return {
        "warehouse": warehouse,
        "io_manager": DuckDBUpsertIOManager(warehouse=warehouse),
        "market": MarketData(),
        "portfolio": PortfolioFile(),
        "accounts": Accounts(),
        "refresh": RefreshSettings(),
        "price_checks": PriceChecks(),
        "debank": Debank(),
    }
