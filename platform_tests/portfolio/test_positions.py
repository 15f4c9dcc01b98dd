"""Positions per account and symbol, and what each symbol's tracking needs."""

from datetime import date
from decimal import Decimal

from platform_pkg.portfolio.positions import positions, symbol_holdings
from platform_pkg.portfolio.transactions import parse_portfolio

HEADER = "date,account,symbol,asset_class,side,quantity,price,currency,fee\n"


def txns(*lines):
    result = parse_portfolio(HEADER + "\n".join(lines) + "\n")
    assert result.rejects == []
    return result.transactions


def test_positions_replay_each_account_in_time_order():
    book = positions(
        txns(
            "2026-03-01,broker,AAPL,stock,sell,4,190,USD,1",
            "2026-01-05,broker,AAPL,stock,buy,10,180,USD,1",
            "2026-02-01,ira,AAPL,stock,transfer_in,3,,USD,0",
        )
    )
    assert [(p.account, p.symbol, p.quantity, p.transactions) for p in book] == [
        ("broker", "AAPL", Decimal(6), 2),
        ("ira", "AAPL", Decimal(3), 1),
    ]
    assert book[0].first_acquired_at.date() == date(2026, 1, 5)
    assert book[0].last_transaction_at.date() == date(2026, 3, 1)


def test_a_symbol_counts_accounts_holding_it_and_its_first_acquisition_anywhere():
    held = symbol_holdings(
        positions(
            txns(
                "2026-01-05,broker,AAPL,stock,buy,10,180,USD,1",
                "2025-06-01,ira,AAPL,stock,transfer_in,3,,USD,0",
                "2026-02-01,ira,AAPL,stock,transfer_out,3,,USD,0",
            )
        )
    )
    aapl = held["AAPL"]
    assert aapl.first_acquired == date(2025, 6, 1)
    assert aapl.accounts == ("broker",)
    assert aapl.active and aapl.quantity == Decimal(10)


def test_sold_to_zero_everywhere_is_inactive_and_keeps_its_first_date():
    held = symbol_holdings(
        positions(
            txns(
                "2026-01-05,broker,SOL-USDT,crypto,buy,10,100,USDT,0",
                "2026-02-05,broker,SOL-USDT,crypto,sell,10,120,USDT,0",
            )
        )
    )
    assert not held["SOL-USDT"].active
    assert held["SOL-USDT"].accounts == ()
    assert held["SOL-USDT"].first_acquired == date(2026, 1, 5)
