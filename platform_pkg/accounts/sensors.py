"""The accounts sensor: the accounts file changes → each new or changed exchange account gets its
markets as symbol partitions and its history synced, as one ranged run per block of symbols; each
new or changed wallet gets its wallet partition and its history from ``history_from`` to today
as one ranged run.

Like every sensor here it only decides: it writes nothing to the warehouse. Its cursor holds the
file's digest and, per account, what was last acted on.
"""

import hashlib
import json
from datetime import date, timedelta

import dagster as dg

from platform_pkg.accounts.model import ExchangeAccount, WalletAccount
from platform_pkg.accounts.resources import Accounts
from platform_pkg.ledger.assets import SUMMARY_METADATA, holdings
from platform_pkg.market.catalogue import asset_class_of
from platform_pkg.market.resources import MarketData
from platform_pkg.partitions import (
    SymbolWindow,
    block_range_tags,
    daily_partitions,
    day_start,
    partition_range_tags,
    symbols_partitions,
    wallets_partitions,
)
from platform_pkg.portfolio.refresh import contiguous_blocks
from platform_pkg.runs import REASON_TAG, TRIGGER_TAG, seconds_from_env
from platform_pkg.trades.schedules import trades_job
from platform_pkg.wallets.schedules import wallets_job

CURSOR_VERSION = 1
DEFAULT_INTERVAL_SECONDS = 30


def signature(account: ExchangeAccount | WalletAccount) -> str:
    """What, when it changes, makes an account worth syncing again."""
    if isinstance(account, WalletAccount):
        fields = [account.address, account.chains, account.source]
    else:
        fields = [account.exchange, account.markets, account.api_url, account.paging]
    fields.append(account.history_from.isoformat() if account.history_from else None)
    return hashlib.sha256(json.dumps(fields, default=list).encode()).hexdigest()[:16]


def _held_crypto(instance: dg.DagsterInstance) -> list[str]:
    """The crypto symbols the holdings list (an account without ``markets`` syncs those)."""
    records = instance.fetch_materializations(holdings.key, limit=1).records
    if not records or records[0].asset_materialization is None:
        return []
    summary = records[0].asset_materialization.metadata.get(SUMMARY_METADATA)
    symbols = dict(summary.value) if summary is not None else {}
    return sorted(s for s in symbols if asset_class_of(s) == "crypto")


@dg.sensor(
    name="accounts_sensor",
    description="Watches the accounts file (data/accounts.toml). Reports every error in it with "
    "the file, account, field and line. A new or changed exchange account gets its markets as "
    "symbol partitions and its trade history synced from history_from (default: the first date "
    "partition) to today, as one ranged run per block of symbols; a new or changed wallet gets "
    "its wallet partition and its history as one ranged run.",
    jobs=[trades_job, wallets_job],
    minimum_interval_seconds=seconds_from_env(
        "PLATFORM_ACCOUNTS_SENSOR_SECONDS", DEFAULT_INTERVAL_SECONDS
    ),
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def accounts_sensor(context: dg.SensorEvaluationContext, accounts: Accounts, market: MarketData):
    state = json.loads(context.cursor) if context.cursor else {"v": CURSOR_VERSION}
    file = accounts.load()
    if file is None:
        return dg.SkipReason(
            f"no accounts file at {accounts.resolved_path()} (copy data/demo/accounts.toml there "
            "to sync the demo exchange)"
        )
    if file.digest == state.get("digest"):
        return dg.SkipReason("the accounts file has not changed")
    for error in file.errors:
        context.log.error(str(error))
    acted: dict[str, str] = state.get("accounts", {})
    today = market.clock()().date()
    known = context.instance.get_dynamic_partitions(symbols_partitions.name)
    new_partitions: list[str] = []
    requests: list[dg.RunRequest] = []
    for account in file.exchanges:
        sig = signature(account)
        if acted.get(account.name) == sig:
            continue
        symbols = (
            list(account.markets) if account.markets is not None else _held_crypto(context.instance)
        )
        fresh = [s for s in symbols if s not in known and s not in new_partitions]
        new_partitions += fresh
        first = account.history_from or date.fromisoformat(
            daily_partitions.get_first_partition_key()
        )
        context.log.info(
            f"{account.name}: syncing {', '.join(symbols) or 'no market yet'} from {first}"
            + (f" (new partitions: {', '.join(fresh)})" if fresh else "")
        )
        for block in contiguous_blocks([*known, *new_partitions], symbols):
            requests.append(
                dg.RunRequest(
                    run_key=f"accounts:{account.name}:{sig}:{block.first}..{block.last}:{today}",
                    job_name=trades_job.name,
                    tags={
                        **block_range_tags(block.first, block.last, first, today),
                        TRIGGER_TAG: "accounts_sensor",
                        REASON_TAG: f"exchange account {account.name} new or changed",
                    },
                )
            )
        acted[account.name] = sig
    wallet_partitions = context.instance.get_dynamic_partitions(wallets_partitions.name)
    new_wallets: list[str] = []
    for wallet in file.wallets:
        sig = signature(wallet)
        if acted.get(wallet.name) == sig:
            continue
        if wallet.name not in wallet_partitions:
            new_wallets.append(wallet.name)
        first = wallet.history_from or date.fromisoformat(
            daily_partitions.get_first_partition_key()
        )
        window = SymbolWindow(wallet.name, day_start(first), day_start(today + timedelta(days=1)))
        context.log.info(f"wallet {wallet.name}: syncing its history from {first}")
        requests.append(
            dg.RunRequest(
                run_key=f"accounts:{wallet.name}:{sig}:{today}",
                job_name=wallets_job.name,
                tags={
                    **partition_range_tags(window),
                    TRIGGER_TAG: "accounts_sensor",
                    REASON_TAG: f"wallet {wallet.name} new or changed",
                },
            )
        )
        acted[wallet.name] = sig
    valid = set(file.names)
    state = {
        "v": CURSOR_VERSION,
        "digest": file.digest,
        "accounts": {name: sig for name, sig in acted.items() if name in valid},
    }
    partition_requests = []
    if new_partitions:
        partition_requests.append(symbols_partitions.build_add_request(new_partitions))
    if new_wallets:
        partition_requests.append(wallets_partitions.build_add_request(new_wallets))
    return dg.SensorResult(
        run_requests=requests,
        dynamic_partitions_requests=partition_requests,
        cursor=json.dumps(state, sort_keys=True),
        skip_reason=None
        if requests
        else f"accounts file read: {len(file.exchanges)} exchange account(s), "
        f"{len(file.wallets)} wallet(s), {len(file.errors)} error(s); nothing new to sync",
    )
