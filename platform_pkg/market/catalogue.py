"""Which asset class a symbol belongs to, and so which configured source serves it.

The one place that routes symbols: the demo market's own listings, then the shape of the key
(Yahoo writes FX as ``EURUSD=X`` and futures as ``GC=F``; exchange pairs are ``BASE-QUOTE``).
"""

from __future__ import annotations

from platform_pkg.market.demo import DEMO_LISTINGS

ASSET_CLASSES = ("crypto", "stock", "etf", "fx", "commodity")
# Asset classes each source setting covers.
CRYPTO_CLASSES = frozenset({"crypto"})
STOCK_CLASSES = frozenset({"stock", "etf", "fx", "commodity"})

_CRYPTO_QUOTES = ("USDT", "USDC", "BUSD", "FDUSD", "USD", "EUR", "BTC", "ETH")


def asset_class_of(symbol: str) -> str:
    """The asset class of a canonical symbol key."""
    if symbol in DEMO_LISTINGS:
        return DEMO_LISTINGS[symbol].asset_class
    if symbol.endswith("=X"):
        return "fx"
    if symbol.endswith("=F"):
        return "commodity"
    base, sep, quote = symbol.rpartition("-")
    if sep and base and quote in _CRYPTO_QUOTES:
        return "crypto"
    return "stock"
