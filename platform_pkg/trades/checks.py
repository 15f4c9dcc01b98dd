"""Asset checks of ``exchange_trades`` (the UI's Checks tab): its key, and soft-delete flags set.

They run after every sync of the table (the schedules' and the accounts sensor's runs of
``exchange_trades_job``) over the whole table, whatever partitions the run synced, and on demand.
"""

from platform_pkg.ledger import integrity
from platform_pkg.ledger.checks import ERROR, Check, checks_for
from platform_pkg.trades.assets import exchange_trades
from platform_pkg.trades.ingest import TABLE
from platform_pkg.trades.rows import TRADE_KEY

# Both are the write path's invariants (it merges on the key and always writes the flag), so a
# failure means rows written around it: ERROR.
UNIQUE_KEY = Check(
    "unique_key",
    ERROR,
    f"No two trades share a key ({', '.join(TRADE_KEY)}) and no key has a null part.",
    lambda con: integrity.unique_key(con, TABLE, TRADE_KEY),
)
IS_DELETED_SET = Check(
    "is_deleted_not_null",
    ERROR,
    "Every trade's soft-delete flag (is_deleted) is true or false, never null.",
    lambda con: integrity.flag_set(con, TABLE, TRADE_KEY),
)

exchange_trades_checks = checks_for(exchange_trades, [UNIQUE_KEY, IS_DELETED_SET])
