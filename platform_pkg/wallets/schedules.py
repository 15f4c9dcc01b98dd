"""Keeping wallets current: an hourly sync (DeBank charges units for every call), a weekly
reconcile. Each tick asks for today's partition of every wallet in the accounts file, as one
ranged run per contiguous block of wallet partitions; nothing new costs one call per wallet."""

import os
from datetime import timedelta

import dagster as dg

from platform_pkg.accounts.config import read_accounts
from platform_pkg.accounts.resources import Accounts
from platform_pkg.market.resources import MarketData
from platform_pkg.partitions import wallets_partitions
from platform_pkg.prices.schedules import block_requests
from platform_pkg.runs import busy
from platform_pkg.wallets.assets import onchain_transactions

DEFAULT_WALLET_MINUTES = 60

wallets_job = dg.define_asset_job(
    "onchain_job",
    selection=[onchain_transactions],
    description="Sync the selected wallets' on-chain history (DeBank units are counted).",
)


def wallet_minutes() -> int:
    """``PLATFORM_WALLETS_MINUTES`` (a divisor of 60, or 60) or 60, read when definitions load."""
    raw = os.environ.get("PLATFORM_WALLETS_MINUTES", str(DEFAULT_WALLET_MINUTES))
    if not raw.isdigit() or int(raw) not in {1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30, 60}:
        raise ValueError(f"PLATFORM_WALLETS_MINUTES={raw!r} is not a divisor of 60 (minutes)")
    return int(raw)


WALLET_MINUTES = wallet_minutes()


def _wallets(accounts: Accounts) -> dict[str, str]:
    file = read_accounts(accounts.resolved_path(), known_exchange=lambda _: True, environ={})
    return {w.name: "wallet" for w in file.wallets} if file is not None else {}


@dg.schedule(
    name="onchain_sync",
    cron_schedule="5 * * * *" if WALLET_MINUTES == 60 else f"*/{WALLET_MINUTES} * * * *",
    execution_timezone="UTC",
    target=wallets_job,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description=f"Every {WALLET_MINUTES} minutes: what is new in every wallet, and a re-read of "
    "its finality window (one DeBank call per wallet when nothing is new).",
)
def onchain_sync(context: dg.ScheduleEvaluationContext, accounts: Accounts, market: MarketData):
    now = market.clock()()
    if (skip := busy(context, "onchain_sync")) is not None:
        return skip
    wanted = _wallets(accounts)
    if not wanted:
        return dg.SkipReason(f"no wallet in the accounts file ({accounts.resolved_path()})")
    day = now.date()
    return block_requests(
        context, "onchain_sync", sorted(wanted), day, day, wanted, now,
        partitions=wallets_partitions, dimension="wallet",
    )  # fmt: skip


@dg.schedule(
    name="onchain_reconcile",
    cron_schedule="30 2 * * 0",
    execution_timezone="UTC",
    target=wallets_job,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Sundays 02:30 UTC: re-reads every wallet's last reconcile_days in full (units "
    "counted and bounded by the budget); what DeBank no longer returns is soft-deleted, what "
    "came back restored.",
)
def onchain_reconcile(
    context: dg.ScheduleEvaluationContext, accounts: Accounts, market: MarketData
):
    now = market.clock()()
    if (skip := busy(context, "onchain_reconcile")) is not None:
        return skip
    wanted = _wallets(accounts)
    if not wanted:
        return dg.SkipReason(f"no wallet in the accounts file ({accounts.resolved_path()})")
    day = now.date() - timedelta(days=1)
    config = {"ops": {onchain_transactions.op.name: {"config": {"reconcile": True}}}}
    return block_requests(
        context, "onchain_reconcile", sorted(wanted), day, day, wanted, now, config,
        partitions=wallets_partitions, dimension="wallet",
    )  # fmt: skip
