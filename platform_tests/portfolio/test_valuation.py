"""Balances and portfolio value through the real machinery: a portfolio file's ledger run, its
materialisations' figures, chart and missing prices, and the FX pair tracking picks up."""

from datetime import UTC, datetime, timedelta

import dagster as dg
import duckdb
import pandas as pd
import pytest

from platform_pkg.ledger.assets import SUMMARY_METADATA, holdings, transactions
from platform_pkg.market.candles import PRICE_TABLE_COLUMNS
from platform_pkg.portfolio.assets import portfolio_transactions
from platform_pkg.portfolio.resources import PortfolioFile
from platform_pkg.portfolio.sensors import _ledger_run
from platform_pkg.portfolio.valuation import daily_balances, portfolio_value
from platform_pkg.prices.assets import prices_1d
from platform_pkg.warehouse.io_manager import table_spec
from platform_pkg.warehouse.unit import Unit, commit
from platform_tests.conftest import NOW, resources_for, rows

HEADER = "date,account,symbol,asset_class,side,quantity,price,currency,fee\n"
LINES = [
    "2026-11-16,broker,AAPL,stock,buy,10,200,USD,1",
    "2026-11-18,exchange,BTC-USDT,crypto,buy,0.5,80000,USDT,0",
    "2026-11-20,exchange,SOL-USDT,crypto,buy,4,150,USDT,0",  # no closes stored: not valued
]
ASSETS = [portfolio_transactions, transactions, holdings, daily_balances, portfolio_value]
PRICES = table_spec(dict(prices_1d.metadata_by_key[prices_1d.key]), "prices_1d")


@pytest.fixture
def warehouse(tmp_path):
    return tmp_path / "warehouse.duckdb"


def store_closes(warehouse, symbol, first, closes):
    rows_ = [
        {"symbol": symbol, "ts": datetime(2026, 11, first + n, tzinfo=UTC), "open": c, "high": c,
         "low": c, "close": c, "volume": 0.0, "source": "test", "is_final": True,
         "fetched_at": datetime.now(UTC) - timedelta(hours=1)}
        for n, c in enumerate(closes)
    ]  # fmt: skip
    con = duckdb.connect(str(warehouse))
    try:
        frame = pd.DataFrame(rows_, columns=list(PRICE_TABLE_COLUMNS))
        commit(con, PRICES, Unit.of(frame), run_id="r", now=NOW)
    finally:
        con.close()


def ledger_run(instance, tmp_path, warehouse, *lines):
    portfolio = tmp_path / "portfolio.csv"
    portfolio.write_text(HEADER + "".join(f"{line}\n" for line in lines))
    resources = resources_for(warehouse) | {"portfolio": PortfolioFile(path=str(portfolio))}
    result = dg.materialize(ASSETS, instance=instance, resources=resources)
    assert result.success
    return result


def metadata(result, asset):
    (event,) = result.asset_materializations_for_node(asset)
    return {k: getattr(v, "value", v) for k, v in event.metadata.items()}


def test_a_ledger_run_values_the_portfolio_and_lists_what_it_cannot(instance, tmp_path, warehouse):
    store_closes(warehouse, "AAPL", 16, [200.0, 202.0, 204.0, 206.0, 208.0])  # to Friday the 20th
    store_closes(warehouse, "BTC-USDT", 18, [80_000.0 + 1_000 * n for n in range(7)])
    result = ledger_run(instance, tmp_path, warehouse, *LINES)
    balances = metadata(result, "daily_balances")
    assert (balances["pairs_recomputed"], balances["recomputed_from"]) == (3, "2026-11-16")
    assert balances["rows_recomputed"] == 9 + 7 + 5  # to today, the 24th
    value = metadata(result, "portfolio_value")
    assert value["base_currency"] == "USD" and value["why"] == "first build"
    assert value["latest_date"] == "2026-11-24"
    assert value["latest_value"] == 2080.0 + 43_000.0, "AAPL at Friday's close; SOL left out"
    assert (value["positions_valued"], value["missing_prices"]) == (2, 1)
    assert (
        value["not_valued"] == "- SOL-USDT: no close of SOL-USDT (2026-11-20 → 2026-11-24, 5 days)"
    )
    assert value["conversions"] == "- USDT valued at 1 USD (peg)"
    assert value["chart"].startswith("![Portfolio value (USD)](data:image/png;base64,")
    assert rows(warehouse, "SELECT count(*) FROM portfolio_value_missing") == [(5,)]
    # A new line and nothing else: only its pair and the days from its date are rebuilt.
    later = ledger_run(
        instance, tmp_path, warehouse, *LINES, "2026-11-23,broker,AAPL,stock,buy,1,206,USD,0"
    )
    balances = metadata(later, "daily_balances")
    assert (balances["pairs_recomputed"], balances["rows_recomputed"]) == (1, 2)
    value = metadata(later, "portfolio_value")
    assert value["recomputed_from"] == "2026-11-23"
    assert value["latest_value"] == 2288.0 + 43_000.0


def test_a_euro_base_tracks_eurusd_and_values_through_it(
    instance, tmp_path, warehouse, monkeypatch
):
    monkeypatch.setenv("PLATFORM_BASE_CURRENCY", "EUR")
    store_closes(warehouse, "AAPL", 16, [200.0])
    store_closes(warehouse, "EURUSD=X", 16, [1.25])
    result = ledger_run(instance, tmp_path, warehouse, LINES[0])
    summary = metadata(result, "holdings")[SUMMARY_METADATA]
    assert summary["EURUSD=X"] == {
        "first": "2026-11-16",
        "class": "fx",
        "accounts": ["broker"],
        "for": ["AAPL"],
    }
    value = metadata(result, "portfolio_value")
    assert (value["base_currency"], value["latest_value"]) == ("EUR", 1600.0)
    assert value["conversions"] == "- USD → EUR at EURUSD=X (1 / close)"


def test_nothing_changed_moves_only_the_marks(instance, tmp_path, warehouse):
    store_closes(warehouse, "AAPL", 16, [200.0])
    ledger_run(instance, tmp_path, warehouse, LINES[0])
    again = dg.materialize(
        [daily_balances, portfolio_value], instance=instance, resources=resources_for(warehouse)
    )
    assert again.success
    (balances,) = again.asset_materializations_for_node("daily_balances")
    assert balances.metadata["rows_recomputed"].value == 0
    (event,) = again.asset_materializations_for_node("portfolio_value")
    assert "recomputed_from" not in event.metadata, "the prices mark moved, nothing was rebuilt"
    assert rows(warehouse, "SELECT count(*) FROM portfolio_value") == [(9 * 2,)]


def test_the_ledger_run_rebuilds_balances_and_values():
    keys = [key.path[-1] for key in _ledger_run("digest", {}).asset_selection]
    assert keys[-2:] == ["daily_balances", "portfolio_value"]
