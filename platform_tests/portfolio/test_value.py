"""Portfolio values: closes as of each day, conversion to the base currency, missing prices
listed (never valued at zero), and rebuilds from the earliest day that changed."""

from datetime import UTC, date, datetime, timedelta

import duckdb
import pandas as pd
import pytest

from platform_pkg.market.candles import PRICE_TABLE_COLUMNS
from platform_pkg.portfolio.value import KEY, TABLE, value_changes
from platform_pkg.prices.assets import prices_1d
from platform_pkg.warehouse.io_manager import table_spec
from platform_pkg.warehouse.unit import Unit, commit
from platform_pkg.warehouse.upsert import TableSpec
from platform_tests.portfolio.test_balances import NOW, build, leg, write

PRICES = table_spec(dict(prices_1d.metadata_by_key[prices_1d.key]), "prices_1d")
VALUES = TableSpec(TABLE, tuple(KEY), audit_columns=("computed_at",))
FETCHED = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
D = date(2026, 11, 20)  # a Friday


@pytest.fixture
def con():
    connection = duckdb.connect()
    connection.execute("SET TimeZone = 'UTC'")
    yield connection
    connection.close()


def closes(con, symbol, by_day: dict[int, float], fetched_at=FETCHED):
    rows = [
        {"symbol": symbol, "ts": datetime(2026, 11, day, tzinfo=UTC), "open": c, "high": c,
         "low": c, "close": c, "volume": 0.0, "source": "test", "is_final": True,
         "fetched_at": fetched_at}
        for day, c in by_day.items()
    ]  # fmt: skip
    commit(con, PRICES, Unit.of(pd.DataFrame(rows, columns=list(PRICE_TABLE_COLUMNS))), run_id="r",
           now=NOW)  # fmt: skip


def value(con, base="USD", now=NOW):
    """Build the values and commit them as the asset does."""
    built = value_changes(con, base, now)
    commit(con, VALUES, built.unit(), run_id="r", now=now)
    return built


def values(con, account="*"):
    return con.execute(
        "SELECT date, round(value, 6), positions, missing_prices FROM portfolio_value "
        "WHERE account = ? ORDER BY date",
        [account],
    ).fetchall()


def days(first, last):
    return [date(2026, 11, d) for d in range(first, last + 1)]


def test_positions_are_valued_at_the_last_close_on_or_before_each_day(con):
    write(
        con,
        leg("a", "broker", "AAPL", "buy", 10.0, 20, asset_class="stock"),
        leg("b", "exchange", "BTC-USDT", "buy", 0.5, 21),
        leg("e", "broker", "EURUSD=X", "buy", 1000.0, 23, asset_class="fx"),
    )
    build(con)
    closes(con, "AAPL", {20: 200.0, 23: 210.0})  # no session on the weekend (21st, 22nd)
    closes(con, "BTC-USDT", {21: 80_000.0, 22: 81_000.0, 23: 82_000.0, 24: 83_000.0})
    closes(con, "EURUSD=X", {20: 1.1, 23: 1.2})
    built = value(con)
    assert built.since == D and built.why == ["first build"]
    assert values(con) == [
        (date(2026, 11, 20), 2000.0, 1, 0),
        (date(2026, 11, 21), 2000.0 + 40_000.0, 2, 0),
        (date(2026, 11, 22), 2000.0 + 40_500.0, 2, 0),  # Friday's AAPL close
        (date(2026, 11, 23), 2100.0 + 41_000.0 + 1200.0, 3, 0),
        (date(2026, 11, 24), 2100.0 + 41_500.0 + 1200.0, 3, 0),  # no close yet: Monday's
    ]
    assert values(con, "broker")[-1] == (date(2026, 11, 24), 3300.0, 2, 0)
    assert built.notes == ["USDT valued at 1 USD (peg)"]


def test_a_position_without_a_close_is_listed_not_valued_at_zero(con):
    write(
        con,
        leg("a", "broker", "AAPL", "buy", 10.0, 22, asset_class="stock"),
        leg("s", "exchange", "SOL-USDT", "buy", 4.0, 23),
    )
    build(con)
    closes(con, "AAPL", {20: 200.0})
    value(con)
    assert values(con) == [
        (date(2026, 11, 22), 2000.0, 1, 0),
        (date(2026, 11, 23), 2000.0, 1, 1),
        (date(2026, 11, 24), 2000.0, 1, 1),
    ]
    assert values(con, "exchange") == [(d, None, 0, 1) for d in days(23, 24)]
    listed = con.execute(
        "SELECT date, account, symbol, quantity, reason FROM portfolio_value_missing ORDER BY ALL"
    ).fetchall()
    reason = "no close of SOL-USDT on or before this day"
    assert listed == [(d, "exchange", "SOL-USDT", 4.0, reason) for d in days(23, 24)]
    # Its history arrives: the values are rebuilt from its first close, the list is emptied.
    closes(con, "SOL-USDT", {23: 150.0}, fetched_at=NOW)
    built = value(con, now=NOW + timedelta(hours=1))
    assert built.why == ["closes changed from 2026-11-23"]
    assert values(con)[1:] == [(d, 2600.0, 2, 0) for d in days(23, 24)]
    assert con.execute("SELECT count(*) FROM portfolio_value_missing").fetchall() == [(0,)]


