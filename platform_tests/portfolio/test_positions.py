"""What tracking reads of the holdings: the per-symbol summary as holdings."""

from datetime import date

from platform_pkg.portfolio.positions import SymbolHolding, from_summary


def test_the_holdings_summary_becomes_symbol_holdings():
    held = from_summary(
        {
            "SOL-USDT": {"first": "2026-01-05", "class": "crypto", "accounts": []},
            "AAPL": {"first": "2025-06-01", "class": "stock", "accounts": ["broker", "ira"]},
        }
    )
    assert list(held) == ["AAPL", "SOL-USDT"]
    assert held["AAPL"] == SymbolHolding("AAPL", "stock", date(2025, 6, 1), ("broker", "ira"))
    assert held["AAPL"].active and not held["SOL-USDT"].active
