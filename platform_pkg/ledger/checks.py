"""Asset checks of the ledger and the holdings (the UI's Checks tab): the ledger's key, holdings
replayed never below zero, holdings equal to the replay of the live legs.

Every job or sensor run that materialises an asset runs its checks after it; the Checks tab runs
them on demand over the whole table. A check only reads: whatever it finds, it changes nothing.
"""

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import dagster as dg
import duckdb

from platform_pkg.checks import check_result
from platform_pkg.findings import Finding
from platform_pkg.ledger import integrity
from platform_pkg.ledger.assets import holdings, transactions
from platform_pkg.ledger.legs import LEDGER, LEDGER_KEY
from platform_pkg.warehouse.resources import Warehouse

ERROR, WARN = dg.AssetCheckSeverity.ERROR, dg.AssetCheckSeverity.WARN


@dataclass(frozen=True)
class Check:
    """One asset check: its name, how bad a failure is, and the finding it reports."""

    name: str
    severity: dg.AssetCheckSeverity
    description: str
    find: Callable[[duckdb.DuckDBPyConnection], Finding]


def checks_for(
    asset: dg.AssetsDefinition, checks: Sequence[Check], deps: Sequence[dg.AssetsDefinition] = ()
) -> dg.AssetChecksDefinition:
    """The checks of one table as one op: one warehouse connection per evaluation, and only the
    checks a run selects (the Checks tab can run one)."""
    key = asset.key

    @dg.multi_asset_check(
        name=f"{key.path[-1]}_checks",
        specs=[
            dg.AssetCheckSpec(c.name, asset=key, description=c.description, additional_deps=deps)
            for c in checks
        ],
        can_subset=True,
    )
    def _checks(
        context: dg.AssetCheckExecutionContext, warehouse: Warehouse
    ) -> Iterator[dg.AssetCheckResult]:
        selected = [
            c for c in checks if dg.AssetCheckKey(key, c.name) in context.selected_asset_check_keys
        ]
        with warehouse.connection() as con:
            findings = [(c, c.find(con)) for c in selected]
        for check, finding in findings:
            yield check_result(check.name, finding, check.severity, key)

    return _checks


# A broken key is a broken table: ERROR. A holding replayed below zero is most often the inputs'
# doing, not the ledger's (a coin bought before the exchange history starts, a fee paid in BNB
# bought elsewhere, a transfer in from a wallet not synced): WARN, asking for the missing input.
# Holdings that disagree with the live legs are the platform's own fault (a deleted leg still
# counted): ERROR. None blocks: a failure concerns a few pairs, and a blocking check would stop
# every account's holdings, tracking and prices behind it.
UNIQUE_KEY = Check(
    "unique_key",
    ERROR,
    f"No two legs share a key ({', '.join(LEDGER_KEY)}) and no key has a null part.",
    lambda con: integrity.unique_key(con, LEDGER, LEDGER_KEY),
)
NO_NEGATIVE_HOLDING = Check(
    "no_negative_holding",
    WARN,
    "Replaying each (account, symbol)'s live legs in time order, the balance never goes below "
    f"zero (beyond {integrity.EPSILON:g} x the quantity moved). A failure usually means a "
    "missing input: a purchase before the exchange history starts, a transfer in from a wallet "
    "not synced, a fee paid in a coin bought elsewhere.",
    integrity.negative_balances,
)
MATCHES_LEDGER = Check(
    "matches_ledger",
    ERROR,
    "Every holding's quantity and leg count equal the replay of its pair's live legs "
    "(soft-deleted legs excluded), and every pair with live legs has a holding.",
    integrity.holdings_mismatches,
)

transactions_checks = checks_for(transactions, [UNIQUE_KEY, NO_NEGATIVE_HOLDING])
holdings_checks = checks_for(holdings, [MATCHES_LEDGER], deps=[transactions])