def test_values_in_euros_go_through_eurusd_and_its_inverse(con):
    write(
        con,
        leg("a", "broker", "AAPL", "buy", 10.0, 23, asset_class="stock"),  # quoted in USD
        leg("b", "exchange", "BTC-USDT", "buy", 1.0, 23),  # USDT: USD at par, then EUR
        leg("c", "exchange", "BTC-EUR", "buy", 1.0, 23),  # already in euros
    )
    build(con)
    closes(con, "AAPL", {23: 250.0, 24: 260.0})
    closes(con, "BTC-USDT", {23: 90_000.0, 24: 91_000.0})
    closes(con, "BTC-EUR", {23: 80_000.0, 24: 81_000.0})
    closes(con, "EURUSD=X", {23: 1.25})
    value(con, base="EUR")
    assert values(con) == [
        (date(2026, 11, 23), 2000.0 + 72_000.0 + 80_000.0, 3, 0),
        (date(2026, 11, 24), 2080.0 + 72_800.0 + 81_000.0, 3, 0),
    ]


def test_a_quote_in_another_currency_goes_through_the_pair_directly(con):
    write(con, leg("c", "exchange", "BTC-EUR", "buy", 2.0, 23))
    build(con)
    closes(con, "BTC-EUR", {23: 80_000.0})
    value(con)
    assert values(con) == [(d, None, 0, 1) for d in days(23, 24)], "no EURUSD=X rate yet"
    reasons = con.execute("SELECT DISTINCT reason FROM portfolio_value_missing").fetchall()
    assert reasons == [("no EURUSD=X rate on or before this day",)]
    closes(con, "EURUSD=X", {23: 1.1}, fetched_at=NOW)
    value(con, now=NOW + timedelta(hours=1))
    assert values(con) == [(d, 176_000.0, 1, 0) for d in days(23, 24)]


def test_only_days_from_the_earliest_change_are_rebuilt(con):
    write(
        con,
        leg("a", "broker", "AAPL", "buy", 10.0, 10, asset_class="stock"),
        leg("b", "exchange", "BTC-USDT", "buy", 1.0, 10),
    )
    build(con)
    closes(con, "AAPL", dict.fromkeys(range(10, 25), 200.0))
    closes(con, "BTC-USDT", dict.fromkeys(range(10, 25), 90_000.0))
    value(con)
    stamps = dict(
        con.execute("SELECT date, computed_at FROM portfolio_value WHERE account = '*'").fetchall()
    )
    later = NOW + timedelta(hours=1)
    nothing = value(con, now=later)
    assert nothing.since is None and nothing.rows is None, "nothing changed: nothing rebuilt"
    closes(con, "AAPL", {20: 201.0}, fetched_at=later)  # a corrected close
    built = value(con, now=later + timedelta(hours=1))
    assert built.since == D and built.rows.num_rows == 5 * 3, "the 20th to the 24th, 3 rows a day"
    write(con, leg("c", "exchange", "BTC-USDT", "buy", 1.0, 15))  # a back-dated buy
    build(con)
    built = value(con, now=later + timedelta(hours=2))
    assert built.why == ["balances changed from 2026-11-15"]
    after = dict(
        con.execute("SELECT date, computed_at FROM portfolio_value WHERE account = '*'").fetchall()
    )
    assert [d for d in after if after[d] == stamps[d]] == days(10, 14), "earlier rows untouched"
    assert values(con)[10:12] == [
        (date(2026, 11, 20), 2010.0 + 180_000.0, 2, 0),  # the corrected close
        (date(2026, 11, 21), 2000.0 + 180_000.0, 2, 0),
    ]


def test_a_new_base_currency_rebuilds_every_day(con):
    write(con, leg("a", "broker", "AAPL", "buy", 1.0, 22, asset_class="stock"))
    build(con)
    closes(con, "AAPL", {22: 220.0})
    closes(con, "EURUSD=X", {22: 1.1})
    value(con)
    built = value(con, base="EUR", now=NOW + timedelta(hours=1))
    assert built.why == ["base currency now EUR"] and built.since == date(2026, 11, 22)
    assert values(con) == [(d, 200.0, 1, 0) for d in days(22, 24)]
    bases = con.execute("SELECT DISTINCT base_currency FROM portfolio_value").fetchall()
    assert bases == [("EUR",)]


def test_an_account_whose_legs_are_deleted_loses_its_values(con):
    write(
        con,
        leg("a", "broker", "AAPL", "buy", 1.0, 22, asset_class="stock"),
        leg("b", "other", "AAPL", "buy", 1.0, 23, asset_class="stock"),
    )
    build(con)
    closes(con, "AAPL", {22: 220.0})
    value(con)
    write(con, leg("b", "other", "AAPL", "buy", 1.0, 23, asset_class="stock", deleted=True))
    build(con)
    value(con, now=NOW + timedelta(hours=1))
    accounts = con.execute("SELECT DISTINCT account FROM portfolio_value ORDER BY ALL").fetchall()
    assert accounts == [("*",), ("broker",)]
    assert values(con) == [(d, 220.0, 1, 0) for d in days(22, 24)]


def test_a_history_older_than_the_holding_rebuilds_only_from_its_first_day(con):
    write(
        con,
        leg("a", "broker", "AAPL", "buy", 1.0, 10, asset_class="stock"),
        leg("b", "exchange", "BTC-USDT", "buy", 1.0, 20),
    )
    build(con)
    closes(con, "AAPL", {10: 200.0})
    value(con)
    # The new holding's year of history arrives: days before it was held cannot change.
    closes(con, "BTC-USDT", dict.fromkeys(range(1, 25), 90_000.0), fetched_at=NOW)
    built = value(con, now=NOW + timedelta(hours=1))
    assert built.why == ["closes changed from 2026-11-20"]
    assert values(con)[-1] == (date(2026, 11, 24), 90_200.0, 2, 0)
