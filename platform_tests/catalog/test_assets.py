"""The asset through Dagster and the IO manager: what a refresh writes, logs and reports."""

import dagster as dg
import pytest

from platform_pkg.catalog.assets import asset_catalog
from platform_pkg.market.demo import DemoMarket
from platform_tests.conftest import NOW, resources_for, rows
from platform_tests.fakes.binance import FakeBinance
from platform_tests.fakes.catalog import coin_directory, exchange_pairs
from platform_tests.fakes.coingecko import FakeCoinGecko
from platform_tests.fakes.market import real_market
from platform_tests.fakes.server import Fault

FIGURES = ("rows_written", "added", "updated", "delisted", "restored", "api_requests")


def materialize(path, market) -> dict:
    result = dg.materialize([asset_catalog], resources=resources_for(path, market))
    assert result.success
    (event,) = result.asset_materializations_for_node("asset_catalog")
    return {k: getattr(v, "value", v) for k, v in event.metadata.items()}


def figures(meta: dict) -> tuple:
    return tuple(meta[name] for name in FIGURES)


def test_the_demo_catalogue_and_a_refresh_that_writes_nothing(warehouse_file, tmp_path):
    market = real_market(tmp_path)
    assert figures(materialize(warehouse_file, market)) == (8, 8, 0, 0, 0, 0)
    again = materialize(warehouse_file, market)
    assert figures(again) == (0, 0, 0, 0, 0, 0)
    assert (again["entries_unchanged"], again["entries_active"]) == (8, 8)
    stored = rows(
        warehouse_file,
        "SELECT asset_id, asset_class, source, is_active, first_seen FROM asset_catalog "
        "WHERE asset_id IN ('BTC-USDT', 'GC=F') ORDER BY ALL",
    )
    assert stored == [
        ("BTC-USDT", "crypto", "demo", True, NOW),
        ("GC=F", "commodity", "demo", True, NOW),
    ]
    logged = rows(
        warehouse_file,
        "SELECT symbol, data_type, status, rows_fetched, rows_inserted FROM sync_log ORDER BY ALL",
    )
    assert logged == [
        ("demo", "asset_catalog", "success", 8, 0),
        ("demo", "asset_catalog", "success", 8, 8),
    ]


@pytest.fixture
def servers():
    demo = DemoMarket(clock=lambda: NOW)
    with FakeBinance(demo, pairs=exchange_pairs(8)) as binance, FakeCoinGecko(demo) as gecko:
        gecko.directory, gecko.ranks = coin_directory(40, ranked=40)
        yield binance, gecko


def test_a_source_down_during_a_refresh_keeps_its_entries(servers, warehouse_file, tmp_path):
    binance, gecko = servers
    market = real_market(
        tmp_path,
        crypto_source="ccxt",
        ccxt_api_url=binance.url,
        coingecko_api_url=gecko.url + "/api/v3",
        coingecko_rate_limit="1000/1",
    )
    first = materialize(warehouse_file, market)
    # 6 routable pairs, 36 coins (4 tickers shared), the demo's 5 stocks; 1 + 1 + 1 requests.
    assert figures(first) == (47, 47, 0, 0, 0, 3)
    binance.pairs.pop("X0000USDT")
    binance.pairs["X0009USDT"] = ("X0009", "USDT")
    gecko.faults.append(Fault("coins/list", 503, times=9, body={"error": "down"}))
    second = materialize(warehouse_file, market)
    assert figures(second) == (2, 1, 0, 1, 0, 1 + 4)  # 4 attempts at the coin list, counted
    assert second["entries_kept_for_failed_sources"] == 36
    assert "HTTP 503" in second["failed_sources"]["coingecko"]
    active = rows(
        warehouse_file,
        "SELECT source, count(*) FILTER (is_active), count(*) FILTER (NOT is_active) "
        "FROM asset_catalog GROUP BY ALL ORDER BY ALL",
    )
    assert active == [("ccxt:binance", 6, 1), ("coingecko", 36, 0), ("demo", 5, 0)]
    logged = rows(
        warehouse_file,
        "SELECT symbol, status, api_requests, rows_inserted, rows_updated FROM sync_log "
        "WHERE run_id = (SELECT run_id FROM sync_log ORDER BY started_at DESC LIMIT 1) "
        "ORDER BY symbol",
    )
    assert logged == [
        ("ccxt:binance", "success", 1, 1, 1),
        ("coingecko", "failed", 4, 0, 0),
        ("demo", "success", 0, 0, 0),
    ]
