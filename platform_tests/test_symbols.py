"""Symbol keys: one canonical form, and clear refusals for keys Dagster cannot handle."""

import pytest

from platform_pkg.symbols import (
    MAX_SYMBOL_LENGTH,
    InvalidSymbolError,
    canonical_symbol,
    canonical_symbols,
)


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ("BTC-USDT", "BTC-USDT"),
        ("btc/usdt", "BTC-USDT"),
        ("aapl", "AAPL"),
        ("EURUSD=X", "EURUSD=X"),
        ("GC=F", "GC=F"),
        ("^GSPC", "^GSPC"),
        ("BRK.B", "BRK.B"),
    ],
)
def test_canonical_forms(raw, key):
    assert canonical_symbol(raw) == key


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("BTC|USDT", "'|'"),
        ("BTC,ETH", "','"),
        ("BTC...ETH", "'...'"),
        ("BTC USDT", "whitespace"),
        (" AAPL", "whitespace"),
        ("AAPL\t", "whitespace"),
        ("", "empty"),
        ("A" * (MAX_SYMBOL_LENGTH + 1), "characters long"),
        ("BTC$", "'$'"),
        ("-BTC", "leading punctuation"),
        (None, "must be a string"),
    ],
)
def test_refused_keys_say_why(raw, reason):
    with pytest.raises(InvalidSymbolError, match=r".*" + __import__("re").escape(reason)):
        canonical_symbol(raw)


def test_several_bad_keys_are_all_named():
    with pytest.raises(InvalidSymbolError) as err:
        canonical_symbols(["AAPL", "A|B", "C D"])
    assert "A|B" in str(err.value) and "C D" in str(err.value)


def test_duplicates_collapse_to_one_key():
    assert canonical_symbols(["btc/usdt", "BTC-USDT", "AAPL"]) == ["BTC-USDT", "AAPL"]
