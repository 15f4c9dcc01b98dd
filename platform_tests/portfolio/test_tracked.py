"""The tracked_assets table: idempotent writes, reference counts, tracked-since times, price updates."""

from datetime import UTC, date, datetime
from decimal import Decimal

import duckdb
import pytest

from platform_pkg.portfolio import tracked
from platform_pkg.portfolio.positions import SymbolHolding
from platform_pkg.warehouse import watermarks

T1 = datetime(2026, 11, 1, 12, tzinfo=UTC)
T2 = datetime(2026, 11, 2, 12, tzinfo=UTC)
T3 = datetime(2026, 11, 3, 12, tzinfo=UTC)


@pytest.fixture
def con(tmp_path):
    connection = duckdb.connect(str(tmp_path / "w.duckdb"))
    connection.execute("SET TimeZone = 'UTC'")
    yield connection
    connection.close()


def held(symbol, accounts):
    return {symbol: SymbolHolding(symbol, "crypto", date(2026, 1, 1), Decimal(1), tuple(accounts))}


def row(con, symbol):
    return con.execute(
        "SELECT is_active, tracking_users, first_tracked_at, last_tracked_at, history_start "
        "FROM tracked_assets WHERE asset_id = ?",
        [symbol],
    ).fetchone()


def write(con, holdings, now, gone=()):
    starts = {s: date(2025, 1, 1) for s in holdings}
    tracked.write(con, tracked.tracked_frame(holdings, gone, starts, now))


def test_first_write_then_rewrites_keep_first_tracked_at(con):
    write(con, held("BTC-USDT", ["a"]), T1)
    write(con, held("BTC-USDT", ["a", "b"]), T2)
    write(con, held("BTC-USDT", ["a", "b"]), T2)  # a re-evaluated tick writes the same row
    assert row(con, "BTC-USDT") == (True, 2, T1, T2, date(2025, 1, 1))
    assert con.execute("SELECT count(*) FROM tracked_assets").fetchone()[0] == 1


def test_last_tracked_at_stops_when_inactive(con):
    write(con, held("BTC-USDT", ["a"]), T1)
    write(con, held("BTC-USDT", []), T2)  # the moment it went inactive
    write(con, held("BTC-USDT", []), T3)
    assert row(con, "BTC-USDT") == (False, 0, T1, T2, date(2025, 1, 1))
    write(con, held("BTC-USDT", ["a"]), T3)
    assert row(con, "BTC-USDT")[:2] == (True, 1)


def test_a_symbol_gone_from_the_file_keeps_its_details(con):
    write(con, held("BTC-USDT", ["a"]), T1)
    write(con, {}, T2, gone=["BTC-USDT"])
    assert row(con, "BTC-USDT") == (False, 0, T1, T2, date(2025, 1, 1))
    assert con.execute("SELECT asset_class FROM tracked_assets").fetchone()[0] == "crypto"


def test_last_price_update_follows_the_price_watermarks(con):
    write(con, held("BTC-USDT", ["a"]) | held("AAPL", ["a"]), T1)
    watermarks.write(con, "BTC-USDT", "prices_1h", now=T2, last_timestamp=T1)
    watermarks.write(con, "BTC-USDT", "prices_1d", now=T3, last_timestamp=T1)
    assert tracked.refresh_price_updates(con) == 1
    assert tracked.refresh_price_updates(con) == 0
    updates = dict(con.execute("SELECT asset_id, last_price_update FROM tracked_assets").fetchall())
    assert updates == {"BTC-USDT": T3, "AAPL": None}


def test_active_symbols(con):
    assert tracked.active_symbols(con) == {}
    write(con, held("BTC-USDT", ["a"]) | held("SOL-USDT", []), T1)
    assert tracked.active_symbols(con) == {"BTC-USDT": "crypto"}
