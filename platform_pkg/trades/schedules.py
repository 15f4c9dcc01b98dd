"""Keeping exchange trades current: an incremental sync every few minutes, a weekly reconcile.

Each tick asks for today's partition of every symbol some exchange account syncs — the markets
an account names, and every tracked crypto symbol for accounts that name none — as one ranged run
per contiguous block of symbol partitions. Nothing new costs one request per (account, market).
"""

import os
from datetime import timedelta

import dagster as dg

from platform_pkg.accounts.config import read_accounts
from platform_pkg.accounts.resources import Accounts
from platform_pkg.market.catalogue import asset_class_of
from platform_pkg.market.resources import MarketData
from platform_pkg.portfolio import tracked
from platform_pkg.prices.schedules import block_requests
from platform_pkg.runs import busy
from platform_pkg.trades.assets import exchange_trades
from platform_pkg.warehouse.resources import Warehouse
from platform_pkg.warehouse.upsert import table_columns

DEFAULT_TRADES_MINUTES = 15

trades_job = dg.define_asset_job(
    "exchange_trades_job",
    selection=[exchange_trades],
    description="Sync the exchange accounts' trades of the selected symbols.",
)


def trades_minutes() -> int:
    """``PLATFORM_TRADES_MINUTES`` (a divisor of 60) or 15, read when the definitions load."""
    raw = os.environ.get("PLATFORM_TRADES_MINUTES", str(DEFAULT_TRADES_MINUTES))
    if not raw.isdigit() or int(raw) not in {1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30, 60}:
        raise ValueError(f"PLATFORM_TRADES_MINUTES={raw!r} is not a divisor of 60 (minutes)")
    return int(raw)


TRADES_MINUTES = trades_minutes()


def trade_symbols(accounts: Accounts, warehouse: Warehouse) -> dict[str, str]:
    """Every symbol some exchange account syncs (symbol → why), without touching the network:
    the runs check what each exchange lists."""
    # Validation is the runs' (and the accounts sensor's): here only the markets matter.
    file = read_accounts(accounts.resolved_path(), known_exchange=lambda _: True, environ={})
    if file is None:
        return {}
    wanted: dict[str, str] = {}
    for account in file.exchanges:
        for symbol in account.markets or ():
            wanted.setdefault(symbol, "named in markets")
    if any(a.markets is None for a in file.exchanges):
        with warehouse.connection() as con:
            if table_columns(con, tracked.TABLE):
                rows = con.execute(f"SELECT asset_id FROM {tracked.TABLE}").fetchall()  # noqa: S608
                for (symbol,) in rows:
                    if asset_class_of(symbol) == "crypto":
                        wanted.setdefault(symbol, "tracked")
    return wanted


@dg.schedule(
    name="exchange_trades_sync",
    cron_schedule="0 * * * *" if TRADES_MINUTES == 60 else f"*/{TRADES_MINUTES} * * * *",
    execution_timezone="UTC",
    target=trades_job,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description=f"Every {TRADES_MINUTES} minutes: new trades of every exchange account, for "
    "today's partition of every symbol an account syncs (one request per account and market "
    "when nothing is new).",
)
def exchange_trades_sync(
    context: dg.ScheduleEvaluationContext,
    accounts: Accounts,
    market: MarketData,
    warehouse: Warehouse,
):
    now = market.clock()()
    if (skip := busy(context, "exchange_trades_sync")) is not None:
        return skip
    wanted = trade_symbols(accounts, warehouse)
    if not wanted:
        return dg.SkipReason(f"no exchange account syncs any market ({accounts.resolved_path()})")
    day = now.date()
    return block_requests(context, "exchange_trades_sync", sorted(wanted), day, day, wanted, now)


@dg.schedule(
    name="exchange_trades_reconcile",
    cron_schedule="0 2 * * 0",
    execution_timezone="UTC",
    target=trades_job,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Sundays 02:00 UTC: re-reads the last reconcile_days of trades of every exchange "
    "account and market in full; a trade the exchange no longer returns is soft-deleted, one "
    "that came back restored, a changed one updated (old version kept).",
)
def exchange_trades_reconcile(
    context: dg.ScheduleEvaluationContext,
    accounts: Accounts,
    market: MarketData,
    warehouse: Warehouse,
):
    now = market.clock()()
    if (skip := busy(context, "exchange_trades_reconcile")) is not None:
        return skip
    wanted = trade_symbols(accounts, warehouse)
    if not wanted:
        return dg.SkipReason(f"no exchange account syncs any market ({accounts.resolved_path()})")
    day = now.date() - timedelta(days=1)
    config = {"ops": {exchange_trades.op.name: {"config": {"reconcile": True}}}}
    return block_requests(
        context, "exchange_trades_reconcile", sorted(wanted), day, day, wanted, now, config
    )
