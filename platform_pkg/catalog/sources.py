"""What each source lists, as catalogue listings: an exchange's markets (ccxt), CoinGecko's coins,
the listings files, the demo market. Pure conversions; :mod:`.fetch` makes the requests.

Every listing's key is a symbol the platform can route: an exchange pair whose quote the
platform prices as crypto (``BTC-USDT``), a coin as ``TICKER-USD`` (CoinGecko's prices are USD),
a Yahoo ticker. What a source lists that cannot become such a key is counted, not catalogued.
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from typing import Any

from platform_pkg.catalog.model import COINGECKO, DEMO, LISTINGS, Listing
from platform_pkg.market.catalogue import asset_class_of
from platform_pkg.market.demo import DEMO_LISTINGS
from platform_pkg.symbols import InvalidSymbolError, canonical_symbol

COIN_QUOTE = "USD"
LISTING_COLUMNS = ("symbol", "name", "asset_class", "exchange", "currency")  # + listed_at
LISTED_CLASSES = ("stock", "etf", "fx", "commodity")
_CURRENCY = re.compile(r"^[A-Z]{3}$")
# How the catalogue names the demo market's symbols (the demo itself knows only their keys).
DEMO_NAMES = {
    "BTC-USDT": "Bitcoin / Tether",
    "ETH-USDT": "Ether / Tether",
    "SOL-USDT": "Solana / Tether",
    "AAPL": "Apple Inc.",
    "MSFT": "Microsoft Corporation",
    "SPY": "SPDR S&P 500 ETF Trust",
    "EURUSD=X": "Euro / US Dollar",
    "GC=F": "Gold futures",
}


def demo_listings(classes: Iterable[str]) -> list[Listing]:
    """The demo market's symbols of ``classes``: what it serves when it is the source."""
    wanted = set(classes)
    return [
        Listing(
            symbol,
            DEMO_NAMES.get(symbol),
            item.asset_class,
            DEMO,
            _demo_currency(symbol),
            DEMO,
            symbol,
            datetime.combine(item.listed, datetime.min.time(), tzinfo=UTC),
        )
        for symbol, item in DEMO_LISTINGS.items()
        if item.asset_class in wanted
    ]


def exchange_listings(
    source: str, exchange: str, markets: Mapping[str, Mapping[str, Any]]
) -> tuple[list[Listing], Counter[str]]:
    """The spot markets of a ccxt ``load_markets`` answer that are trading, as listings."""
    listings, skipped = [], Counter()
    for market in markets.values():
        if market.get("spot") is False:
            skipped["not a spot market"] += 1
            continue
        if market.get("active") is False:
            skipped["not trading"] += 1
            continue
        base, quote = market.get("base"), market.get("quote")
        key = _key(f"{base}-{quote}") if base and quote else None
        if key is None:
            skipped["not a valid symbol key"] += 1
            continue
        if asset_class_of(key) != "crypto":
            skipped[f"quote not priced as crypto ({quote})"] += 1
            continue
        created = market.get("created")
        listed = datetime.fromtimestamp(created / 1000, UTC) if created else None
        market_id = str(market.get("id") or market.get("symbol"))
        listings.append(
            Listing(key, f"{base}/{quote}", "crypto", exchange, quote, source, market_id, listed)
        )
    return listings, skipped


def coingecko_listings(
    coins: Iterable[Any], ranked: Iterable[Any]
) -> tuple[list[Listing], Counter[str]]:
    """CoinGecko's coins (``/coins/list``) as ``TICKER-USD`` listings. Many coins share a
    ticker: the best market-cap rank (``/coins/markets``) takes it; a ticker shared only by
    unranked coins is ambiguous and left out, as is a malformed row."""
    skipped: Counter[str] = Counter()
    ranks: dict[str, int] = {}
    by_id: dict[str, tuple[str, str | None]] = {}
    for row in ranked:
        coin = _coin(row)
        rank = row.get("market_cap_rank") if coin else None
        if coin and isinstance(rank, int) and not isinstance(rank, bool) and rank > 0:
            ranks[coin[0]] = rank
            by_id.setdefault(coin[0], coin[1:])
    for row in coins:
        coin = _coin(row)
        if coin is None:
            skipped["malformed row"] += 1
            continue
        by_id[coin[0]] = coin[1:]
    by_ticker: dict[str, list[str]] = {}
    for coin_id, (ticker, _name) in by_id.items():
        by_ticker.setdefault(ticker, []).append(coin_id)
    listings = []
    for ticker, ids in sorted(by_ticker.items()):
        key = _key(f"{ticker}-{COIN_QUOTE}")
        if key is None:
            skipped["ticker not a valid symbol key"] += len(ids)
            continue
        best = sorted((ranks[i], i) for i in ids if i in ranks)
        if best:
            chosen = best[0][1]
        elif len(ids) == 1:
            chosen = ids[0]
        else:
            skipped["ticker shared by unranked coins"] += len(ids)
            continue
        skipped["ticker taken by a better-ranked coin"] += len(ids) - 1
        name = by_id[chosen][1]
        listings.append(Listing(key, name, "crypto", None, COIN_QUOTE, COINGECKO, chosen))
    return listings, +skipped


