"""The ledger and holdings builds: legs per origin, fees, deletions, and only what changed."""

from datetime import UTC, datetime

import duckdb
import pandas as pd
import pytest

from platform_pkg.ledger.assets import holdings, transactions
from platform_pkg.ledger.build import holdings_changes, ledger_changes
from platform_pkg.trades.assets import exchange_trades
from platform_pkg.trades.rows import TRADE_COLUMNS
from platform_pkg.warehouse.io_manager import table_spec
from platform_pkg.warehouse.unit import Unit, commit
from platform_pkg.warehouse.watermarks import WatermarkConflict

NOW = datetime(2026, 11, 24, 10, 30, tzinfo=UTC)
TRADES = table_spec(dict(exchange_trades.metadata_by_key[exchange_trades.key]), "exchange_trades")
LEDGER = table_spec(dict(transactions.metadata_by_key[transactions.key]), "transactions")
HOLDINGS = table_spec(dict(holdings.metadata_by_key[holdings.key]), "holdings")


@pytest.fixture
def con():
    connection = duckdb.connect()
    connection.execute("SET TimeZone = 'UTC'")
    yield connection
    connection.close()


def trade(trade_id, side="buy", amount=1.0, fee=0.001, fee_currency="BTC", symbol="BTC-USDT",
          deleted=False, day=1):  # fmt: skip
    return {
        "account": "binance-main", "exchange": "ccxt:binance", "symbol": symbol,
        "trade_id": str(trade_id), "order_id": "o", "ts": datetime(2026, 11, day, tzinfo=UTC),
        "side": side, "price": 100.0, "amount": amount, "cost": 100.0 * amount, "fee": fee,
        "fee_currency": fee_currency, "taker_or_maker": "taker", "raw": "{}",
        "fetched_at": NOW, "is_deleted": deleted, "deleted_at": None,
    }  # fmt: skip


def write_trades(con, *trades):
    frame = pd.DataFrame(list(trades), columns=list(TRADE_COLUMNS))
    frame["deleted_at"] = pd.to_datetime(frame["deleted_at"], utc=True)
    commit(con, TRADES, Unit.of(frame), run_id="r", now=NOW)


def build(con):
    """Build the ledger, then the holdings, each committed like the IO manager does."""
    ledger = ledger_changes(con, NOW)
    if ledger.moves:
        commit(
            con, LEDGER, Unit.of(ledger.rows, watermarks=tuple(ledger.moves)), run_id="r", now=NOW
        )
    held = holdings_changes(con, NOW)
    if held.moves:
        commit(con, HOLDINGS, Unit.of(held.rows, watermarks=tuple(held.moves)), run_id="r", now=NOW)
    return ledger, held


def legs(con):
    return con.execute(
        "SELECT txid, leg, symbol, side, quantity, is_deleted FROM transactions ORDER BY txid, leg"
    ).fetchall()


def positions(con):
    return con.execute(
        "SELECT account, symbol, round(quantity, 9), is_open FROM holdings ORDER BY ALL"
    ).fetchall()


def test_a_fee_in_a_third_currency_is_its_own_leg_and_one_in_the_base_is_taken_from_it(con):
    write_trades(
        con,
        trade(1, amount=2.0, fee=0.002, fee_currency="BTC"),  # Binance takes a buy's fee in BTC
        trade(2, side="sell", amount=0.5, fee=0.1, fee_currency="BNB", day=2),
    )
    build(con)
    assert legs(con) == [
        ("1", 0, "BTC-USDT", "buy", 2.0, False),
        ("2", 0, "BTC-USDT", "sell", 0.5, False),
        ("2", 1, "BNB-USDT", "fee", 0.1, False),
    ]
    assert positions(con) == [
        ("binance-main", "BNB-USDT", -0.1, False),
        ("binance-main", "BTC-USDT", 1.498, True),
    ]


def test_only_what_changed_is_read_again(con):
    write_trades(con, trade(1), trade(2, day=2))
    first, _ = build(con)
    assert first.changed == {"exchange_trades": 2}
    nothing, held = build(con)
    assert nothing.moves == [] and held.moves == [], "no change, nothing read, no mark moved"
    write_trades(
        con, trade(1), trade(2, day=2), trade(3, day=3, symbol="ETH-USDT", fee_currency="ETH")
    )
    again, held = build(con)
    assert again.changed == {"exchange_trades": 1}, "the unchanged trades are not read again"
    assert held.changed == {"transactions": 1}, "only ETH-USDT's position is recomputed"


def test_a_deleted_trade_deletes_its_legs_and_leaves_the_holding(con):
    write_trades(con, trade(1, amount=2.0, fee=0.0), trade(2, amount=1.0, fee=0.0, day=2))
    build(con)
    write_trades(con, trade(2, amount=1.0, fee=0.0, day=2, deleted=True))
    build(con)
    assert [(t, d) for t, _, _, _, _, d in legs(con)] == [("1", False), ("2", True)]
    assert positions(con) == [("binance-main", "BTC-USDT", 2.0, True)]
    history = con.execute("SELECT txid, change FROM transactions_history").fetchall()
    assert history == [("2", "update")], "the ledger keeps the leg's previous version"


def test_a_leg_a_changed_trade_no_longer_implies_is_deleted(con):
    write_trades(con, trade(1, fee=0.1, fee_currency="BNB"))
    build(con)
    write_trades(con, trade(1, fee=0.001, fee_currency="BTC"))  # the fee moved to the base
    build(con)
    assert legs(con) == [
        ("1", 0, "BTC-USDT", "buy", 1.0, False),
        ("1", 1, "BNB-USDT", "fee", 0.1, True),
    ]


def test_a_build_that_read_stale_inputs_commits_nothing(con):
    write_trades(con, trade(1))
    stale = ledger_changes(con, NOW)
    build(con)  # another build commits in between
    write_trades(con, trade(1, amount=5.0))
    with pytest.raises(WatermarkConflict, match="another build committed in between"):
        con.execute("BEGIN TRANSACTION")
        try:
            commit(
                con, LEDGER, Unit.of(stale.rows, watermarks=tuple(stale.moves)), run_id="r", now=NOW
            )
        finally:
            con.execute("ROLLBACK")
    build(con)
    assert legs(con) == [("1", 0, "BTC-USDT", "buy", 5.0, False)]
