"""The market resource: routing by asset class, settings read at run time, secrets kept out."""

from __future__ import annotations

import dagster as dg

from platform_pkg.market.ccxt_source import CcxtSource
from platform_pkg.market.coingecko import CoinGeckoSource
from platform_pkg.market.demo import DemoMarket
from platform_pkg.market.fallback import FallbackSource
from platform_pkg.market.resources import MarketData
from platform_pkg.market.source import RequestMeter
from platform_pkg.market.yahoo import YahooSource


def test_the_demo_market_serves_everything_by_default():
    market = MarketData()
    for symbol in ("BTC-USDT", "AAPL", "EURUSD=X", "GC=F"):
        assert isinstance(market.source_for(symbol, RequestMeter()), DemoMarket)


def test_variables_are_read_when_a_source_is_built_not_before(monkeypatch, tmp_path):
    market = MarketData()  # built first, as the definitions are
    monkeypatch.setenv("PLATFORM_CRYPTO_SOURCE", "ccxt")
    monkeypatch.setenv("PLATFORM_STOCK_SOURCE", "yfinance")
    monkeypatch.setenv("PLATFORM_RATE_LIMIT_DIR", str(tmp_path))
    crypto = market.source_for("BTC-USDT", RequestMeter())
    assert isinstance(crypto, FallbackSource)
    assert isinstance(crypto.primary, CcxtSource) and isinstance(crypto.fallback, CoinGeckoSource)
    assert isinstance(market.source_for("SPY", RequestMeter()), YahooSource)
    assert isinstance(market.source_for("GC=F", RequestMeter()), YahooSource)
    monkeypatch.setenv("PLATFORM_CRYPTO_FALLBACK", "none")
    assert isinstance(market.source_for("ETH-USDT", RequestMeter()), CcxtSource)
    monkeypatch.setenv("PLATFORM_CRYPTO_SOURCE", "coingecko")
    assert isinstance(market.source_for("ETH-USDT", RequestMeter()), CoinGeckoSource)


def test_secrets_stay_out_of_reprs(monkeypatch, tmp_path):
    monkeypatch.setenv("PLATFORM_CCXT_API_SECRET", "ENV-SECRET")
    market = MarketData(
        crypto_source="ccxt",
        ccxt_api_key="FIELD-KEY",
        coingecko_api_key="CG-KEY",
        state_dir=str(tmp_path),
    )
    source = market.source_for("BTC-USDT", RequestMeter())
    text = repr(market) + str(market) + repr(source) + repr(market.settings())
    for secret in ("FIELD-KEY", "ENV-SECRET", "CG-KEY"):
        assert secret not in text


def test_keys_can_come_from_dagster_env_vars(monkeypatch, tmp_path):
    monkeypatch.setenv("MY_KEY", "FROM-ENVVAR")

    @dg.asset
    def probe(market: MarketData) -> None:
        assert market.settings().ccxt_api_key == "FROM-ENVVAR"

    resource = MarketData(ccxt_api_key=dg.EnvVar("MY_KEY"), state_dir=str(tmp_path))
    assert dg.materialize([probe], resources={"market": resource}).success
