"""Which asset class a symbol belongs to, and so which configured source serves it.

The one place that routes symbols: the demo market's own listings, then the shape of the key
(Yahoo writes FX as ``EURUSD=X`` and futures as ``GC=F``; exchange pairs are ``BASE-QUOTE``).
"""

from __future__ import annotations

import csv
import functools

from platform_pkg.market.demo import DEMO_LISTINGS
from platform_pkg.warehouse.connection import PROJECT_ROOT

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


def split_pair(symbol: str) -> tuple[str, str]:
    """``BTC-USDT`` → ``("BTC", "USDT")``; the base may itself contain dashes, the quote not."""
    base, sep, quote = symbol.rpartition("-")
    if not sep or not base or not quote:
        raise ValueError(f"{symbol!r} is not an exchange pair of the form BASE-QUOTE")
    return base, quote


def exchange_market(symbol: str) -> str:
    """The ccxt unified market of a platform pair: ``BTC-USDT`` ↔ ``BTC/USDT``."""
    base, quote = split_pair(symbol)
    return f"{base}/{quote}"


# CoinGecko names coins by id, not ticker (many coins share a ticker). The CoinGecko source
# resolves a ticker from the asset catalogue (platform_pkg.catalog); the seed of long-listed coins
# in data/catalog/coins.csv answers only while there is no catalogue, and it is what on-chain
# tokens and currency codes are checked against, which must not change with a weekly refresh
# (see token_symbol).
SEED_FILE = PROJECT_ROOT / "data" / "catalog" / "coins.csv"


@functools.cache
def coingecko_seed() -> dict[str, str]:
    """Ticker → CoinGecko coin id of the seed's long-listed coins (read once, when first asked)."""
    with SEED_FILE.open(newline="", encoding="utf-8") as fh:
        return {row["ticker"]: row["coingecko_id"] for row in csv.DictReader(fh)}


# Quotes pegged to a currency are priced in that currency.
COINGECKO_VS: dict[str, str] = {
    "USDT": "usd",
    "USDC": "usd",
    "BUSD": "usd",
    "FDUSD": "usd",
    "USD": "usd",
    "EUR": "eur",
    "BTC": "btc",
    "ETH": "eth",
}


def coingecko_pair(symbol: str) -> tuple[str, str] | None:
    """``BTC-USDT`` → ``("BTC", "usd")``: the coin's ticker and CoinGecko's vs currency, or None
    when CoinGecko cannot quote the pair."""
    try:
        base, quote = split_pair(symbol)
    except ValueError:
        return None
    vs = COINGECKO_VS.get(quote)
    return (base, vs) if vs else None


# On-chain tokens the platform can price: a wrapped coin is its coin, and a chain's native token
# is its gas coin (ETH on Ethereum's rollups).
TOKEN_ALIASES = {"WETH": "ETH", "WBTC": "BTC", "WBNB": "BNB", "WMATIC": "MATIC", "WAVAX": "AVAX"}
CHAIN_NATIVE = {
    "eth": "ETH", "arb": "ETH", "op": "ETH", "base": "ETH", "era": "ETH", "linea": "ETH",
    "scrl": "ETH", "blast": "ETH", "nova": "ETH", "bsc": "BNB", "opbnb": "BNB", "matic": "POL",
    "avax": "AVAX",
}  # fmt: skip


def token_symbol(ticker: str | None) -> str | None:
    """The platform symbol (``ETH-USDT``) of an on-chain token's ticker, for the seed's coins and
    the demo market's; None for a token it cannot price (kept in the ledger by its token id).

    Not the asset catalogue: the ledger derives legs incrementally, so a token must map to the
    same symbol for every transaction, whatever a later refresh adds."""
    if not ticker:
        return None
    base = TOKEN_ALIASES.get(ticker.upper(), ticker.upper())
    known = base in coingecko_seed() or f"{base}-USDT" in DEMO_LISTINGS
    return f"{base}-USDT" if known else None
