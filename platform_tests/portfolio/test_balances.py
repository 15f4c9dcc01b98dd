"""Daily balances replayed from the ledger: exact quantities, and rebuilds only from what changed."""

from datetime import UTC, date, datetime

import duckdb
import pandas as pd
import pytest

from platform_pkg.ledger.assets import holdings, transactions
from platform_pkg.ledger.build import holdings_changes
from platform_pkg.ledger.legs import LEDGER_COLUMNS
from platform_pkg.portfolio.balances import COLUMNS, KEY, TABLE, balance_changes
from platform_pkg.warehouse.io_manager import table_spec
from platform_pkg.warehouse.unit import Unit, commit
from platform_pkg.warehouse.upsert import TableSpec

NOW = datetime(2026, 11, 24, 10, 30, tzinfo=UTC)
TODAY = NOW.date()
LEDGER = table_spec(dict(transactions.metadata_by_key[transactions.key]), "transactions")
HOLDINGS = table_spec(dict(holdings.metadata_by_key[holdings.key]), "holdings")
BALANCES = TableSpec(TABLE, tuple(KEY), COLUMNS, audit_columns=("computed_at",), track_changes=True)


@pytest.fixture
def con():
    connection = duckdb.connect()
    connection.execute("SET TimeZone = 'UTC'")
    yield connection
    connection.close()


def leg(txid, account, symbol, side, quantity, day, *, hour=12, fee=0.0, fee_currency=None,
        deleted=False, status="ok", asset_class="crypto", leg=0):  # fmt: skip
    return {
        "domain": "manual", "source": "test", "account": account, "txid": txid, "leg": leg,
        "ts": datetime(2026, 11, day, hour, tzinfo=UTC) if isinstance(day, int) else day,
        "symbol": symbol, "asset_class": asset_class, "side": side, "quantity": quantity,
        "price": None, "currency": None, "fee": fee, "fee_currency": fee_currency,
        "status": status, "is_deleted": deleted, "updated_at": NOW,
    }  # fmt: skip


def write(con, *legs):
    frame = pd.DataFrame(list(legs), columns=list(LEDGER_COLUMNS))
    commit(con, LEDGER, Unit.of(frame), run_id="r", now=NOW)


def build(con, today=TODAY):
    rebuild = balance_changes(con, today, NOW)
    if not rebuild.empty or rebuild.moves:
        unit = Unit.of(rebuild.rows, watermarks=tuple(rebuild.moves))
        commit(con, BALANCES, unit, run_id="r", now=NOW)
    return rebuild


def balances(con, account, symbol):
    return con.execute(
        "SELECT date, round(quantity, 9) FROM daily_balances "
        "WHERE account = ? AND symbol = ? AND NOT is_deleted ORDER BY date",
        [account, symbol],
    ).fetchall()


def nov(*days):
    return [date(2026, 11, d) for d in days]


def held(days, quantities):
    return list(zip(days, quantities, strict=True))


LEDGER_LEGS = [
    leg("a1", "broker", "AAPL", "buy", 10.0, 1, asset_class="stock"),
    leg("a2", "broker", "AAPL", "sell", 4.0, 3, asset_class="stock"),
    leg("a3", "broker", "AAPL", "sell", 6.0, 5, asset_class="stock"),  # sold to zero
    leg("m1", "broker", "MSFT", "buy", 3.0, 10, asset_class="stock", deleted=True),
    leg("b1", "exchange", "BTC-USDT", "buy", 1.0, 20, fee=0.001, fee_currency="BTC"),
    leg("b2", "exchange", "BNB-USDT", "fee", 0.1, 21),  # a fee paid in a third currency
    leg("b3", "exchange", "BTC-USDT", "transfer_out", 0.5, 22),
    leg("b4", "cold", "BTC-USDT", "transfer_in", 0.5, 22),
    leg("b5", "cold", "BTC-USDT", "transfer_out", 0.2, 23, status="failed"),
]


def test_balances_are_exact_for_sales_to_zero_transfers_fees_and_deleted_legs(con):
    write(con, *LEDGER_LEGS)
    rebuild = build(con)
    # Sold to zero on the 5th: that day's zero closes the pair's rows.
    assert balances(con, "broker", "AAPL") == held(nov(1, 2, 3, 4, 5), [10, 10, 6, 6, 0])
    assert balances(con, "broker", "MSFT") == [], "a soft-deleted leg does not count"
    # Binance took the buy's fee in BTC; half went to cold storage, a day without legs included.
    assert balances(con, "exchange", "BTC-USDT") == held(
        nov(20, 21, 22, 23, 24), [0.999, 0.999, 0.499, 0.499, 0.499]
    )
    assert balances(con, "cold", "BTC-USDT") == held(nov(22, 23, 24), [0.5] * 3)
    assert balances(con, "exchange", "BNB-USDT") == held(nov(21, 22, 23, 24), [-0.1] * 4)
    assert (rebuild.pairs, rebuild.earliest, rebuild.recomputed) == (5, date(2026, 11, 1), 17)


