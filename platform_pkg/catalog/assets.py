"""The ``asset_catalog`` asset: what can be tracked, as the configured sources list it."""

import dagster as dg
from pydantic import Field

from platform_pkg.catalog import lookup
from platform_pkg.catalog.fetch import Options, fetch_sources, user_listings_path
from platform_pkg.catalog.model import COLUMNS, KEY, TABLE
from platform_pkg.catalog.refresh import CatalogRefresh, plan_refresh
from platform_pkg.market.resources import MarketData
from platform_pkg.market.source import RequestMeter
from platform_pkg.prices.assets import WAREHOUSE_POOL
from platform_pkg.warehouse.io_manager import KEY_METADATA
from platform_pkg.warehouse.resources import Warehouse

GROUP = "catalog"


class CatalogConfig(dg.Config):
    """How a refresh asks the sources; the defaults suit the weekly schedule."""

    coingecko_pages: int = Field(
        default=4,
        ge=0,
        le=100,
        description="Pages of 250 coins by market cap (/coins/markets, one request each) whose "
        "ranks decide which coin takes a ticker several coins share; 0 asks only /coins/list.",
    )
    listings_file: str | None = Field(
        default=None,
        description="Your own listings CSV (stocks, ETFs, FX, futures as Yahoo quotes them), read "
        "after data/catalog/listings.csv when the stock source is yfinance. Default: "
        "$PLATFORM_LISTINGS, else data/listings.csv (relative to the project root).",
    )


@dg.asset(
    name=TABLE,
    description="What the platform can track: one row per symbol key (asset_id) that a configured "
    "source lists — the exchange's markets (ccxt), CoinGecko's coins (as TICKER-USD), the "
    "listings files (stocks, ETFs, FX, futures), or the demo market — with its name, class, "
    "exchange, currency, who lists it (source, source_id) and since when. A symbol no source "
    "lists any more is kept with is_active = false and delisted_at; a failed source's entries "
    "are left as they were. Only what changed is written; refreshed weekly (catalog_refresh).",
    metadata={
        KEY_METADATA: KEY,
        "dagster/column_schema": dg.TableSchema(
            columns=[dg.TableColumn(name, typ) for name, typ in COLUMNS.items()]
        ),
        "dagster/table_name": f"warehouse.main.{TABLE}",
    },
    pool=WAREHOUSE_POOL,
    kinds={"duckdb"},
    group_name=GROUP,
)
def asset_catalog(
    context: dg.AssetExecutionContext,
    config: CatalogConfig,
    market: MarketData,
    warehouse: Warehouse,
) -> CatalogRefresh:
    meter = RequestMeter()
    options = Options(config.coingecko_pages, user_listings_path(config.listings_file))
    results = fetch_sources(market, options, meter, context.log)
    for result in results:
        if result.failed:
            context.log.warning(
                f"{result.source} failed ({result.error}): its entries are kept as they were"
            )
    now = market.clock()()
    with warehouse.connection() as con:
        stored, seen = lookup.read_entries(con), lookup.last_successes(con)
    plan = plan_refresh(stored, results, now, seen)
    counts = ", ".join(f"{n} {kind}" for kind, n in plan.counts().items())
    context.log.info(f"asset_catalog: {counts}, {plan.unchanged} unchanged, {meter.total} requests")
    return CatalogRefresh(results, plan, context.run.run_id, now)
