"""Reading the catalogue: search, close matches and their wording, coin ids, no catalogue at all."""

from datetime import UTC, datetime

import duckdb
import pytest

from platform_pkg.catalog import lookup
from platform_pkg.catalog.lookup import Brief, StoredCatalogue, close_matches
from platform_pkg.catalog.model import Listing, SourceResult
from platform_tests.catalog.conftest import refresh

T0 = datetime(2026, 11, 2, 4, 10, tzinfo=UTC)
T1 = datetime(2026, 11, 9, 4, 10, tzinfo=UTC)


def pair(base, quote="USDT", exchange="binance"):
    return Listing(
        f"{base}-{quote}", f"{base}/{quote}", "crypto", exchange, quote, f"ccxt:{exchange}",
        f"{base}{quote}",
    )  # fmt: skip


def coin(ticker, coin_id, name):
    return Listing(f"{ticker}-USD", name, "crypto", None, "USD", "coingecko", coin_id)


LISTINGS = [
    pair("BTC"), pair("ETH"), pair("ETH", "BTC"), pair("LUNA"),
    coin("BTC", "bitcoin", "Bitcoin"), coin("ETH", "ethereum", "Ethereum"),
    coin("UNI", "uniswap", "Uniswap"),
    Listing("AAPL", "Apple Inc.", "stock", "XNAS", "USD", "listings", "AAPL"),
]  # fmt: skip


def answered(source, listings, at=T0):
    return SourceResult(
        source, [x for x in listings if x.source == source], started_at=at, finished_at=at
    )


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory):
    """Built once for the module's tests, which only read it."""
    warehouse_file = tmp_path_factory.mktemp("catalogue") / "warehouse.duckdb"
    sources = ["listings", "ccxt:binance", "coingecko"]
    refresh(warehouse_file, [answered(s, LISTINGS) for s in sources], T0)
    later = [x for x in LISTINGS if x.asset_id != "LUNA-USDT"]
    refresh(warehouse_file, [answered(s, later, T1) for s in sources], T1)
    return warehouse_file


def search(path, text, limit=25):
    con = duckdb.connect(str(path), read_only=True)
    try:
        return lookup.search(con, text, limit)
    finally:
        con.close()


def test_search_matches_key_name_and_source_id_in_any_case(catalogue):
    result = search(catalogue, "eth")
    assert [row[0] for row in result.rows] == ["ETH-BTC", "ETH-USD", "ETH-USDT"]
    assert result.columns[:7] == (
        "asset_id",
        "name",
        "class",
        "exchange",
        "source",
        "source_id",
        "active",
    )
    assert [row[0] for row in search(catalogue, "UNISWAP").rows] == ["UNI-USD"]
    assert [row[0] for row in search(catalogue, "btcusdt").rows] == ["BTC-USDT"]  # the ccxt id


def test_an_exact_key_comes_first_and_delisted_ones_last(catalogue):
    assert [row[0] for row in search(catalogue, "btc-usd").rows] == ["BTC-USD", "BTC-USDT"]
    rows = search(catalogue, "usdt").rows
    assert rows[-1][0] == "LUNA-USDT" and rows[-1][6] is False
    assert rows[-1][8] == T1  # delisted_at


def test_last_seen_is_the_sources_last_successful_refresh(catalogue):
    rows = {row[0]: row for row in search(catalogue, "usdt").rows}
    assert rows["BTC-USDT"][7] == T1  # listed unchanged at T1: not rewritten, still seen
    assert rows["LUNA-USDT"][7] == T0  # last seen by the refresh before its delisting


def test_the_limit_counts_what_it_leaves_out(catalogue):
    result = search(catalogue, "-", limit=2)
    assert len(result.rows) == 2 and result.omitted == 5


def test_coin_ids_come_from_coingecko_rows(catalogue):
    stored = StoredCatalogue(catalogue)
    assert stored.coingecko_id("eth") == "ethereum"
    assert stored.coingecko_id("UNI") == "uniswap"
    assert stored.coingecko_id("LUNA") is None  # only the exchange lists it


def test_close_matches_look_at_the_coin_the_key_and_the_name():
    among = [
        Brief("BTC-USDT", "BTC/USDT", "ccxt:binance", "binance", True, None),
        Brief("BTC-USD", "Bitcoin", "coingecko", None, True, None),
        Brief("ETH-USDT", "ETH/USDT", "ccxt:binance", "binance", True, None),
        Brief("BTCX-USDT", "BTCX/USDT", "ccxt:binance", "binance", False, T1),
    ]
    ids = lambda text: [b.asset_id for b in close_matches(text, among)]  # noqa: E731
    assert ids("BTC") == ["BTC-USD", "BTC-USDT"]
    assert ids("BTCUSDT") == ["BTC-USDT", "BTC-USD"]
    assert ids("BITCOIN") == ["BTC-USD"]
    assert ids("XRP-USDT") == []  # nothing close; delisted ones are never suggested
    assert lookup.hint("BTCX-USDT", among) == (
        "; ccxt:binance stopped listing it on 2026-11-09 (asset catalogue)"
        "; did you mean 'BTC-USDT' (BTC/USDT, ccxt:binance) or 'BTC-USD' (Bitcoin, coingecko)?"
    )


def test_unlisted_markets_are_named_per_exchange(catalogue):
    stored = StoredCatalogue(catalogue)
    assert stored.unlisted_market("binance", "ETH-USDT") is None
    assert stored.unlisted_market("kraken", "ETH-USDT") is None  # no markets of kraken: cannot tell
    assert stored.unlisted_market("binance", "ETH-USDC") == (
        "binance does not list ETH-USDC (asset catalogue); did you mean "
        "'ETH-USDT' (ETH/USDT, ccxt:binance) or 'ETH-BTC' (ETH/BTC, ccxt:binance)?"
    )
    assert "stopped listing it on 2026-11-09" in stored.unlisted_market("binance", "LUNA-USDT")


def test_without_a_catalogue_nothing_is_known(warehouse_file, tmp_path):
    assert StoredCatalogue(tmp_path / "none.duckdb").hint("BTC") == ""  # no file
    duckdb.connect(str(warehouse_file)).close()  # a warehouse without the table
    stored = StoredCatalogue(warehouse_file)
    assert (stored.hint("BTC"), stored.coingecko_id("BTC")) == ("", None)
    assert stored.unlisted_market("binance", "BTC-USDT") is None
