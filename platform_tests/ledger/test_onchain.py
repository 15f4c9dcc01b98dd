"""Wallet transactions as ledger legs, and the holdings and tracking summary they lead to."""

from __future__ import annotations

from datetime import UTC, datetime

import duckdb
import pytest

from platform_pkg.ledger.assets import holdings, transactions
from platform_pkg.ledger.build import holdings_changes, ledger_changes, symbol_summary
from platform_pkg.ledger.legs import LEDGER_COLUMNS
from platform_pkg.ledger.onchain import onchain_legs
from platform_pkg.wallets.assets import onchain_transactions
from platform_pkg.wallets.rows import check_items
from platform_pkg.warehouse.io_manager import table_spec
from platform_pkg.warehouse.unit import Unit, commit
from platform_tests.fakes.debank import chain_tokens

NOW = datetime(2026, 11, 24, 10, 30, tzinfo=UTC)
WALLET = "0x" + "5a" * 20
PEER = "0x" + "9e" * 20
DAY = 86_400
T0 = int(datetime(2026, 11, 1, tzinfo=UTC).timestamp())
ONCHAIN = table_spec(
    dict(onchain_transactions.metadata_by_key[onchain_transactions.key]), "onchain_transactions"
)
LEDGER = table_spec(dict(transactions.metadata_by_key[transactions.key]), "transactions")
HOLDINGS = table_spec(dict(holdings.metadata_by_key[holdings.key]), "holdings")
ETH, ARB = chain_tokens("eth"), chain_tokens("arb")
USDC, ZRKL, JUNK = ETH["usdc"]["id"], ETH["obscure"]["id"], ETH["junk"]["id"]
TOKENS = {t["id"]: t for t in [*ETH.values(), *ARB.values()] if t["id"] not in ("eth", "arb")}
TOKENS |= {"eth": ETH["native"], "arb": ARB["native"]}
WETH = "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2"
TOKENS[WETH] = {
    "id": WETH, "chain": "eth", "symbol": "WETH", "optimized_symbol": "WETH", "is_verified": True,
    "is_core": True,
}  # fmt: skip


def tx(tx_id, day, *, sends=(), receives=(), payer=WALLET, gas=0.001, chain="eth", status=1,
       scam=False):  # fmt: skip
    """A DeBank history item: ``sends``/``receives`` are (token id, amount) pairs."""
    return {
        "id": tx_id, "chain": chain, "time_at": float(T0 + day * DAY), "is_scam": scam,
        "cate_id": None, "project_id": None,
        "sends": [{"amount": a, "token_id": t, "to_addr": PEER} for t, a in sends],
        "receives": [{"amount": a, "token_id": t, "from_addr": PEER} for t, a in receives],
        "tx": {"from_addr": payer, "eth_gas_fee": gas, "usd_gas_fee": gas * 3000, "status": status},
    }  # fmt: skip


HISTORY = [
    tx("0xr1", 0, receives=[("eth", 2.0)], payer=PEER),  # the peer paid the gas
    tx("0xs1", 1, sends=[(USDC, 100.0)], gas=0.002),
    tx("0xw1", 2, sends=[("eth", 0.5)], receives=[(USDC, 1495.0)], gas=0.003),  # a swap
    tx("0xo1", 3, receives=[(ZRKL, 42_000.0)], payer=PEER),
    tx("0xj1", 4, receives=[(JUNK, 88_888.0)], payer=PEER, scam=True),
    tx("0xf1", 5, sends=[("eth", 1.0)], gas=0.004, status=0),  # failed: nothing moved
    tx("0xa1", 6, sends=[("arb", 0.25)], chain="arb", gas=0.0001),
    tx("0xx1", 7, receives=[(WETH, 0.1)], payer=PEER),
    tx("0xg1", 8, sends=[], chain="xdai", gas=0.01),  # a chain the catalogue has no coin for
]


@pytest.fixture
def con():
    connection = duckdb.connect()
    connection.execute("SET TimeZone = 'UTC'")
    yield connection
    connection.close()


def store(con, items, **overrides):
    frame, rejects = check_items(items, TOKENS, wallet="hot", address=WALLET, fetched_at=NOW)
    assert rejects.empty
    for col, value in overrides.items():
        frame[col] = value
    commit(con, ONCHAIN, Unit.of(frame), run_id="r", now=NOW)


def build(con):
    ledger = ledger_changes(con, NOW)
    if ledger.moves:
        commit(
            con, LEDGER, Unit.of(ledger.rows, watermarks=tuple(ledger.moves)), run_id="r", now=NOW
        )
    held = holdings_changes(con, NOW)
    if held.moves:
        commit(con, HOLDINGS, Unit.of(held.rows, watermarks=tuple(held.moves)), run_id="r", now=NOW)


def legs(con):
    return con.execute(
        "SELECT txid, leg, symbol, asset_class, side, quantity, currency, status, is_deleted "
        "FROM transactions ORDER BY ts, leg"
    ).fetchall()


