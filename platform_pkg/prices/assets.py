"""Price candle assets, partitioned by symbol × date and fetched as ranged runs."""

import functools

import dagster as dg
from pydantic import Field

from platform_pkg.market.candles import PRICE_KEY, PRICE_TABLE_COLUMNS
from platform_pkg.market.resources import MarketData
from platform_pkg.partitions import symbol_date_partitions, windows_for_context
from platform_pkg.prices.ingest import PriceIngestion
from platform_pkg.warehouse import deferrals, sync_log
from platform_pkg.warehouse.io_manager import AUDIT_METADATA, KEY_METADATA, TIME_COLUMN_METADATA
from platform_pkg.warehouse.resources import Warehouse

WAREHOUSE_POOL = "warehouse_writes"


class PriceFetchConfig(dg.Config):
    """How a run fetches: defaults suit every schedule; the launchpad can override them."""

    lookback_candles: int = Field(
        default=3,
        ge=0,
        description="Candles before the newest stored one to re-read (the open candle is always "
        "re-read): catches late corrections.",
    )
    full_refresh: bool = Field(
        default=False,
        description="Re-fetch the whole requested range, ignoring the watermarks (reconciliation).",
    )


def _price_metadata(table: str) -> dict:
    return {
        KEY_METADATA: PRICE_KEY,
        AUDIT_METADATA: ["fetched_at"],
        TIME_COLUMN_METADATA: "ts",
        "dagster/column_schema": dg.TableSchema(
            columns=[dg.TableColumn(name, typ) for name, typ in PRICE_TABLE_COLUMNS.items()]
        ),
        "dagster/table_name": f"warehouse.main.{table}",
    }


def _build(
    context: dg.AssetExecutionContext,
    data_type: str,
    interval: str,
    config: PriceFetchConfig,
    market: MarketData,
    warehouse: Warehouse,
) -> PriceIngestion:
    clock = market.clock()
    with warehouse.connection() as con:
        deferred = deferrals.pending(con, data_type)
        running = sync_log.running_runs(con)
    return PriceIngestion(
        data_type=data_type,
        interval=interval,
        windows=windows_for_context(context),
        source_for=market.source_for,
        read_coverage=warehouse.coverage,
        now=clock(),
        lookback=config.lookback_candles,
        full_refresh=config.full_refresh,
        run_id=context.run.run_id,
        log=context.log,
        deferred_before=deferred,
        running_runs=running,
        run_ended=functools.partial(ended_status, context.instance),
    )


def ended_status(instance: dg.DagsterInstance, run_id: str) -> str | None:
    """The final status of a run this instance knows, or None while it may still run."""
    run = instance.get_run_by_id(run_id)
    return run.status.value if run is not None and run.is_finished else None


def price_asset(data_type: str, interval: str, description: str) -> dg.AssetsDefinition:
    @dg.asset(
        name=data_type,
        description=description,
        partitions_def=symbol_date_partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        metadata=_price_metadata(data_type),
        pool=WAREHOUSE_POOL,
        kinds={"duckdb"},
        group_name="prices",
        tags={"interval": interval},
    )
    def _asset(
        context: dg.AssetExecutionContext,
        config: PriceFetchConfig,
        market: MarketData,
        warehouse: Warehouse,
    ) -> PriceIngestion:
        return _build(context, data_type, interval, config, market, warehouse)

    return _asset


prices_1h = price_asset(
    "prices_1h",
    "1h",
    "Hourly OHLCV candles per symbol (UTC). A date partition holds the candles that open on "
    "that day; the still-open candle is stored with is_final = false and finalised later.",
)
prices_1d = price_asset(
    "prices_1d",
    "1d",
    "Daily OHLCV candles per symbol (UTC days). A date partition holds that day's candle; "
    "today's is open (is_final = false) until the market's session for the day has closed.",
)