def file_listings(texts: Iterable[tuple[str, str]]) -> tuple[list[Listing], list[str]]:
    """Listings from the listings files, ``(name, CSV text)`` each; a later file's row wins
    over an earlier one's for the same symbol. Returns the listings and the bad lines, each
    ``file:line: reason`` (a file without the header columns raises ValueError)."""
    found: dict[str, Listing] = {}
    problems: list[str] = []
    for name, text in texts:
        reader = csv.DictReader(io.StringIO(text.removeprefix("\ufeff")))
        header = [c.strip().lower() for c in reader.fieldnames or ()]
        missing = [c for c in LISTING_COLUMNS if c not in header]
        if missing:
            raise ValueError(f"{name}: the header lacks column(s) {', '.join(missing)}")
        reader.fieldnames = header
        for row in reader:
            values = {k: (v or "").strip() for k, v in row.items() if k}
            if not any(values.values()) or values["symbol"].startswith("#"):
                continue
            try:
                listing = _file_listing(values)
            except ValueError as exc:
                problems.append(f"{name}:{reader.line_num}: {exc}")
                continue
            found[listing.asset_id] = listing
    return list(found.values()), problems


def _file_listing(values: dict[str, str]) -> Listing:
    try:
        symbol = canonical_symbol(values["symbol"])
    except InvalidSymbolError as exc:
        raise ValueError(str(exc)) from None
    asset_class = values["asset_class"].lower()
    if asset_class not in LISTED_CLASSES:
        raise ValueError(f"asset_class {values['asset_class']!r} is not one of {LISTED_CLASSES}")
    routed = asset_class_of(symbol)
    if routed in ("crypto", "fx", "commodity") and routed != asset_class:
        raise ValueError(f"{symbol} is routed as {routed}, not {asset_class}")
    currency = values["currency"].upper() or None
    if currency is not None and not _CURRENCY.match(currency):
        raise ValueError(f"currency {values['currency']!r} is not a code such as USD")
    listed = values.get("listed_at") or ""
    try:
        listed_at = (
            datetime.combine(date.fromisoformat(listed), datetime.min.time(), tzinfo=UTC)
            if listed
            else None
        )
    except ValueError:
        raise ValueError(f"listed_at {listed!r} is not a date (YYYY-MM-DD)") from None
    return Listing(
        symbol,
        values["name"] or None,
        asset_class,
        values["exchange"] or None,
        currency,
        LISTINGS,
        symbol,
        listed_at,
    )


def _coin(row: Any) -> tuple[str, str, str | None] | None:
    """``(id, TICKER, name)`` of a CoinGecko row, or None when it is not one."""
    if not isinstance(row, dict):
        return None
    coin_id, ticker, name = row.get("id"), row.get("symbol"), row.get("name")
    if not isinstance(coin_id, str) or not coin_id or not isinstance(ticker, str) or not ticker:
        return None
    return coin_id, ticker.strip().upper(), name if isinstance(name, str) and name else None


def _key(raw: str) -> str | None:
    try:
        return canonical_symbol(raw)
    except InvalidSymbolError:
        return None


def _demo_currency(symbol: str) -> str:
    if symbol.endswith("=X"):
        return symbol[3:6]
    return symbol.rpartition("-")[2] if asset_class_of(symbol) == "crypto" else "USD"
