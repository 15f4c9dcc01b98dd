"""Portfolio and accounts validation name close matches from the catalogue, and work without one."""

from datetime import UTC, datetime
from pathlib import Path

import pytest

from platform_pkg.accounts.config import parse_accounts
from platform_pkg.catalog.model import Listing, SourceResult
from platform_pkg.catalog.sources import demo_listings
from platform_pkg.market.catalogue import ASSET_CLASSES
from platform_pkg.market.resources import MarketData
from platform_pkg.portfolio.resources import MarketChecks
from platform_pkg.portfolio.transactions import parse_portfolio
from platform_tests.catalog.conftest import refresh
from platform_tests.conftest import NOW

AT = datetime(2026, 11, 23, 4, 10, tzinfo=UTC)
ACCOUNTS = """\
[[exchange]]
name = "main"
exchange = "binance"
api_key_env = "KEY"
secret_env = "SECRET"
markets = ["ETH-USDC", "btc/usdt", "BTCUSDT"]
"""
BINANCE = [
    Listing(f"{b}-{q}", f"{b}/{q}", "crypto", "binance", q, "ccxt:binance", b + q)
    for b, q in [("BTC", "USDT"), ("ETH", "USDT"), ("ETH", "BTC")]
]


@pytest.fixture
def demo_catalogue(warehouse_file):
    refresh(warehouse_file, [SourceResult("demo", demo_listings(ASSET_CLASSES), AT)], AT)


def test_an_unknown_portfolio_symbol_names_what_was_meant(demo_catalogue):
    checks = MarketChecks(MarketData(now=NOW.isoformat()))
    assert checks.unknown_reason("BTC-USDT") is None
    reason = checks.unknown_reason("BTCUSDT")
    assert reason.startswith("the demo market does not list 'BTCUSDT'")
    assert reason.endswith("; did you mean 'BTC-USDT' (Bitcoin / Tether, demo)?")
    text = (
        "date,account,symbol,asset_class,side,quantity,price,currency,fee\n"
        "2026-01-05,broker,APPL,stock,buy,3,180,USD,0\n"
    )
    parsed = parse_portfolio(text, known_symbol=checks.unknown_reason, now=NOW)
    (reject,) = parsed.rejects
    assert reject.field == "symbol" and "did you mean 'AAPL' (Apple Inc., demo)?" in reject.reason


def test_without_a_catalogue_the_reason_is_what_it_was(warehouse_file):
    reason = MarketChecks(MarketData(now=NOW.isoformat())).unknown_reason("BTCUSDT")
    assert reason.endswith("it lists BTC-USDT, ETH-USDT, SOL-USDT, AAPL, MSFT, SPY, EURUSD=X, GC=F")


def parse(text: str):
    return parse_accounts(
        text,
        Path("accounts.toml"),
        known_exchange=lambda _: True,
        environ={"KEY": "k", "SECRET": "s"},
    )


def test_an_accounts_market_the_exchange_does_not_list_names_its_markets(warehouse_file):
    refresh(warehouse_file, [SourceResult("ccxt:binance", BINANCE, AT)], AT)
    errors = [(e.line, e.field, e.message) for e in parse(ACCOUNTS).errors]
    assert errors == [
        (
            6,
            "markets",
            "market 'ETH-USDC': binance does not list ETH-USDC (asset catalogue); did you mean "
            "'ETH-USDT' (ETH/USDT, ccxt:binance) or 'ETH-BTC' (ETH/BTC, ccxt:binance)?",
        ),
        (
            6,
            "markets",
            "market 'BTCUSDT' is not a crypto pair like BTC-USDT (BASE-QUOTE); did you mean "
            "'BTC-USDT' (BTC/USDT, ccxt:binance)?",
        ),
    ]


def test_without_a_catalogue_accounts_markets_are_checked_for_form_only(warehouse_file):
    (error,) = parse(ACCOUNTS).errors
    assert error.message == "market 'BTCUSDT' is not a crypto pair like BTC-USDT (BASE-QUOTE)"
    fixed = parse(ACCOUNTS.replace(', "BTCUSDT"', ""))
    assert fixed.exchanges[0].markets == ("ETH-USDC", "BTC-USDT")
