"""Currencies of valuation: the base currency setting, quote currencies, pegs and FX pairs, and
the FX pairs tracking adds to the holdings summary."""

import pandas as pd
import pytest

from platform_pkg.ledger.build import symbol_summary
from platform_pkg.portfolio.currency import (
    base_currency,
    conversion,
    fx_needs,
    fx_pair,
    quote_currency,
)


def test_the_base_currency_is_read_from_the_environment_when_asked():
    assert base_currency({}) == "USD"
    assert base_currency({"PLATFORM_BASE_CURRENCY": " eur "}) == "EUR"
    for bad in ("EURO", "USDT", "BTC", "E1R"):
        with pytest.raises(ValueError, match="PLATFORM_BASE_CURRENCY"):
            base_currency({"PLATFORM_BASE_CURRENCY": bad})


@pytest.mark.parametrize(
    ("symbol", "quote"),
    [
        ("BTC-USDT", "USDT"),
        ("ETH-BTC", "BTC"),
        ("BTC-EUR", "EUR"),
        ("AAPL", "USD"),
        ("BRK-B", "USD"),  # a share class, not an exchange pair
        ("GC=F", "USD"),
        ("EURUSD=X", "USD"),
        ("USDJPY=X", "JPY"),
        ("SAP.DE", None),
    ],
)
def test_quote_currency_follows_the_shape_of_the_symbol(symbol, quote):
    assert quote_currency(symbol) == quote


def test_fx_pairs_follow_market_convention():
    assert fx_pair("EUR", "USD") == ("EURUSD=X", False)
    assert fx_pair("USD", "EUR") == ("EURUSD=X", True)
    assert fx_pair("JPY", "USD") == ("USDJPY=X", True)
    assert fx_pair("SEK", "EUR") == ("EURSEK=X", True)


def test_conversions_at_par_through_a_peg_or_an_fx_pair():
    assert conversion("AAPL", "USD").fx_pair is None
    pegged = conversion("BTC-USDT", "USD")
    assert (pegged.fx_pair, pegged.notes("USD")) == (None, ["USDT valued at 1 USD (peg)"])
    in_eur = conversion("BTC-USDT", "EUR")
    assert (in_eur.fx_pair, in_eur.invert, in_eur.pegged) == ("EURUSD=X", True, "USDT")
    assert in_eur.notes("EUR") == [
        "USDT valued at 1 USD (peg)",
        "USD → EUR at EURUSD=X (1 / close)",
    ]
    assert conversion("BTC-EUR", "USD").fx_pair == "EURUSD=X"
    assert conversion("BTC-EUR", "USD").invert is False
    assert conversion("ETH-BTC", "USD").unsupported == "no conversion from BTC to USD"
    assert conversion("SAP.DE", "USD").unsupported == "the quote currency of SAP.DE is unknown"
    assert fx_needs(["AAPL", "MSFT", "BTC-USDT", "BTC-EUR"], "USD") == {"EURUSD=X": ["BTC-EUR"]}


def _holdings(*rows):
    frame = pd.DataFrame(
        rows, columns=["account", "symbol", "asset_class", "is_open", "first_purchase_at"]
    )
    frame["first_purchase_at"] = pd.to_datetime(frame["first_purchase_at"], utc=True)
    return frame


def test_the_fx_pair_a_valuation_needs_is_tracked_like_a_holding():
    held = _holdings(
        ("broker", "AAPL", "stock", True, "2025-03-01"),
        ("broker", "MSFT", "stock", False, "2024-06-01"),
        ("exchange", "BTC-USDT", "crypto", True, "2025-01-15"),
        ("exchange", "BTC-EUR", "crypto", False, "2025-02-01"),
    )
    summary = symbol_summary(held, None, base="EUR")
    assert summary["EURUSD=X"] == {
        "first": "2024-06-01",  # MSFT needed it first
        "class": "fx",
        "accounts": ["broker", "exchange"],
        "for": ["AAPL", "BTC-USDT", "MSFT"],
    }
    assert "EURUSD=X" not in symbol_summary(held.iloc[:3], None, base="USD")


def test_an_fx_pair_held_itself_keeps_its_own_first_acquisition():
    held = _holdings(
        ("fx", "EURUSD=X", "fx", True, "2023-01-01"),
        ("exchange", "BTC-EUR", "crypto", True, "2025-02-01"),
    )
    item = symbol_summary(held, None, base="USD")["EURUSD=X"]
    assert (item["first"], item["accounts"], item["for"]) == (
        "2023-01-01",
        ["exchange", "fx"],
        ["BTC-EUR"],
    )
