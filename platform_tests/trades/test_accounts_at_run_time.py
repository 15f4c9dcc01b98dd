"""Bad accounts input found by a trade sync: the error names file, account and field; others sync."""

from __future__ import annotations

import logging

import pytest

from platform_pkg.market.demo import DemoMarket
from platform_tests.conftest import NOW, range_tags, rows
from platform_tests.fakes.binance import FakeBinance, make_trades
from platform_tests.fakes.market import clear_market_env
from platform_tests.trades.test_ingest import (
    KEY,
    KEY_ENV,
    SECRET,
    SECRET_ENV,
    T0,
    TODAY,
    assert_holds_exactly,
    exchange_account,
    log_rows,
    stored,
    sync,
    write_accounts,
)


@pytest.fixture(autouse=True)
def _credentials(monkeypatch):
    clear_market_env(monkeypatch)
    for var in (KEY_ENV, "TEST_ALT_KEY"):
        monkeypatch.setenv(var, KEY)
    for var in (SECRET_ENV, "TEST_ALT_SECRET"):
        monkeypatch.setenv(var, SECRET)


@pytest.fixture
def binance():
    pairs = {"BTCUSDT": ("BTC", "USDT"), "ETHUSDT": ("ETH", "USDT")}  # no SOLUSDT
    market = DemoMarket(clock=lambda: NOW)
    with FakeBinance(market, pairs, api_key=KEY, api_secret=SECRET) as fake:
        fake.trades["BTCUSDT"] = make_trades("BTCUSDT", 12, start_ms=T0)
        yield fake


def failure(result) -> str:
    """The step's error, with the causes Dagster wraps it in."""
    (event,) = [e for e in result.all_events if e.is_step_failure]
    error, messages = event.step_failure_data.error, []
    while error is not None:
        messages.append(error.message)
        error = error.cause
    return "\n".join(messages)


def errors(instance, result) -> list[str]:
    return [r.user_message for r in instance.all_logs(result.run_id) if r.level >= logging.ERROR]


def test_an_unset_variable_names_file_account_and_field_and_the_other_account_syncs(
    instance, warehouse_file, tmp_path, binance, monkeypatch
):
    monkeypatch.delenv(KEY_ENV)
    accounts = write_accounts(
        tmp_path,
        exchange_account(binance.url, markets=("BTC-USDT",)),
        exchange_account(
            binance.url,
            name="binance-alt",
            key_env="TEST_ALT_KEY",
            secret_env="TEST_ALT_SECRET",
            markets=("BTC-USDT",),
        ),
    )
    result, _ = sync(
        instance, warehouse_file, tmp_path, accounts, range_tags("BTC-USDT", TODAY, TODAY), ok=False
    )
    why = (
        f"{accounts}, line 4, exchange account 'binance-main', field 'api_key_env': "
        f"environment variable {KEY_ENV} is not set"
    )
    assert errors(instance, result)[0] == why
    # The run syncs the valid account, then fails naming the bad one.
    assert why in failure(result)
    assert stored(warehouse_file, account="binance-main").empty
    assert_holds_exactly(warehouse_file, binance.trades["BTCUSDT"], account="binance-alt")
    assert list(log_rows(warehouse_file)) == ["binance-alt:BTC-USDT"]


def test_a_market_the_exchange_does_not_list_names_markets_and_the_others_sync(
    instance, warehouse_file, tmp_path, binance
):
    accounts = write_accounts(
        tmp_path, exchange_account(binance.url, markets=("BTC-USDT", "SOL-USDT"))
    )
    tags = {
        "dagster/asset_partition_range_start": f"{TODAY}|BTC-USDT",
        "dagster/asset_partition_range_end": f"{TODAY}|SOL-USDT",
    }
    result, _ = sync(instance, warehouse_file, tmp_path, accounts, tags, ok=False)
    why = (
        f"{accounts}, line 1, exchange account 'binance-main', field 'markets': "
        "binance does not list SOL/USDT (for SOL-USDT)"
    )
    assert errors(instance, result)[0] == f"binance-main:SOL-USDT: not synced: {why}"
    assert f"binance-main:SOL-USDT: {why}" in failure(result)
    assert_holds_exactly(warehouse_file, binance.trades["BTCUSDT"])
    statuses = {asset: row[0] for asset, row in log_rows(warehouse_file).items()}
    assert statuses == {"binance-main:BTC-USDT": "success", "binance-main:SOL-USDT": "failed"}
    assert log_rows(warehouse_file)["binance-main:SOL-USDT"][-1] == why
    assert [r.query["symbol"] for r in binance.trade_requests] == ["BTCUSDT", "BTCUSDT"]


def test_a_toml_syntax_error_names_its_line_and_nothing_syncs(
    instance, warehouse_file, tmp_path, binance
):
    broken = exchange_account(binance.url).replace('"binance-main"', '"binance-main')
    accounts = write_accounts(tmp_path, broken, exchange_account(binance.url, name="binance-alt"))
    result, _ = sync(
        instance, warehouse_file, tmp_path, accounts, range_tags("BTC-USDT", TODAY, TODAY), ok=False
    )
    why = f"{accounts}, line 2: not valid TOML: Illegal character '\\n' (column 21)"
    assert errors(instance, result)[0] == why
    assert why in failure(result)
    assert binance.trade_requests == []
    tables = rows(warehouse_file, "SELECT table_name FROM information_schema.tables")
    assert ("exchange_trades",) not in tables and ("sync_log",) not in tables
