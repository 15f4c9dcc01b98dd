"""The ``onchain_transactions`` asset: every wallet's history, partitioned by wallet × date."""

from datetime import UTC, datetime, timedelta

import dagster as dg
from pydantic import Field

from platform_pkg.accounts.config import read_accounts
from platform_pkg.accounts.resources import Accounts
from platform_pkg.market.resources import MarketData
from platform_pkg.partitions import wallet_date_partitions, windows_for_context
from platform_pkg.prices.assets import WAREHOUSE_POOL
from platform_pkg.prices.schedules import RefreshSettings
from platform_pkg.trades.markets import merged_windows
from platform_pkg.wallets.ingest import MARKS, NEWEST, TABLE, WalletSync, WalletTask
from platform_pkg.wallets.resources import Debank
from platform_pkg.wallets.rows import ONCHAIN_COLUMNS, ONCHAIN_KEY
from platform_pkg.warehouse import deferrals, watermarks
from platform_pkg.warehouse.io_manager import (
    AUDIT_METADATA,
    HISTORY_METADATA,
    KEY_METADATA,
    SYMBOL_COLUMN_METADATA,
    TIME_COLUMN_METADATA,
    TRACK_CHANGES_METADATA,
    VALID_FROM_METADATA,
)
from platform_pkg.warehouse.resources import Warehouse
from platform_pkg.warehouse.upsert import table_columns


class WalletSyncConfig(dg.Config):
    """How a wallet sync runs: defaults suit the schedules; the launchpad can override them."""

    reconcile: bool = Field(
        default=False,
        description="Also re-read the last reconcile_days of every wallet in full (its units are "
        "counted and bounded by the budget): vanished transactions are soft-deleted, returning "
        "ones restored, changed ones updated (old version kept).",
    )


@dg.asset(
    name=TABLE,
    description="Every transaction of the user's on-chain wallets (data/accounts.toml), from "
    "DeBank, which charges units for every call: each transaction is fetched once. A sync asks "
    "only for what is newer than the newest stored transaction, plus a re-read of the last "
    "finality_minutes (status flips, late arrivals, reorganisations). Scam-flagged transactions "
    "are stored, flagged and left out of holdings. Units spent are counted per sync and wallet "
    "and capped per UTC day by PLATFORM_DEBANK_UNITS_BUDGET.",
    partitions_def=wallet_date_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    metadata={
        KEY_METADATA: ONCHAIN_KEY,
        AUDIT_METADATA: ["fetched_at"],
        TIME_COLUMN_METADATA: "ts",
        SYMBOL_COLUMN_METADATA: "wallet",
        HISTORY_METADATA: f"{TABLE}_history",
        VALID_FROM_METADATA: "fetched_at",
        TRACK_CHANGES_METADATA: True,
        "dagster/column_schema": dg.TableSchema(
            columns=[dg.TableColumn(name, typ) for name, typ in ONCHAIN_COLUMNS.items()]
        ),
        "dagster/table_name": f"warehouse.main.{TABLE}",
    },
    pool=WAREHOUSE_POOL,
    kinds={"duckdb"},
    group_name="accounts",
)
def onchain_transactions(
    context: dg.AssetExecutionContext,
    config: WalletSyncConfig,
    accounts: Accounts,
    market: MarketData,
    warehouse: Warehouse,
    refresh: RefreshSettings,
    debank: Debank,
) -> WalletSync:
    path = accounts.resolved_path()
    # Not accounts.load(): its DeBank check reads only the variable, and would refuse every
    # DeBank wallet when the key is the Debank resource's field. The source checks the key.
    file = read_accounts(path, known_exchange=lambda _: True, environ={})
    errors = [str(e) for e in (file.errors if file else []) if e.kind in (None, "wallet")]
    if file is None:
        errors.append(f"there is no accounts file at {path}")
    tasks = []
    for window in merged_windows(windows_for_context(context, "wallet")):
        wallet = file.wallet(window.symbol) if file is not None else None
        if wallet is None:
            if file is not None and not any(window.symbol == e.account for e in file.errors):
                errors.append(f"{path}: no [[wallet]] named {window.symbol!r} in the file any more")
            continue
        tasks.append(WalletTask(wallet, window))
    for error in errors:
        context.log.error(error)
    with warehouse.connection() as con:
        pending = deferrals.pending(con, NEWEST)
    return WalletSync(
        tasks=tasks,
        source_for=lambda wallet, meter: debank.source(market, wallet, meter),
        read_marks=lambda name: _read_marks(warehouse, name),
        now=market.clock()(),
        budget=debank.budget(market),
        finality=timedelta(minutes=debank.finality_minutes),
        reconcile_days=refresh.reconcile_days if config.reconcile else 0,
        run_id=context.run.run_id,
        log=context.log,
        deferred_before=pending,
        file_errors=errors,
        spending=lambda: _spending(warehouse),
    )


def _read_marks(warehouse: Warehouse, asset_id: str):
    with warehouse.connection() as con:
        return tuple(watermarks.read_cursor(con, asset_id, dt) for dt in MARKS)


def _spending(warehouse: Warehouse) -> dict[str, float]:
    """DeBank units the wallet syncs spent today and this month (UTC), as sync_log recorded them
    (the demo wallet's make-believe units left out)."""
    now = datetime.now(UTC)
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    month = day.replace(day=1)
    with warehouse.connection() as con:
        if not table_columns(con, "sync_log"):
            return {"today": 0.0, "this_month": 0.0}
        today, this_month = con.execute(
            "SELECT coalesce(sum(api_units) FILTER (WHERE started_at >= ?), 0), "
            "coalesce(sum(api_units), 0) FROM sync_log "
            "WHERE data_type = ? AND source = ? AND started_at >= ?",
            [day, NEWEST, "debank", month],
        ).fetchall()[0]
    return {"today": float(today), "this_month": float(this_month)}
