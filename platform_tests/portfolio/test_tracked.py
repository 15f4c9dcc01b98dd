"""The tracked_assets rows: reference counts, tracked-since times, inactive symbols, price updates."""

from datetime import UTC, date, datetime

import duckdb
import pytest

from platform_pkg.catalog import lookup
from platform_pkg.catalog import model as catalog_model
from platform_pkg.portfolio import tracked
from platform_pkg.warehouse.upsert import upsert

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
    return {symbol: {"first": "2026-01-01", "class": "crypto", "accounts": list(accounts)}}


def row(con, symbol):
    return con.execute(
        "SELECT is_active, tracking_users, first_tracked_at, last_tracked_at, history_start "
        "FROM tracked_assets WHERE asset_id = ?",
        [symbol],
    ).fetchone()


def write(con, summary, now):
    stored = con.execute("SELECT * FROM tracked_assets").df() if _exists(con) else None
    starts = {s: date(2025, 1, 1) for s in summary}
    return upsert(con, tracked.SPEC, tracked.tracked_rows(summary, stored, starts, now))


def _exists(con):
    return bool(
        con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'tracked_assets'"
        ).fetchall()[0][0]
    )


def test_first_write_then_rewrites_keep_first_tracked_at(con):
    write(con, held("BTC-USDT", ["a"]), T1)
    write(con, held("BTC-USDT", ["a", "b"]), T2)
    again = write(con, held("BTC-USDT", ["a", "b"]), T2)
    assert (again.inserted, again.updated) == (0, 0), "the same holdings write nothing new"
    assert row(con, "BTC-USDT") == (True, 2, T1, T2, date(2025, 1, 1))
    assert con.execute("SELECT count(*) FROM tracked_assets").fetchone()[0] == 1


def test_last_tracked_at_stops_when_inactive(con):
    write(con, held("BTC-USDT", ["a"]), T1)
    write(con, held("BTC-USDT", []), T2)  # the moment it went inactive
    write(con, held("BTC-USDT", []), T3)
    assert row(con, "BTC-USDT") == (False, 0, T1, T2, date(2025, 1, 1))
    write(con, held("BTC-USDT", ["a"]), T3)
    assert row(con, "BTC-USDT")[:2] == (True, 1)


def test_a_symbol_gone_from_the_holdings_keeps_its_details(con):
    write(con, held("BTC-USDT", ["a"]), T1)
    write(con, {}, T2)
    assert row(con, "BTC-USDT") == (False, 0, T1, T2, date(2025, 1, 1))
    assert con.execute("SELECT asset_class FROM tracked_assets").fetchone()[0] == "crypto"


def test_the_asset_never_writes_last_price_update(con):
    write(con, held("BTC-USDT", ["a"]), T1)
    con.execute("UPDATE tracked_assets SET last_price_update = ?", [T2])
    write(con, held("BTC-USDT", ["a", "b"]), T3)
    assert con.execute("SELECT last_price_update FROM tracked_assets").fetchone()[0] == T2


def test_active_symbols(con):
    assert tracked.active_symbols(con) == {}
    write(con, held("BTC-USDT", ["a"]) | held("SOL-USDT", []), T1)
    assert tracked.active_symbols(con) == {"BTC-USDT": "crypto"}


def test_a_symbol_the_catalogue_delists_is_no_longer_refreshed(con):
    write(con, held("BTC-USDT", ["a"]) | held("LUNA-USDT", ["a"]), T1)
    delist(con, "LUNA-USDT", T2)
    assert tracked.active_symbols(con) == {"BTC-USDT": "crypto"}
    assert lookup.delisted(con, ["BTC-USDT", "LUNA-USDT"]) == {
        "LUNA-USDT": "delisted on 2026-11-02 (ccxt:binance no longer lists it)"
    }


def delist(con, symbol, when):
    """An asset_catalog with ``symbol`` delisted at ``when`` and BTC-USDT still listed."""
    columns = ", ".join(f"{name} {typ}" for name, typ in catalog_model.COLUMNS.items())
    con.execute(f"CREATE TABLE IF NOT EXISTS asset_catalog ({columns})")
    con.execute(
        "INSERT INTO asset_catalog (asset_id, source, is_active, first_seen, delisted_at) VALUES "
        "(?, 'ccxt:binance', false, ?, ?), ('BTC-USDT', 'ccxt:binance', true, ?, NULL)",
        [symbol, T1, when, T1],
    )
