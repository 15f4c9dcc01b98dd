"""Asking the configured sources what they list, each request counted on the run's meter.

Which sources feed the catalogue follows the market settings (:class:`MarketData`):

==========================  =========================================  ======================
source                      when                                       requests
==========================  =========================================  ======================
``listings`` (files)        stock source ``yfinance``                  none
``demo``                    the demo market serves a class             none
``ccxt:<exchange>``         crypto source ``ccxt``                     1 (``load_markets``)
``coingecko``               crypto source or fallback ``coingecko``    1 + ``coingecko_pages``
==========================  =========================================  ======================

Their order is their priority when two list the same key. A source that raises (after its
retries) is a failed result, never an exception: the others' listings still count.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from platform_pkg.catalog import sources
from platform_pkg.catalog.model import COINGECKO, DEMO, LISTINGS, Listing, SourceResult
from platform_pkg.market.catalogue import CRYPTO_CLASSES, STOCK_CLASSES
from platform_pkg.market.coingecko import MARKETS_PAGE
from platform_pkg.market.retry import redact
from platform_pkg.market.source import RequestMeter
from platform_pkg.warehouse.connection import PROJECT_ROOT

if TYPE_CHECKING:
    from platform_pkg.market.resources import MarketData

SHIPPED_LISTINGS = PROJECT_ROOT / "data" / "catalog" / "listings.csv"
LISTINGS_ENV = "PLATFORM_LISTINGS"
DEFAULT_USER_LISTINGS = PROJECT_ROOT / "data" / "listings.csv"
Fetch = Callable[[], tuple[list[Listing], dict[str, int]]]


@dataclass(frozen=True)
class Options:
    coingecko_pages: int = 4  # pages of 250 coins by market cap: the ranks that pick a ticker
    user_listings: Path | None = None  # None: $PLATFORM_LISTINGS, else data/listings.csv


def user_listings_path(configured: str | None = None) -> Path:
    """Your own listings file: ``configured``, else ``$PLATFORM_LISTINGS``, else
    ``data/listings.csv`` (relative paths from the project root)."""
    raw = configured or os.environ.get(LISTINGS_ENV) or str(DEFAULT_USER_LISTINGS)
    path = Path(raw).expanduser()
    return path if path.is_absolute() else PROJECT_ROOT / path


def fetch_sources(
    market: MarketData, options: Options, meter: RequestMeter, log=None
) -> list[SourceResult]:
    """Every configured source's listings, in priority order."""
    settings = market.settings()
    plan: list[tuple[str, Fetch]] = []
    if settings.stock_source == "yfinance":
        plan.append((LISTINGS, lambda: _listings_files(options, log)))
    demo_classes = (CRYPTO_CLASSES if settings.crypto_source == "demo" else set()) | (
        STOCK_CLASSES if settings.stock_source == "demo" else set()
    )
    if demo_classes:
        plan.append((DEMO, lambda: (sources.demo_listings(demo_classes), {})))
    if settings.crypto_source == "ccxt":
        exchange = market.ccxt_source(settings, meter)
        plan.append((exchange.name, lambda: _exchange(exchange)))
    if settings.crypto_source == "coingecko" or (
        settings.crypto_source == "ccxt" and settings.crypto_fallback == "coingecko"
    ):
        gecko = market.coingecko_source(settings, meter)
        plan.append((COINGECKO, lambda: _coingecko(gecko, options.coingecko_pages)))
    return [_run(name, fetch, meter) for name, fetch in plan]


def _run(name: str, fetch: Fetch, meter: RequestMeter) -> SourceResult:
    requests, units = meter.requests[name], meter.units[name]
    result = SourceResult(name, None, started_at=datetime.now(UTC))
    try:
        listings, skipped = fetch()
        result.listings = listings
        result.skipped.update(skipped)
    except Exception as exc:  # noqa: BLE001 - any failure leaves this source's entries alone
        result.error = redact(f"{type(exc).__name__}: {exc}", (), limit=500)
    result.requests = meter.requests[name] - requests
    result.units = meter.units[name] - units
    result.finished_at = datetime.now(UTC)
    return result


def _exchange(exchange) -> tuple[list[Listing], dict[str, int]]:
    markets = exchange.retrying(
        lambda: exchange.exchange.load_markets(reload=True), "loading markets"
    )
    return sources.exchange_listings(exchange.name, exchange.exchange.id, markets)


def _coingecko(gecko, pages: int) -> tuple[list[Listing], dict[str, int]]:
    coins = gecko.coins_list()
    ranked: list = []
    for page in range(1, pages + 1):
        rows = gecko.coins_markets(page)
        ranked += rows
        if len(rows) < MARKETS_PAGE:
            break
    return sources.coingecko_listings(coins, ranked)


def _listings_files(options: Options, log) -> tuple[list[Listing], dict[str, int]]:
    user = options.user_listings or user_listings_path()
    files = [SHIPPED_LISTINGS, *([user] if user.is_file() else [])]
    listings, problems = sources.file_listings((str(p), p.read_text("utf-8")) for p in files)
    for problem in problems if log is not None else ():
        log.warning(f"listings file line skipped: {problem}")
    return listings, {"bad line in a listings file": len(problems)} if problems else {}
