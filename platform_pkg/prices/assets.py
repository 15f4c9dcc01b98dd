"""Price candle assets, partitioned by symbol × date and fetched as ranged runs."""

import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import dagster as dg
import pandas as pd
from pydantic import Field

from platform_pkg.market.candles import PRICE_KEY, PRICE_TABLE_COLUMNS
from platform_pkg.market.resources import MarketData
from platform_pkg.partitions import SymbolWindow, symbol_date_partitions, windows_for_context
from platform_pkg.prices import gaps
from platform_pkg.prices.ingest import PriceIngestion, closes_query
from platform_pkg.warehouse import deferrals, sync_log
from platform_pkg.warehouse.io_manager import (
    AUDIT_METADATA,
    KEY_METADATA,
    SYMBOL_COLUMN_METADATA,
    TIME_COLUMN_METADATA,
)
from platform_pkg.warehouse.resources import Warehouse

WAREHOUSE_POOL = "warehouse_writes"
CHARTED = "prices_1d"  # the asset whose ranged runs chart the closes they synced
# The portfolio decides which symbols get prices (portfolio.assets imports this module: a key).
TRACKED_ASSETS = dg.AssetKey("tracked_assets")


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
        TIME_COLUMN_METADATA: "ts",  # with the symbol: new candles are appended, not merged
        SYMBOL_COLUMN_METADATA: "symbol",
        "dagster/column_schema": dg.TableSchema(
            columns=[dg.TableColumn(name, typ) for name, typ in PRICE_TABLE_COLUMNS.items()]
        ),
        "dagster/table_name": f"warehouse.main.{table}",
    }


@dataclass
class ChartedPriceIngestion(PriceIngestion):
    """A price stream whose run figures also chart the closes over the days it synced."""

    read_closes: Callable[[list[SymbolWindow]], pd.DataFrame] | None = None

    def metadata(self) -> dict[str, Any]:
        meta = super().metadata()
        windows = [r.window for r in self.results]
        # A chart of one day is a dot; the schedules' one-day runs go without.
        if self.read_closes is None or not any(w.days > 1 for w in windows):
            return meta
        first, last = min(w.start for w in windows), max(w.end for w in windows)
        title = f"{self.data_type} close, {first:%Y-%m-%d}..{last - timedelta(days=1):%Y-%m-%d}"
        try:
            from platform_pkg.charts import close_chart

            meta["close_chart"] = dg.MetadataValue.md(close_chart(self.read_closes(windows), title))
        except Exception as exc:  # noqa: BLE001 - a chart is not worth failing a stored run
            self._info(f"{self.data_type}: no close chart ({type(exc).__name__}: {exc})", True)
        return meta


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
    charted = data_type == CHARTED
    return ChartedPriceIngestion(
        read_closes=(lambda ws: warehouse.query(*closes_query(data_type, ws))) if charted else None,
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
        read_stored=functools.partial(gaps.read_segment, warehouse.connection, data_type),
    )


def ended_status(instance: dg.DagsterInstance, run_id: str) -> str | None:
    """The final status of a run this instance knows, or None while it may still run."""
    run = instance.get_run_by_id(run_id)
    return run.status.value if run is not None and run.is_finished else None


FILLED_BY = (
    " Which symbols get prices is tracked_assets' business: holdings_sensor gives a symbol the "
    "portfolio (file or exchange) starts to hold its partition and its history as one ranged run; "
    "intraday_refresh (today), daily_close (yesterday) and weekly_reconcile (the last week, in "
    "full) keep every active symbol fresh."
)


def price_asset(data_type: str, interval: str, description: str) -> dg.AssetsDefinition:
    @dg.asset(
        name=data_type,
        description=description + FILLED_BY,
        partitions_def=symbol_date_partitions,
        deps=[TRACKED_ASSETS],
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