def test_each_send_receive_and_paid_gas_is_a_leg(con):
    store(con, HISTORY)
    table = onchain_legs(con, 0, [c for c in LEDGER_COLUMNS if c != "updated_at"])
    assert set(table.column("domain").to_pylist()) == {"onchain"}
    assert set(table.column("source").to_pylist()) == {"debank"}
    assert set(table.column("account").to_pylist()) == {"hot"}
    build(con)
    assert legs(con) == [
        ("eth:0xr1", 0, "ETH-USDT", "crypto", "transfer_in", 2.0, "ETH", "ok", False),
        ("eth:0xs1", 0, f"eth:{USDC}", "token", "transfer_out", 100.0, "USDC", "ok", False),
        ("eth:0xs1", 1, "ETH-USDT", "crypto", "fee", 0.002, "ETH", "ok", False),
        ("eth:0xw1", 0, "ETH-USDT", "crypto", "transfer_out", 0.5, "ETH", "ok", False),
        ("eth:0xw1", 1, f"eth:{USDC}", "token", "transfer_in", 1495.0, "USDC", "ok", False),
        ("eth:0xw1", 2, "ETH-USDT", "crypto", "fee", 0.003, "ETH", "ok", False),
        ("eth:0xo1", 0, f"eth:{ZRKL}", "token", "transfer_in", 42_000.0, "ZRKL", "ok", False),
        ("eth:0xj1", 0, f"eth:{JUNK}", "token", "transfer_in", 88_888.0, "$ usdc-claim.top",
         "scam", False),
        ("eth:0xf1", 0, "ETH-USDT", "crypto", "transfer_out", 1.0, "ETH", "failed", False),
        ("eth:0xf1", 1, "ETH-USDT", "crypto", "fee", 0.004, "ETH", "ok", False),
        ("arb:0xa1", 0, "ETH-USDT", "crypto", "transfer_out", 0.25, "ETH", "ok", False),
        ("arb:0xa1", 1, "ETH-USDT", "crypto", "fee", 0.0001, "ETH", "ok", False),
        ("eth:0xx1", 0, "ETH-USDT", "crypto", "transfer_in", 0.1, "WETH", "ok", False),
        ("xdai:0xg1", 0, "xdai:xdai", "token", "fee", 0.01, None, "ok", False),
    ]  # fmt: skip


def test_holdings_leave_out_scam_and_failed_transfers_and_tracking_leaves_out_tokens(con):
    store(con, HISTORY)
    build(con)
    positions = con.execute(
        "SELECT symbol, asset_class, round(quantity, 9), is_open FROM holdings ORDER BY symbol"
    ).fetchall()
    eth = 2.0 - 0.002 - 0.5 - 0.003 - 0.004 - 0.25 - 0.0001 + 0.1  # the failed send did not move
    assert positions == sorted([
        ("ETH-USDT", "crypto", round(eth, 9), True),
        (f"eth:{JUNK}", None, 0.0, False),  # the scam airdrop: no live leg, nothing held
        (f"eth:{USDC}", "token", 1395.0, True),
        (f"eth:{ZRKL}", "token", 42_000.0, True),
        ("xdai:xdai", "token", -0.01, False),
    ])  # fmt: skip
    summary = symbol_summary(con.execute("SELECT * FROM holdings").df(), None)
    # Only what the platform can price is tracked: from the first ETH received.
    assert summary == {"ETH-USDT": {"first": "2026-11-01", "class": "crypto", "accounts": ["hot"]}}


def test_a_soft_deleted_transaction_takes_its_legs_out_of_the_holdings(con):
    store(con, HISTORY[:3])
    build(con)
    store(con, HISTORY[2:3], is_deleted=True, deleted_at=NOW)  # the swap vanished in a reorg
    build(con)
    deleted = [(txid, leg) for txid, leg, *_, gone in legs(con) if gone]
    assert deleted == [("eth:0xw1", 0), ("eth:0xw1", 1), ("eth:0xw1", 2)]
    positions = con.execute(
        "SELECT symbol, round(quantity, 9) FROM holdings ORDER BY symbol"
    ).fetchall()
    assert positions == [("ETH-USDT", round(2.0 - 0.002, 9)), (f"eth:{USDC}", -100.0)]


def test_a_status_flip_to_failed_turns_the_transfers_off_but_keeps_the_gas(con):
    store(con, HISTORY[:1] + HISTORY[2:3])
    build(con)
    failed = HISTORY[2] | {"tx": HISTORY[2]["tx"] | {"status": 0}}
    store(con, [failed])
    build(con)
    statuses = [(txid, leg, status) for txid, leg, *_, status, _ in legs(con)]
    assert statuses == [
        ("eth:0xr1", 0, "ok"),
        ("eth:0xw1", 0, "failed"),
        ("eth:0xw1", 1, "failed"),
        ("eth:0xw1", 2, "ok"),
    ]
    positions = con.execute(
        "SELECT symbol, round(quantity, 9) FROM holdings ORDER BY symbol"
    ).fetchall()
    assert positions == [("ETH-USDT", round(2.0 - 0.003, 9)), (f"eth:{USDC}", 0.0)]


def test_an_unverified_token_with_a_coins_ticker_is_kept_by_its_token_id(con):
    fake = "0x" + "de" * 20
    TOKENS[fake] = {"id": fake, "chain": "eth", "symbol": "ETH", "optimized_symbol": "ETH",
                    "is_verified": False, "is_core": False, "price": 0.0}  # fmt: skip
    try:
        store(con, [tx("0xi1", 0, receives=[(fake, 50.0)], payer=PEER)])
    finally:
        del TOKENS[fake]
    build(con)
    assert [leg[2:4] for leg in legs(con)] == [(f"eth:{fake}", "token")]
