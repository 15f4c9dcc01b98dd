"""The currencies of valuation: the base currency values are expressed in, the currency each
symbol is quoted in, and how a quote becomes the base — at par (the same currency, or a
stablecoin pegged to it) or through a Yahoo FX pair the platform tracks like a holding.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import pyarrow as pa

from platform_pkg.market.catalogue import asset_class_of, coingecko_seed, split_pair

BASE_CURRENCY_ENV = "PLATFORM_BASE_CURRENCY"
DEFAULT_BASE_CURRENCY = "USD"
# Stablecoins valued at par with the currency they track.
PEGGED: dict[str, str] = {"USDT": "USD", "USDC": "USD", "DAI": "USD", "BUSD": "USD", "FDUSD": "USD"}
# FX market convention: the pair of two currencies names the earlier of them first (EURUSD,
# USDJPY); currencies not listed come after every listed one, alphabetically between themselves.
FX_ORDER = ("EUR", "GBP", "AUD", "NZD", "USD", "CAD", "CHF", "JPY")
_FX_SYMBOL = re.compile(r"^([A-Z]{3})([A-Z]{3})=X$")


def base_currency(environ: Mapping[str, str] | None = None) -> str:
    """The currency values are expressed in: ``$PLATFORM_BASE_CURRENCY``, else USD; read when
    a run asks, never at import."""
    raw = (os.environ if environ is None else environ).get(BASE_CURRENCY_ENV) or ""
    code = raw.strip().upper() or DEFAULT_BASE_CURRENCY
    if not re.fullmatch(r"[A-Z]{3}", code) or code in PEGGED or code in coingecko_seed():
        raise ValueError(f"{BASE_CURRENCY_ENV}={raw!r} is not a currency code such as USD or EUR")
    return code


def quote_currency(symbol: str) -> str | None:
    """The currency a symbol's prices are quoted in: an FX pair's second currency, an exchange
    pair's quote, USD for US listings; None for a listing whose currency is not known here
    (a Yahoo exchange suffix such as ``SAP.DE``)."""
    if match := _FX_SYMBOL.match(symbol):
        return match[2]
    if asset_class_of(symbol) == "crypto":
        return split_pair(symbol)[1]
    return None if "." in symbol else "USD"


def fx_pair(currency: str, base: str) -> tuple[str, bool]:
    """The Yahoo pair quoting ``currency`` against ``base`` by market convention, and whether
    its close must be inverted to turn ``currency`` into ``base``."""
    rank = {code: n for n, code in enumerate(FX_ORDER)}
    first, second = sorted((currency, base), key=lambda c: (rank.get(c, len(FX_ORDER)), c))
    return f"{first}{second}=X", first == base


@dataclass(frozen=True)
class Conversion:
    """How one symbol's close becomes a value in the base currency."""

    symbol: str
    quote: str | None
    fx_pair: str | None = None  # None: the quote is (pegged to) the base
    invert: bool = False
    pegged: str | None = None  # the stablecoin valued at par, e.g. USDT
    unsupported: str | None = None  # why the symbol cannot be valued at all

    def notes(self, base: str) -> list[str]:
        """How the conversion is made, in words: the peg used, the FX pair read."""
        notes = [f"{self.pegged} valued at 1 {PEGGED[self.pegged]} (peg)"] if self.pegged else []
        if self.fx_pair and self.quote:
            how = "1 / close" if self.invert else "close"
            notes.append(f"{PEGGED.get(self.quote, self.quote)} → {base} at {self.fx_pair} ({how})")
        return notes


def conversion(symbol: str, base: str) -> Conversion:
    quote = quote_currency(symbol)
    if quote is None:
        return Conversion(symbol, None, unsupported=f"the quote currency of {symbol} is unknown")
    currency = PEGGED.get(quote, quote)
    pegged = quote if quote in PEGGED else None
    if currency == base:
        return Conversion(symbol, quote, pegged=pegged)
    if len(currency) != 3 or currency in coingecko_seed():
        return Conversion(symbol, quote, unsupported=f"no conversion from {quote} to {base}")
    pair, invert = fx_pair(currency, base)
    return Conversion(symbol, quote, pair, invert, pegged)


def fx_needs(symbols: Iterable[str], base: str) -> dict[str, list[str]]:
    """The FX pairs valuing ``symbols`` in ``base`` needs, each with the symbols needing it."""
    needs: dict[str, list[str]] = {}
    for symbol in sorted(set(symbols)):
        pair = conversion(symbol, base).fx_pair
        if pair is not None:
            needs.setdefault(pair, []).append(symbol)
    return needs


def conversions_table(symbols: Iterable[str], base: str) -> pa.Table:
    rows = [conversion(s, base) for s in sorted(set(symbols))]
    return pa.table(
        {
            "symbol": pa.array([c.symbol for c in rows], pa.string()),
            "fx_pair": pa.array([c.fx_pair for c in rows], pa.string()),
            "invert": pa.array([c.invert for c in rows], pa.bool_()),
            "unsupported": pa.array([c.unsupported for c in rows], pa.string()),
        }
    )
