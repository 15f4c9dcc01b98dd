"""The ledger's asset checks: each failing on the breakage it names, passing on built ledgers."""

from datetime import UTC, datetime

import dagster as dg
import duckdb
import pandas as pd
import pytest

from platform_pkg.definitions import defs
from platform_pkg.ledger import integrity
from platform_pkg.ledger.assets import holdings, transactions
from platform_pkg.ledger.checks import holdings_checks, transactions_checks
from platform_pkg.ledger.legs import LEDGER_KEY
from platform_pkg.market.resources import MarketData
from platform_pkg.portfolio.assets import portfolio_transactions
from platform_pkg.portfolio.resources import PortfolioFile
from platform_pkg.portfolio.sensors import holdings_sensor
from platform_pkg.portfolio.tables import TRANSACTION_COLUMNS
from platform_pkg.warehouse.io_manager import table_spec
from platform_pkg.warehouse.resources import Warehouse
from platform_pkg.warehouse.unit import Unit, commit
from platform_tests.conftest import resources_for
from platform_tests.ledger.test_build import NOW, build, trade, write_trades

MANUAL = table_spec(
    dict(portfolio_transactions.metadata_by_key[dg.AssetKey("portfolio_transactions")]),
    "portfolio_transactions",
)


@pytest.fixture
def con():
    connection = duckdb.connect()
    connection.execute("SET TimeZone = 'UTC'")
    yield connection
    connection.close()


def write_manual(con, *lines):
    """Portfolio-file lines: (txn_id, day, symbol, side, quantity)."""
    frame = pd.DataFrame(
        [
            {
                "txn_id": txn,
                "line": i,
                "executed_at": datetime(2026, 11, day, tzinfo=UTC),
                "account": "binance-main",
                "symbol": symbol,
                "asset_class": "crypto",
                "side": side,
                "quantity": quantity,
                "price": 10.0,
                "currency": "USDT",
                "fee": 0.0,
                "note": None,
                "in_file": True,
                "loaded_at": NOW,
            }  # fmt: skip
            for i, (txn, day, symbol, side, quantity) in enumerate(lines, 1)
        ],
        columns=list(TRANSACTION_COLUMNS),
    )
    commit(con, MANUAL, Unit.of(frame), run_id="r", now=NOW)


def findings(con):
    return {
        "unique_key": integrity.unique_key(con, "transactions", LEDGER_KEY),
        "no_negative_holding": integrity.negative_balances(con),
        "matches_ledger": integrity.holdings_mismatches(con),
    }


def clean_ledger(con):
    """Every side and fee form, a changed trade and a deleted one, built by the real builds."""
    write_manual(
        con,
        ("m1", 1, "BNB-USDT", "buy", 1.0),
        ("m2", 1, "ETH-USDT", "transfer_in", 2.0),
        ("m3", 3, "ETH-USDT", "transfer_out", 0.5),
    )
    write_trades(
        con,
        trade(1, amount=2.0, fee=0.002, fee_currency="BTC"),  # the buy's fee taken from the BTC
        trade(2, side="sell", amount=0.5, fee=0.1, fee_currency="BNB", day=2),
        trade(3, side="sell", amount=0.1, fee=0.1, fee_currency="USDT", day=2),
        trade(4, side="sell", amount=9.0, fee=0.0, day=3),
    )
    build(con)
    write_trades(con, trade(4, side="sell", amount=9.0, fee=0.0, day=3, deleted=True))
    write_trades(con, trade(3, side="sell", amount=0.2, fee=0.1, fee_currency="USDT", day=2))
    write_manual(
        con,
        ("m1", 1, "BNB-USDT", "buy", 1.0),
        ("m2", 1, "ETH-USDT", "transfer_in", 2.0),
        ("m3", 3, "ETH-USDT", "transfer_out", 0.5),
        ("m4", 4, "BNB-USDT", "sell", 0.3),
    )
    build(con)


def test_a_ledger_built_by_the_real_builds_passes_every_check(con):
    clean_ledger(con)
    found = findings(con)
    assert all(f.passed for f in found.values()), found
    assert found["unique_key"].looked_at == {"rows_checked": 9, "keys_checked": 9}
    assert found["no_negative_holding"].looked_at == {"live_legs_checked": 8, "pairs_checked": 3}
    assert found["matches_ledger"].looked_at == {"pairs_checked": 3, "holdings_checked": 3}


def test_missing_tables_pass_with_nothing_to_check(con):
    for finding in findings(con).values():
        assert finding.passed and finding.note.startswith("nothing to check yet")


def test_a_duplicate_key_fails_unique_key(con):
    clean_ledger(con)
    con.execute("INSERT INTO transactions SELECT * FROM transactions WHERE txid = '1'")
    con.execute("INSERT INTO transactions SELECT * REPLACE (NULL AS leg) FROM transactions LIMIT 1")
    found = integrity.unique_key(con, "transactions", LEDGER_KEY)
    assert not found.passed
    assert found.failures == {"duplicate_keys": 1, "duplicate_rows": 1, "null_key_rows": 1}
    assert found.sample[0] == {
        "domain": "exchange", "source": "ccxt:binance", "account": "binance-main",
        "txid": "1", "leg": 0, "copies": 2,
    }  # fmt: skip
    assert found.sample[1]["leg"] is None


