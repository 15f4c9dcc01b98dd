"""The CoinGecko source's coin for a ticker: the catalogue's, else the seed's, else /coins/list once."""

from datetime import UTC, datetime

import pytest

from platform_pkg.catalog.model import Listing, SourceResult
from platform_pkg.market.demo import DemoMarket
from platform_pkg.market.source import RequestMeter, UnknownSymbolError
from platform_tests.catalog.conftest import refresh
from platform_tests.conftest import NOW
from platform_tests.fakes.coingecko import FakeCoinGecko
from platform_tests.fakes.market import real_market


@pytest.fixture
def gecko():
    with FakeCoinGecko(DemoMarket(clock=lambda: NOW)) as fake:
        fake.directory += [
            {"id": "foo-token", "symbol": "foo", "name": "Foo"},
            {"id": "bar-token", "symbol": "bar", "name": "Bar"},
            {"id": "twin-a", "symbol": "twn", "name": "Twin A"},
            {"id": "twin-b", "symbol": "twn", "name": "Twin B"},
        ]
        yield fake


def source(fake, tmp_path, meter):
    market = real_market(
        tmp_path, crypto_source="coingecko", coingecko_api_url=fake.url + "/api/v3"
    )
    return market.source_for("BTC-USDT", meter)


def test_the_catalogue_names_the_coin_before_the_seed(gecko, tmp_path, warehouse_file):
    listings = [
        Listing("UNI-USD", "Uniswap", "crypto", None, "USD", "coingecko", "uniswap-v9"),
        Listing("TWN-USD", "Twin B", "crypto", None, "USD", "coingecko", "twin-b"),
    ]
    at = datetime(2026, 11, 23, tzinfo=UTC)
    refresh(warehouse_file, [SourceResult("coingecko", listings, started_at=at)], at)
    meter = RequestMeter()
    src = source(gecko, tmp_path, meter)
    assert src.coin("UNI-USDT") == ("uniswap-v9", "usd")  # the seed says "uniswap"
    assert src.coin("TWN-EUR") == ("twin-b", "eur")  # ranked when the catalogue was refreshed
    assert src.coin("BTC-USDT") == ("bitcoin", "usd")  # not in the catalogue: the seed
    assert meter.total == 0 and gecko.requests == []


def test_without_a_catalogue_the_coin_list_is_asked_once(gecko, tmp_path):
    meter = RequestMeter()
    src = source(gecko, tmp_path, meter)
    assert src.coin("ETH-USDT") == ("ethereum", "usd")  # the seed: no request
    assert meter.total == 0
    assert src.coin("FOO-USDT") == ("foo-token", "usd")
    assert src.coin("BAR-BTC") == ("bar-token", "btc")
    with pytest.raises(UnknownSymbolError, match="no coin mapped for NOPE-USDT"):
        src.coin("NOPE-USDT")
    with pytest.raises(UnknownSymbolError, match=r"2 coins with the ticker TWN \(twin-a, twin-b\)"):
        src.coin("TWN-USDT")
    assert gecko.paths() == ["/api/v3/coins/list"] and meter.requests == {"coingecko": 1}
