"""Portfolio assets through the real machinery: validated transactions, rejects kept aside, and the
ledger, holdings and tracked assets they feed."""

import dagster as dg
import pytest

from platform_pkg.ledger.assets import holdings, transactions
from platform_pkg.portfolio.assets import portfolio_transactions, tracked_assets
from platform_pkg.portfolio.resources import PortfolioFile
from platform_tests.conftest import resources_for, rows

HEADER = "date,account,symbol,asset_class,side,quantity,price,currency,fee\n"
BUY_AAPL = "2026-01-05,broker,AAPL,stock,buy,10,180,USD,1"
BUY_BTC = "2026-02-01,wallet,BTC-USDT,crypto,buy,0.5,90000,USDT,2"
SELL_AAPL = "2026-03-01,broker,AAPL,stock,sell,4,190,USD,1"
BAD = "2026-03-02,broker,AAPL,stock,sell,-4,190,USD,1"


@pytest.fixture
def portfolio(tmp_path):
    return tmp_path / "portfolio.csv"


def materialize(instance, tmp_path, portfolio, *lines):
    portfolio.write_text(HEADER + "".join(f"{line}\n" for line in lines))
    resources = resources_for(tmp_path / "warehouse.duckdb") | {
        "portfolio": PortfolioFile(path=str(portfolio))
    }
    result = dg.materialize(
        [portfolio_transactions, transactions, holdings, tracked_assets],
        instance=instance,
        resources=resources,
    )
    assert result.success
    return result


def test_transactions_rejects_and_holdings_land_in_the_warehouse(instance, tmp_path, portfolio):
    result = materialize(instance, tmp_path, portfolio, BUY_AAPL, BUY_BTC, SELL_AAPL, BAD)
    wh = tmp_path / "warehouse.duckdb"
    assert rows(
        wh, "SELECT line, symbol, side, quantity, in_file FROM portfolio_transactions ORDER BY line"
    ) == [
        (2, "AAPL", "buy", 10.0, True),
        (3, "BTC-USDT", "buy", 0.5, True),
        (4, "AAPL", "sell", 4.0, True),
    ]
    assert rows(wh, "SELECT line, field, reason, raw, in_file FROM portfolio_rejects") == [
        (5, "quantity", "-4 is not positive; the side gives the direction", BAD, True)
    ]
    assert rows(
        wh,
        "SELECT account, symbol, quantity, is_open, first_purchase_at::DATE::VARCHAR FROM holdings ORDER BY 1",
    ) == [
        ("broker", "AAPL", 6.0, True, "2026-01-05"),
        ("wallet", "BTC-USDT", 0.5, True, "2026-02-01"),
    ]
    meta = result.asset_materializations_for_node("portfolio_transactions")[0].metadata
    assert (meta["valid"].value, meta["rejected"].value) == (3, 1)
    assert rows(
        wh, "SELECT domain, source, account, symbol, side FROM transactions ORDER BY ts"
    ) == [
        ("manual", "portfolio_file", "broker", "AAPL", "buy"),
        ("manual", "portfolio_file", "wallet", "BTC-USDT", "buy"),
        ("manual", "portfolio_file", "broker", "AAPL", "sell"),
    ]
    summary = result.asset_materializations_for_node("holdings")[0].metadata["symbols"].value
    assert summary == {
        "AAPL": {"first": "2026-01-05", "class": "stock", "accounts": ["broker"]},
        "BTC-USDT": {"first": "2026-02-01", "class": "crypto", "accounts": ["wallet"]},
    }
    assert rows(wh, "SELECT asset_id, is_active, tracking_users FROM tracked_assets") == [
        ("AAPL", True, 1),
        ("BTC-USDT", True, 1),
    ]


def test_an_edited_file_retires_what_left_it(instance, tmp_path, portfolio):
    materialize(instance, tmp_path, portfolio, BUY_AAPL, BUY_BTC, SELL_AAPL, BAD)
    # The bad line is fixed and the BTC line deleted.
    materialize(instance, tmp_path, portfolio, BUY_AAPL, SELL_AAPL, BAD.replace("-4", "6"))
    wh = tmp_path / "warehouse.duckdb"
    assert rows(wh, "SELECT symbol, in_file FROM portfolio_transactions ORDER BY symbol, line") == [
        ("AAPL", True),
        ("AAPL", True),
        ("AAPL", True),
        ("BTC-USDT", False),
    ]
    assert rows(wh, "SELECT line, in_file FROM portfolio_rejects") == [(5, False)]
    assert rows(wh, "SELECT symbol, quantity, is_open FROM holdings ORDER BY symbol") == [
        ("AAPL", 0.0, False),
        ("BTC-USDT", 0.0, False),
    ]
    # The line that left the file is deleted in the ledger, never removed.
    assert rows(wh, "SELECT symbol, is_deleted FROM transactions ORDER BY symbol, ts") == [
        ("AAPL", False),
        ("AAPL", False),
        ("AAPL", False),
        ("BTC-USDT", True),
    ]


def test_rematerialising_the_same_file_changes_nothing(instance, tmp_path, portfolio):
    materialize(instance, tmp_path, portfolio, BUY_AAPL, BUY_BTC)
    again = materialize(instance, tmp_path, portfolio, BUY_AAPL, BUY_BTC)
    meta = again.asset_materializations_for_node("portfolio_transactions")[0].metadata
    assert (meta["rows_inserted"].value, meta["rows_updated"].value) == (0, 0)
    # Nothing changed in the ledger's inputs: the ledger says so (and its checks run), what
    # derives from it is not even rebuilt.
    (ledger,) = again.asset_materializations_for_node("transactions")
    assert ledger.metadata["changed"].value == 0
    for node in ("holdings", "tracked_assets"):
        assert again.asset_materializations_for_node(node) == [], node


def test_a_missing_file_fails_with_its_path(instance, tmp_path, portfolio):
    resources = resources_for(tmp_path / "warehouse.duckdb") | {
        "portfolio": PortfolioFile(path=str(portfolio))
    }
    result = dg.materialize(
        [portfolio_transactions], instance=instance, resources=resources, raise_on_error=False
    )
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert str(portfolio) in failure.step_failure_data.error.message


def test_the_code_location_has_the_portfolio_assets_sensors_and_schedules():
    from platform_pkg.definitions import defs

    repo = defs.get_repository_def()
    keys = {key.to_user_string() for key in repo.asset_graph.get_all_asset_keys()}
    assert {
        "portfolio_transactions",
        "portfolio_rejects",
        "exchange_trades",
        "onchain_transactions",
        "transactions",
        "holdings",
        "tracked_assets",
    } <= keys
    assert sorted(s.name for s in repo.sensor_defs) == ["accounts_sensor", "holdings_sensor"]
    assert sorted(s.name for s in repo.schedule_defs) == [
        "catalog_refresh",
        "daily_close",
        "daily_prune",
        "exchange_trades_reconcile",
        "exchange_trades_sync",
        "intraday_refresh",
        "onchain_reconcile",
        "onchain_sync",
        "platform_status_refresh",
        "portfolio_valuation",
        "weekly_reconcile",
    ]
    for sensor in repo.sensor_defs:
        assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