def test_a_sale_exceeding_the_holding_fails_even_when_a_later_buy_covers_it(con):
    write_trades(
        con,
        trade(1, amount=1.0, fee=0.0),
        trade(2, side="sell", amount=1.5, fee=0.0, day=2),
        trade(3, amount=5.0, fee=0.0, day=3),
        trade(4, side="sell", amount=9.0, fee=0.0, day=4),
    )
    build(con)
    found = integrity.negative_balances(con)
    assert not found.passed
    assert found.failures == {"negative_pairs": 1, "negative_legs": 2}
    assert found.sample == [
        {"account": "binance-main", "symbol": "BTC-USDT",
         "ts": datetime(2026, 11, 2, tzinfo=UTC), "txid": "2", "leg": 0, "balance": -0.5},
    ]  # fmt: skip
    assert integrity.holdings_mismatches(con).passed, "the holdings replay the same legs"


def test_float_residue_and_a_buy_and_sale_at_one_instant_are_not_negative(con):
    write_trades(
        con,
        trade(1, amount=0.1, fee=0.0),
        trade(2, amount=0.2, fee=0.0),
        trade(3, side="sell", amount=0.3, fee=0.0),  # same instant: 0.1 + 0.2 - 0.3 < 0 in floats
    )
    build(con)
    assert 0.1 + 0.2 - 0.3 != 0
    assert integrity.negative_balances(con).passed


def test_a_deleted_sale_is_not_replayed(con):
    write_trades(con, trade(1, fee=0.0), trade(2, side="sell", amount=3.0, fee=0.0, day=2))
    build(con)
    assert not integrity.negative_balances(con).passed
    write_trades(con, trade(2, side="sell", amount=3.0, fee=0.0, day=2, deleted=True))
    build(con)
    assert integrity.negative_balances(con).passed


def test_a_holding_that_disagrees_with_its_legs_fails(con):
    clean_ledger(con)
    con.execute("UPDATE holdings SET quantity = quantity + 0.001 WHERE symbol = 'BTC-USDT'")
    con.execute("DELETE FROM holdings WHERE symbol = 'ETH-USDT'")
    found = integrity.holdings_mismatches(con)
    assert not found.passed
    assert found.failures == {"pairs_differing": 2, "holdings_missing": 1}
    assert [(s["symbol"], s["problem"]) for s in found.sample] == [
        ("BTC-USDT", "quantity differs"),
        ("ETH-USDT", "no holding"),
    ]


def test_a_deleted_leg_still_counted_fails(con):
    clean_ledger(con)
    con.execute(
        "UPDATE transactions SET is_deleted = true WHERE txid = 'm4'"
    )  # holdings not rebuilt
    found = integrity.holdings_mismatches(con)
    assert [(s["symbol"], s["problem"]) for s in found.sample] == [("BNB-USDT", "quantity differs")]


def test_a_holding_only_deleted_legs_hold_up_fails(con):
    write_trades(con, trade(1, fee=0.0, symbol="SOL-USDT"), trade(2, fee=0.0))
    build(con)
    con.execute("UPDATE transactions SET is_deleted = true WHERE symbol = 'SOL-USDT'")
    found = integrity.holdings_mismatches(con)
    assert [(s["symbol"], s["problem"]) for s in found.sample] == [
        ("SOL-USDT", "only deleted legs")
    ]


def test_the_ledger_run_evaluates_its_checks_after_its_assets(tmp_path, instance):
    path = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(path)) as file:
        write_trades(file, trade(1, fee=0.0), trade(2, side="sell", amount=3.0, fee=0.0, day=2))
    ledger = [transactions, holdings, transactions_checks, holdings_checks]
    result = dg.materialize(ledger, instance=instance, resources=resources_for(path))
    assert result.success, "a failed check does not fail the run"
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert {n: (e.passed, e.severity) for n, e in evaluations.items()} == {
        "unique_key": (True, dg.AssetCheckSeverity.ERROR),
        "no_negative_holding": (False, dg.AssetCheckSeverity.WARN),
        "matches_ledger": (True, dg.AssetCheckSeverity.ERROR),
    }
    meta = evaluations["no_negative_holding"].metadata
    assert meta["negative_pairs"].value == 1 and meta["pairs_checked"].value == 1
    assert "| binance-main | BTC-USDT | 2026-11-02 00:00+00:00 | 2 | 0 | -2 |" in (
        meta["sample"].value
    )
    again = dg.materialize(ledger, instance=instance, resources=resources_for(path))
    # Nothing changed: the ledger's checks run again; the holdings' last evaluation stands.
    assert {e.check_name for e in again.get_asset_check_evaluations()} == {
        "unique_key",
        "no_negative_holding",
    }
    on_demand = dg.materialize(
        ledger,
        selection=dg.AssetSelection.checks(transactions_checks),
        instance=instance,
        resources=resources_for(path),
    )
    assert {e.check_name for e in on_demand.get_asset_check_evaluations()} == {
        "unique_key",
        "no_negative_holding",
    }


def test_the_ledger_run_the_holdings_sensor_requests_runs_the_checks(tmp_path, instance):
    portfolio = tmp_path / "portfolio.csv"
    portfolio.write_text(
        "date,account,symbol,asset_class,side,quantity,price,currency,fee\n"
        "2026-01-05,main,BTC-USDT,crypto,buy,1,100,USDT,0\n"
    )
    resources = {
        "portfolio": PortfolioFile(path=str(portfolio)),
        "market": MarketData(now=NOW.isoformat()),
        "warehouse": Warehouse(path=str(tmp_path / "warehouse.duckdb")),
    }
    with dg.build_sensor_context(
        instance=instance, resources=resources, definitions=defs
    ) as context:
        requests = holdings_sensor.evaluate_tick(context).run_requests
    (request,) = [r for r in requests if r.tags.get("platform/ledger")]
    assert {k.to_user_string() for k in request.asset_check_keys} == {
        "transactions:unique_key",
        "transactions:no_negative_holding",
        "holdings:matches_ledger",
    }
