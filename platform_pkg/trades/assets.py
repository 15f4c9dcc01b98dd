"""The ``exchange_trades`` asset: every exchange account's trades, partitioned like the prices."""

import dagster as dg
from pydantic import Field

from platform_pkg.accounts.resources import Accounts
from platform_pkg.market.resources import MarketData
from platform_pkg.partitions import symbol_date_partitions, windows_for_context
from platform_pkg.prices.assets import WAREHOUSE_POOL
from platform_pkg.prices.schedules import RefreshSettings
from platform_pkg.trades import paging
from platform_pkg.trades.ingest import TABLE, TradeSync
from platform_pkg.trades.markets import describe, plan_tasks
from platform_pkg.trades.rows import TRADE_COLUMNS, TRADE_KEY
from platform_pkg.trades.sources import trade_source
from platform_pkg.warehouse import deferrals, watermarks
from platform_pkg.warehouse.io_manager import (
    AUDIT_METADATA,
    HISTORY_METADATA,
    KEY_METADATA,
    TIME_COLUMN_METADATA,
    TRACK_CHANGES_METADATA,
    VALID_FROM_METADATA,
)
from platform_pkg.warehouse.resources import Warehouse
from platform_pkg.warehouse.upsert import table_columns

GROUP = "accounts"


class TradeSyncConfig(dg.Config):
    """How a trade sync runs: defaults suit the schedules; the launchpad can override them."""

    reconcile: bool = Field(
        default=False,
        description="Also re-read the last reconcile_days of every (account, market) in full: "
        "changed trades are updated (old version kept), vanished ones soft-deleted, returning "
        "ones restored.",
    )


@dg.asset(
    name=TABLE,
    description="Every trade of the user's exchange accounts (data/accounts.toml), synced "
    "incrementally: per (account, market) only what is newer than the newest stored trade id. "
    "A date partition holds the trades executed that UTC day; a run over a symbol's dates syncs "
    "that symbol for every account that trades it. Changed trades keep their old version in "
    "exchange_trades_history; vanished ones are soft-deleted (is_deleted).",
    partitions_def=symbol_date_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    metadata={
        KEY_METADATA: TRADE_KEY,
        AUDIT_METADATA: ["fetched_at"],
        TIME_COLUMN_METADATA: "ts",
        HISTORY_METADATA: f"{TABLE}_history",
        VALID_FROM_METADATA: "fetched_at",
        TRACK_CHANGES_METADATA: True,
        "dagster/column_schema": dg.TableSchema(
            columns=[dg.TableColumn(name, typ) for name, typ in TRADE_COLUMNS.items()]
        ),
        "dagster/table_name": f"warehouse.main.{TABLE}",
    },
    pool=WAREHOUSE_POOL,
    kinds={"duckdb"},
    group_name=GROUP,
)
def exchange_trades(
    context: dg.AssetExecutionContext,
    config: TradeSyncConfig,
    accounts: Accounts,
    market: MarketData,
    warehouse: Warehouse,
    refresh: RefreshSettings,
) -> TradeSync:
    file = accounts.load()
    path = accounts.resolved_path()
    if file is None:
        context.log.warning(f"no accounts file at {path}: no exchange trades to sync")
    # Errors that keep an exchange account (or the whole file) from syncing fail the run once
    # the valid accounts are synced; a wallet's error is the wallets' business.
    file_errors = [
        str(e) for e in (file.errors if file is not None else []) if e.kind in (None, "exchange")
    ]
    for error in file_errors:
        context.log.error(error)
    with warehouse.connection() as con:
        traded, tracked = _known_symbols(con)
        pending = deferrals.pending(con, paging.NEWEST)
    tasks = plan_tasks(
        windows_for_context(context),
        file.exchanges if file is not None else [],
        traded=traded,
        tracked=tracked,
    )
    for line in describe(tasks) or ["no exchange account syncs these symbols"]:
        context.log.info(line)
    return TradeSync(
        tasks=tasks,
        source_for=lambda account, meter: trade_source(market, account, meter, path=path),
        read_marks=lambda asset_id: _read_marks(warehouse, asset_id),
        now=market.clock()(),
        accounts_file=path,
        reconcile_days=refresh.reconcile_days if config.reconcile else 0,
        run_id=context.run.run_id,
        log=context.log,
        deferred_before=pending,
        file_errors=file_errors,
    )


def _known_symbols(con) -> tuple[dict[str, set[str]], set[str]]:
    """(account → symbols the ledger has for it, every tracked symbol)."""
    traded: dict[str, set[str]] = {}
    if table_columns(con, "transactions"):
        for account, symbol in con.execute(
            "SELECT DISTINCT account, symbol FROM transactions WHERE NOT is_deleted"
        ).fetchall():
            traded.setdefault(account, set()).add(symbol)
    tracked = set()
    if table_columns(con, "tracked_assets"):
        tracked = {s for (s,) in con.execute("SELECT asset_id FROM tracked_assets").fetchall()}
    return traded, tracked


def _read_marks(warehouse: Warehouse, asset_id: str) -> paging.Watermarks:
    with warehouse.connection() as con:
        return paging.Watermarks(
            newest=watermarks.read_cursor(con, asset_id, paging.NEWEST),
            oldest=watermarks.read_cursor(con, asset_id, paging.OLDEST),
            synced=watermarks.read_cursor(con, asset_id, paging.SYNCED),
        )
