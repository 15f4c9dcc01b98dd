"""The ``transactions`` ledger: one table for every kind of transaction, built incrementally.

Each input table stamps ``_change_seq`` on every row it writes; the ledger keeps, per input, the
highest change it has read (``ingestion_state``: ``transactions`` / ``changes:<input>``), and a
build turns only the rows changed since into legs — committed with the new change marks in one
transaction. A leg's key is ``(domain, source, account, txid, leg)``:

* a portfolio-file line is one ``manual`` leg (``is_deleted`` once it left the file);
* an exchange trade is an ``exchange`` leg 0 (the trade, fee included when it is paid in the
  base or quote currency) plus a leg 1 ``fee`` when the fee is paid in a third currency (BNB):
  that fee is its own holding's outflow;
* a wallet transaction is an ``onchain`` leg per send and receive, and one for the gas the wallet
  paid (:mod:`platform_pkg.ledger.onchain`).

A soft-deleted input's legs are deleted with it; a leg a changed input no longer implies is
soft-deleted too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import duckdb
import pyarrow as pa

from platform_pkg.ledger.onchain import onchain_legs

LEDGER = "transactions"
LEDGER_COLUMNS: dict[str, str] = {
    "domain": "VARCHAR",
    "source": "VARCHAR",
    "account": "VARCHAR",
    "txid": "VARCHAR",
    "leg": "INTEGER",
    "ts": "TIMESTAMPTZ",
    "symbol": "VARCHAR",
    "asset_class": "VARCHAR",
    "side": "VARCHAR",
    "quantity": "DOUBLE",
    "price": "DOUBLE",
    "currency": "VARCHAR",
    "fee": "DOUBLE",
    "fee_currency": "VARCHAR",
    "status": "VARCHAR",
    "is_deleted": "BOOLEAN",
    "updated_at": "TIMESTAMPTZ",
}
LEDGER_KEY = ["domain", "source", "account", "txid", "leg"]
SIDES = ("buy", "sell", "transfer_in", "transfer_out", "fee")
# How a live leg moves its (account, symbol) holding: inflows add, outflows and fee legs take
# away, and a fee paid in the base currency reduces the holding too. The holdings, the daily
# balances and the ledger checks all replay legs with these two.
LIVE = "NOT is_deleted AND status = 'ok'"
LEG_DELTA = """(
    coalesce(CASE WHEN side IN ('buy', 'transfer_in') THEN quantity
                  WHEN side IN ('sell', 'transfer_out', 'fee') THEN -quantity END, 0.0)
    - CASE WHEN fee_currency = regexp_replace(symbol, '-[^-]+$', '') AND symbol LIKE '%-%'
                AND side <> 'fee' THEN coalesce(fee, 0.0) ELSE 0.0 END
)"""


@dataclass(frozen=True)
class Input:
    """An input table of the ledger and how its changed rows become legs: ``legs``, a SELECT
    reading the rows with ``_change_seq`` above its parameter and yielding every ledger column but
    ``updated_at`` — or ``compute``, a function doing the same where SQL would not read well."""

    table: str
    domain: str
    legs: str = ""
    compute: Callable[[duckdb.DuckDBPyConnection, int, list[str]], pa.Table] | None = None

    def read(self, con: duckdb.DuckDBPyConnection, since: int) -> pa.Table:
        if self.compute is not None:
            return self.compute(con, since, [c for c in LEDGER_COLUMNS if c != "updated_at"])
        return con.sql(self.legs, params=[since]).to_arrow_table()


_COLS = ", ".join(c for c in LEDGER_COLUMNS if c != "updated_at")

MANUAL = Input(
    "portfolio_transactions",
    "manual",
    f"""
    SELECT {_COLS} FROM (
        SELECT 'manual' AS domain, 'portfolio_file' AS source, account, txn_id AS txid,
               0 AS leg, executed_at AS ts, symbol, asset_class, side, quantity, price,
               currency, fee, currency AS fee_currency, 'ok' AS status,
               NOT in_file AS is_deleted
        FROM portfolio_transactions WHERE _change_seq > ?
    )
    """,
)

# The quote of a pair BASE-QUOTE (the base may itself hold dashes, the quote not).
_QUOTE = "regexp_extract(symbol, '-([^-]+)$', 1)"
_BASE = "regexp_replace(symbol, '-[^-]+$', '')"

EXCHANGE = Input(
    "exchange_trades",
    "exchange",
    f"""
    WITH changed AS (SELECT * FROM exchange_trades WHERE _change_seq > ?)
    SELECT {_COLS} FROM (
        SELECT 'exchange' AS domain, exchange AS source, account, trade_id AS txid, 0 AS leg,
               ts, symbol, 'crypto' AS asset_class, side, amount AS quantity, price,
               {_QUOTE} AS currency, fee, fee_currency, 'ok' AS status,
               coalesce(is_deleted, false) AS is_deleted
        FROM changed
        UNION ALL
        SELECT 'exchange', exchange, account, trade_id, 1, ts,
               fee_currency || '-' || {_QUOTE}, 'crypto', 'fee', fee, NULL, fee_currency, 0.0,
               NULL, 'ok', coalesce(is_deleted, false)
        FROM changed
        WHERE fee > 0 AND fee_currency IS NOT NULL
          AND fee_currency NOT IN ({_BASE}, {_QUOTE})
    )
    """,
)

ONCHAIN = Input("onchain_transactions", "onchain", compute=onchain_legs)

INPUTS = (MANUAL, EXCHANGE, ONCHAIN)

# Legs stored for a changed transaction that its new version no longer implies (a fee that moved
# from BNB to the base currency): soft-deleted.
ORPHANS = f"""
SELECT {_COLS.replace("is_deleted", "true AS is_deleted")}
FROM {LEDGER} t
WHERE NOT t.is_deleted
  AND EXISTS (SELECT 1 FROM __legs n WHERE n.domain = t.domain AND n.source = t.source
              AND n.account = t.account AND n.txid = t.txid)
  AND NOT EXISTS (SELECT 1 FROM __legs n WHERE n.domain = t.domain AND n.source = t.source
                  AND n.account = t.account AND n.txid = t.txid AND n.leg = t.leg)
"""