def test_the_last_balance_is_the_holding(con):
    write(con, *LEDGER_LEGS)
    build(con)
    held = holdings_changes(con, NOW)
    commit(con, HOLDINGS, Unit.of(held.rows, watermarks=tuple(held.moves)), run_id="r", now=NOW)
    last = con.execute(
        "SELECT account, symbol, round(arg_max(quantity, date), 9) FROM daily_balances "
        "WHERE NOT is_deleted GROUP BY ALL ORDER BY ALL"
    ).fetchall()
    positions = con.execute(
        "SELECT account, symbol, round(quantity, 9) FROM holdings "
        "WHERE transactions > 0 ORDER BY ALL"
    ).fetchall()
    assert last == positions


def test_a_back_dated_leg_recomputes_its_pair_from_its_day_only(con):
    write(con, *LEDGER_LEGS)
    build(con)
    before = con.execute(
        "SELECT date, account, symbol, quantity, _change_seq FROM daily_balances ORDER BY ALL"
    ).fetchall()
    write(con, leg("b6", "exchange", "BTC-USDT", "buy", 0.25, 21, hour=23))
    rebuild = build(con)
    assert (rebuild.pairs, rebuild.earliest) == (1, date(2026, 11, 21))
    assert rebuild.recomputed == 4, "the 21st to today, one pair: the work done"
    assert balances(con, "exchange", "BTC-USDT") == held(
        nov(20, 21, 22, 23, 24), [0.999, 1.249, 0.749, 0.749, 0.749]
    )
    after = con.execute(
        "SELECT date, account, symbol, quantity, _change_seq FROM daily_balances ORDER BY ALL"
    ).fetchall()
    changed = [row[:3] for row in sorted(set(after) - set(before))]
    assert changed == [(d, "exchange", "BTC-USDT") for d in nov(21, 22, 23, 24)]
    assert len(after) == len(before), "rows before the 21st and other pairs are untouched"


def test_a_deleted_leg_leaves_no_row_behind(con):
    write(con, *LEDGER_LEGS, leg("s1", "broker", "SPY", "buy", 2.0, 23, asset_class="etf"))
    build(con)
    assert balances(con, "broker", "SPY") == held(nov(23, 24), [2, 2])
    write(con, leg("s1", "broker", "SPY", "buy", 2.0, 23, asset_class="etf", deleted=True))
    write(con, leg("a3", "broker", "AAPL", "sell", 6.0, 5, asset_class="stock", deleted=True))
    rebuild = build(con)
    assert balances(con, "broker", "SPY") == []
    assert balances(con, "broker", "AAPL")[-3:] == held(nov(22, 23, 24), [6, 6, 6])
    assert rebuild.removed == 2
    marked = con.execute(
        "SELECT date, is_deleted, deleted_at IS NOT NULL FROM daily_balances "
        "WHERE symbol = 'SPY' ORDER BY date"
    ).fetchall()
    assert marked == [(d, True, True) for d in nov(23, 24)]


def test_a_leg_moved_later_removes_the_days_before_it(con):
    write(con, *LEDGER_LEGS)
    build(con)
    write(con, leg("b4", "cold", "BTC-USDT", "transfer_in", 0.5, 24))
    rebuild = build(con)
    assert rebuild.earliest == date(2026, 11, 22), "the leg's old day is where it changed"
    assert balances(con, "cold", "BTC-USDT") == [(date(2026, 11, 24), 0.5)]
    assert rebuild.removed == 2


def test_open_positions_are_carried_to_today_without_ledger_changes(con):
    write(con, *LEDGER_LEGS)
    build(con)
    rebuild = build(con, today=date(2026, 11, 26))
    assert rebuild.moves == [] and rebuild.pairs == 0
    assert rebuild.extended == 6, "three open pairs, two days each; AAPL is closed"
    assert balances(con, "cold", "BTC-USDT")[-1] == (date(2026, 11, 26), 0.5)
    assert balances(con, "broker", "AAPL")[-1] == (date(2026, 11, 5), 0)
    assert build(con, today=date(2026, 11, 26)).empty, "nothing changed: nothing to write"


def test_an_incremental_build_equals_a_build_from_scratch(con):
    write(con, *LEDGER_LEGS)
    build(con)
    write(con, leg("b6", "exchange", "BTC-USDT", "buy", 0.25, 21, hour=23))
    write(con, leg("a2", "broker", "AAPL", "sell", 4.0, 3, asset_class="stock", deleted=True))
    write(con, leg("b4", "cold", "BTC-USDT", "transfer_in", 0.5, 23))
    build(con)
    fresh = duckdb.connect()
    fresh.execute("SET TimeZone = 'UTC'")
    live = con.execute(f"SELECT {', '.join(LEDGER_COLUMNS)} FROM transactions").df()
    write(fresh, *live.to_dict("records"))
    build(fresh)
    query = (
        "SELECT date, account, symbol, round(quantity, 9) FROM daily_balances "
        "WHERE NOT is_deleted ORDER BY ALL"
    )
    assert con.execute(query).fetchall() == fresh.execute(query).fetchall()
