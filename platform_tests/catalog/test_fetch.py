"""Asking the sources against local servers: which are asked, requests counted, faults, failures."""

import pytest

from platform_pkg.catalog.fetch import Options, fetch_sources
from platform_pkg.market.demo import DemoMarket
from platform_pkg.market.source import RequestMeter
from platform_tests.conftest import NOW
from platform_tests.fakes.binance import FakeBinance
from platform_tests.fakes.catalog import coin_directory, exchange_pairs
from platform_tests.fakes.coingecko import FakeCoinGecko
from platform_tests.fakes.market import real_market
from platform_tests.fakes.server import HTML_503, Fault


@pytest.fixture(scope="module")
def started():
    # Shared by the module's tests (a server takes ~0.4 s to stop); each test starts it clean.
    demo = DemoMarket(clock=lambda: NOW)
    with FakeBinance(demo, pairs=exchange_pairs(12)) as binance, FakeCoinGecko(demo) as gecko:
        gecko.directory, gecko.ranks = coin_directory(600, ranked=300)
        gecko.directory.append({"id": None, "symbol": 7})  # served as is: skipped, counted
        yield binance, gecko


@pytest.fixture
def servers(started):
    for server in started:
        server.requests.clear()
        server.faults.clear()
    started[0].halted.clear()
    return started


def market(tmp_path, binance, gecko, **fields):
    return real_market(
        tmp_path,
        crypto_source="ccxt",
        ccxt_api_url=binance.url,
        coingecko_api_url=gecko.url + "/api/v3",
        coingecko_rate_limit="1000/1",
        **fields,
    )


def by_source(results):
    return {r.source: r for r in results}


def test_one_markets_request_and_a_bounded_number_of_coingecko_pages(servers, tmp_path):
    binance, gecko = servers
    binance.halted.add("X0000USDT")
    meter = RequestMeter()
    results = by_source(fetch_sources(market(tmp_path, binance, gecko), Options(2), meter))
    assert list(results) == ["demo", "ccxt:binance", "coingecko"]  # priority order
    assert binance.paths() == ["/api/v3/exchangeInfo"]
    assert gecko.paths() == ["/api/v3/coins/list", "/api/v3/coins/markets", "/api/v3/coins/markets"]
    assert [r.query["page"] for r in gecko.requests[1:]] == ["1", "2"]
    assert {r.query["per_page"] for r in gecko.requests[1:]} == {"250"}
    exchange, coins = results["ccxt:binance"], results["coingecko"]
    assert (exchange.requests, exchange.units, coins.requests) == (1, 20.0, 3)
    assert meter.total == 4
    # 12 pairs: 3 bases × USDT, BTC, FDUSD, TRY; TRY is not priced as crypto, one pair halted.
    assert len(exchange.listings) == 8
    assert exchange.skipped == {"quote not priced as crypto (TRY)": 3, "not trading": 1}
    # 600 coins, 60 tickers shared by two: 540 tickers, of which 10 only by unranked coins.
    assert len(coins.listings) == 530
    assert coins.skipped == {
        "ticker taken by a better-ranked coin": 50,
        "ticker shared by unranked coins": 20,
        "malformed row": 1,
    }
    assert coins.error is None and not coins.failed


def test_the_last_page_stops_the_paging(servers, tmp_path):
    binance, gecko = servers
    fetch_sources(market(tmp_path, binance, gecko), Options(10), RequestMeter())
    assert gecko.paths("markets") == ["/api/v3/coins/markets"] * 3  # 250 + 250 + 100 coins


def test_429_and_5xx_are_retried_and_every_attempt_counted(servers, tmp_path):
    binance, gecko = servers
    gecko.faults += [
        Fault("coins/markets", 429, headers={"Retry-After": "0.1"}, body={"status": {}}),
        Fault("coins/markets", 502, body=HTML_503, content_type="text/html"),
    ]
    results = by_source(fetch_sources(market(tmp_path, binance, gecko), Options(1), RequestMeter()))
    assert not results["coingecko"].failed
    assert results["coingecko"].requests == 4 == len(gecko.requests)


def test_a_source_that_keeps_failing_is_a_failed_result_and_the_others_still_count(
    servers, tmp_path
):
    binance, gecko = servers
    gecko.faults.append(Fault("coins/list", 500, times=9, body={"error": "internal"}))
    results = by_source(fetch_sources(market(tmp_path, binance, gecko), Options(1), RequestMeter()))
    assert results["coingecko"].failed and "HTTP 500" in results["coingecko"].error
    assert results["coingecko"].requests == 4  # the attempts FAST allows, all counted
    assert len(results["ccxt:binance"].listings) == 9


def test_the_sources_follow_the_market_settings(tmp_path, monkeypatch):
    mine = tmp_path / "mine.csv"
    mine.write_text(
        "symbol,name,asset_class,exchange,currency\nSAP.DE,SAP SE,stock,XETR,EUR\nbad key,x,stock,,\n"
    )
    monkeypatch.setenv("PLATFORM_LISTINGS", str(mine))
    demo = fetch_sources(real_market(tmp_path), Options(), RequestMeter())
    assert [(r.source, len(r.listings)) for r in demo] == [("demo", 8)]
    stocks = by_source(
        fetch_sources(real_market(tmp_path, stock_source="yfinance"), Options(), RequestMeter())
    )
    assert list(stocks) == ["listings", "demo"]
    assert {x.asset_class for x in stocks["demo"].listings} == {"crypto"}
    assert "SAP.DE" in {x.asset_id for x in stocks["listings"].listings}
    assert stocks["listings"].skipped == {"bad line in a listings file": 1}
