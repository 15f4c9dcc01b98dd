"""What each source's answer becomes: exchange markets, CoinGecko coins by rank, the listings files."""

from datetime import UTC, datetime

import pytest

from platform_pkg.catalog.fetch import SHIPPED_LISTINGS
from platform_pkg.catalog.model import Listing
from platform_pkg.catalog.sources import (
    coingecko_listings,
    demo_listings,
    exchange_listings,
    file_listings,
)
from platform_pkg.market.catalogue import CRYPTO_CLASSES, asset_class_of
from platform_pkg.market.demo import DEMO_LISTINGS


def market(base, quote, **more):
    return {
        "id": f"{base}{quote}",
        "base": base,
        "quote": quote,
        "spot": True,
        "active": True,
    } | more


def test_exchange_markets_become_pairs_the_platform_can_route():
    markets = {
        "BTC/USDT": market("BTC", "USDT", created=1_500_000_000_000),
        "ETH/BTC": market("ETH", "BTC"),
        "BTC/TRY": market("BTC", "TRY"),  # a quote the platform routes to the stock source
        "LUNA/USDT": market("LUNA", "USDT", active=False),
        "BTC/USDT:USDT": market("BTC", "USDT", spot=False),
        "ODD/USDT": market("OD D", "USDT"),
    }
    listings, skipped = exchange_listings("ccxt:binance", "binance", markets)
    assert listings == [
        Listing(
            "BTC-USDT", "BTC/USDT", "crypto", "binance", "USDT", "ccxt:binance", "BTCUSDT",
            datetime(2017, 7, 14, 2, 40, tzinfo=UTC),
        ),
        Listing("ETH-BTC", "ETH/BTC", "crypto", "binance", "BTC", "ccxt:binance", "ETHBTC"),
    ]  # fmt: skip
    assert skipped == {
        "quote not priced as crypto (TRY)": 1,
        "not trading": 1,
        "not a spot market": 1,
        "not a valid symbol key": 1,
    }


def test_a_ticker_several_coins_share_goes_to_the_best_market_cap_rank():
    coins = [
        {"id": "ethereum", "symbol": "eth", "name": "Ethereum"},
        {"id": "bridged-ether", "symbol": "eth", "name": "Bridged Ether"},
        {"id": "unique-coin", "symbol": "unq", "name": "Unique"},
        {"id": "twin-a", "symbol": "twn", "name": "Twin A"},
        {"id": "twin-b", "symbol": "twn", "name": "Twin B"},
        {"id": "spaced", "symbol": "sp ace", "name": "Spaced"},
        {"id": None, "symbol": "bad"},
        "not a coin",
    ]
    ranked = [
        {"id": "bridged-ether", "symbol": "eth", "name": "Bridged Ether", "market_cap_rank": 900},
        {"id": "ethereum", "symbol": "eth", "name": "Ethereum", "market_cap_rank": 2},
        {"id": "new-coin", "symbol": "new", "name": "Only in markets", "market_cap_rank": 50},
        {"id": "twin-a", "symbol": "twn", "name": "Twin A", "market_cap_rank": None},
    ]
    listings, skipped = coingecko_listings(coins, ranked)
    assert {x.asset_id: x.source_id for x in listings} == {
        "ETH-USD": "ethereum",
        "NEW-USD": "new-coin",
        "UNQ-USD": "unique-coin",
    }
    eth = next(x for x in listings if x.asset_id == "ETH-USD")
    assert eth == Listing("ETH-USD", "Ethereum", "crypto", None, "USD", "coingecko", "ethereum")
    assert skipped == {
        "malformed row": 2,
        "ticker shared by unranked coins": 2,
        "ticker taken by a better-ranked coin": 1,
        "ticker not a valid symbol key": 1,
    }


def test_the_demo_lists_its_own_symbols_of_the_classes_it_serves():
    crypto = demo_listings(CRYPTO_CLASSES)
    assert [x.asset_id for x in crypto] == [
        s for s, d in DEMO_LISTINGS.items() if d.asset_class == "crypto"
    ]
    everything = {
        x.asset_id: x for x in demo_listings({"crypto", "stock", "etf", "fx", "commodity"})
    }
    assert set(everything) == set(DEMO_LISTINGS)
    assert everything["EURUSD=X"].currency == "USD" and everything["BTC-USDT"].currency == "USDT"
    assert everything["AAPL"].listed_at == datetime(2020, 1, 2, tzinfo=UTC)


def test_the_shipped_listings_file_is_clean_and_routes_as_it_says():
    listings, problems = file_listings([("listings.csv", SHIPPED_LISTINGS.read_text())])
    assert problems == [] and len(listings) >= 50
    for listing in listings:
        routed = asset_class_of(listing.asset_id)
        assert routed == listing.asset_class or {routed, listing.asset_class} <= {"stock", "etf"}
        assert (listing.source, listing.source_id) == ("listings", listing.asset_id)


def test_a_users_file_adds_and_replaces_and_its_bad_lines_are_named():
    shipped = "symbol,name,asset_class,exchange,currency\nAAPL,Apple Inc.,stock,XNAS,USD\n"
    mine = (
        "Symbol,Name,Asset_Class,Exchange,Currency,Listed_At\n"
        "# my own\n"
        "aapl,Apple (mine),stock,XNAS,usd,1980-12-12\n"
        "ASML.AS,ASML Holding,stock,XAMS,EUR,\n"
        "BTC-USDT,Bitcoin,stock,,USD,\n"
        "EURUSD=X,Euro,stock,,USD,\n"
        "GC=F,Gold,commodity,XCEC,dollars,\n"
        "SAP.DE,SAP,stock,XETR,EUR,2024-13-01\n"
    )
    listings, problems = file_listings([("shipped.csv", shipped), ("mine.csv", mine)])
    by_key = {x.asset_id: x for x in listings}
    assert set(by_key) == {"AAPL", "ASML.AS"}
    assert by_key["AAPL"].name == "Apple (mine)" and by_key["AAPL"].currency == "USD"
    assert by_key["AAPL"].listed_at == datetime(1980, 12, 12, tzinfo=UTC)
    assert problems == [
        "mine.csv:5: BTC-USDT is routed as crypto, not stock",
        "mine.csv:6: EURUSD=X is routed as fx, not stock",
        "mine.csv:7: currency 'dollars' is not a code such as USD",
        "mine.csv:8: listed_at '2024-13-01' is not a date (YYYY-MM-DD)",
    ]


def test_a_listings_file_without_its_columns_is_refused_whole():
    with pytest.raises(ValueError, match="mine.csv: the header lacks column"):
        file_listings([("mine.csv", "ticker,name\nAAPL,Apple\n")])
