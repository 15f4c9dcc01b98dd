"""The exchange_trades asset checks: a duplicate key and a null soft-delete flag fail them."""

import dagster as dg
import duckdb
import pytest

from platform_pkg.accounts.resources import Accounts
from platform_pkg.definitions import defs
from platform_pkg.ledger import integrity
from platform_pkg.market.demo import DemoMarket
from platform_pkg.prices.schedules import RefreshSettings
from platform_pkg.trades.assets import exchange_trades
from platform_pkg.trades.checks import exchange_trades_checks
from platform_pkg.trades.rows import TRADE_KEY
from platform_tests.conftest import NOW, range_tags, resources_for
from platform_tests.fakes.binance import FakeBinance, make_trades
from platform_tests.fakes.market import clear_market_env, real_market
from platform_tests.ledger.test_build import trade, write_trades
from platform_tests.trades.test_ingest import (
    KEY,
    KEY_ENV,
    SECRET,
    SECRET_ENV,
    T0,
    TODAY,
    exchange_account,
    write_accounts,
)


@pytest.fixture
def con():
    connection = duckdb.connect()
    connection.execute("SET TimeZone = 'UTC'")
    yield connection
    connection.close()


def findings(con):
    return (
        integrity.unique_key(con, "exchange_trades", TRADE_KEY),
        integrity.flag_set(con, "exchange_trades", TRADE_KEY),
    )


def test_trades_written_by_the_write_path_pass(con):
    write_trades(con, trade(1), trade(2, day=2))
    write_trades(con, trade(2, day=2, deleted=True), trade(3, symbol="ETH-USDT"))
    key, flag = findings(con)
    assert key.passed and flag.passed
    assert key.looked_at == {"rows_checked": 3, "keys_checked": 3}
    assert flag.looked_at == {"rows_checked": 3}


def test_no_table_yet_passes_with_nothing_to_check(con):
    assert all(f.passed and f.note.startswith("nothing to check yet") for f in findings(con))


def test_a_duplicate_key_fails(con):
    write_trades(con, trade(1), trade(2, day=2))
    con.execute("INSERT INTO exchange_trades SELECT * FROM exchange_trades WHERE trade_id = '2'")
    key, flag = findings(con)
    assert not key.passed and flag.passed
    assert key.failures == {"duplicate_keys": 1, "duplicate_rows": 1, "null_key_rows": 0}
    assert key.sample == [
        {"account": "binance-main", "symbol": "BTC-USDT", "trade_id": "2", "copies": 2}
    ]


def test_a_null_soft_delete_flag_fails(con):
    write_trades(con, trade(1), trade(2, day=2))
    con.execute("UPDATE exchange_trades SET is_deleted = NULL WHERE trade_id = '1'")
    key, flag = findings(con)
    assert key.passed and not flag.passed
    assert flag.failures == {"null_is_deleted_rows": 1}
    assert flag.sample == [{"account": "binance-main", "symbol": "BTC-USDT", "trade_id": "1"}]


def test_the_checks_run_with_every_trades_job_run_and_on_demand(tmp_path, instance):
    job = defs.resolve_job_def("exchange_trades_job")
    assert {k.name for k in job.asset_layer.asset_graph.asset_check_keys} == {
        "unique_key",
        "is_deleted_not_null",
    }
    path = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(path)) as file:
        write_trades(file, trade(1), trade(2, day=2))
        file.execute("INSERT INTO exchange_trades SELECT * FROM exchange_trades LIMIT 1")
    result = dg.materialize(
        [exchange_trades_checks],
        selection=dg.AssetSelection.checks(exchange_trades_checks),
        instance=instance,
        resources=resources_for(path),
    )
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert {n: (e.passed, e.severity) for n, e in evaluations.items()} == {
        "unique_key": (False, dg.AssetCheckSeverity.ERROR),
        "is_deleted_not_null": (True, dg.AssetCheckSeverity.ERROR),
    }
    meta = evaluations["unique_key"].metadata
    assert (meta["rows_checked"].value, meta["duplicate_keys"].value) == (3, 1)
    assert "| binance-main | BTC-USDT | 1 | 2 |" in meta["sample"].value


def test_a_ranged_sync_evaluates_the_checks_after_it(tmp_path, instance, monkeypatch):
    clear_market_env(monkeypatch)
    monkeypatch.setenv(KEY_ENV, KEY)
    monkeypatch.setenv(SECRET_ENV, SECRET)
    with FakeBinance(DemoMarket(clock=lambda: NOW), api_key=KEY, api_secret=SECRET) as binance:
        binance.trades["BTCUSDT"] = make_trades("BTCUSDT", 12, start_ms=T0)
        accounts = write_accounts(tmp_path, exchange_account(binance.url, markets=("BTC-USDT",)))
        path = tmp_path / "warehouse.duckdb"
        result = dg.materialize(
            [exchange_trades, exchange_trades_checks],  # what exchange_trades_job holds
            instance=instance,
            resources=resources_for(path, real_market(tmp_path, now=NOW))
            | {"accounts": Accounts(path=str(accounts)), "refresh": RefreshSettings()},
            tags=range_tags("BTC-USDT", "2026-11-20", TODAY),
        )
    assert result.success
    evaluations = result.get_asset_check_evaluations()
    assert sorted((e.check_name, e.passed) for e in evaluations) == [
        ("is_deleted_not_null", True),
        ("unique_key", True),
    ]
    assert {e.metadata["rows_checked"].value for e in evaluations} == {12}
