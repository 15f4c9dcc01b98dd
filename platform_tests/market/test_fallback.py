"""The fallback source: takes over the rest of a window once the primary gives up, not before."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import pytest

from platform_pkg.market.demo import DemoMarket
from platform_pkg.market.fallback import FallbackSource
from platform_pkg.market.retry import SourceDeferred, SourceUnavailable
from platform_pkg.market.source import RequestMeter, UnknownSymbolError, paginate
from platform_tests.conftest import NOW

START = NOW - timedelta(days=5)


class Failing(DemoMarket):
    """The demo market, whose requests from the n-th on raise ``error``."""

    def __init__(self, fail_from: int, error: Exception, **kw):
        super().__init__(clock=lambda: NOW, page_limit=24, **kw)
        self.fail_from, self.error = fail_from, error

    def fetch_page(self, symbol, interval, start, end):
        if self.meter.requests[self.name] + 1 >= self.fail_from:
            self.meter.count(self.name)
            raise self.error
        return super().fetch_page(symbol, interval, start, end)


def pair(fail_from, error):
    meter = RequestMeter()
    primary = Failing(fail_from, error, meter=meter, name="primary")
    backup = DemoMarket(clock=lambda: NOW, page_limit=1000, meter=meter, name="backup")
    return FallbackSource(primary, backup)


def test_the_fallback_serves_the_rest_of_the_window_once_the_primary_gives_up():
    src = pair(3, SourceUnavailable("primary", "primary: gave up after 5 attempts"))
    pages = list(paginate(src, "BTC-USDT", "1h", START, NOW, NOW))
    got = pd.concat(pages, ignore_index=True)
    want = DemoMarket(clock=lambda: NOW).candles("BTC-USDT", "1h", START, NOW)
    assert list(got["ts"]) == list(want["ts"])
    assert got["source"].tolist() == ["primary"] * 48 + ["backup"] * (len(want) - 48)
    assert src.name == "primary → backup" and "gave up" in src.cause
    assert src.switched_at == START + timedelta(hours=48, minutes=30)  # first candle 11:00
    assert src.meter.requests == {"primary": 3, "backup": 1}  # no going back to the primary


@pytest.mark.parametrize(
    "error",
    [SourceDeferred("primary", NOW, "HTTP 418"), UnknownSymbolError("primary does not list it")],
)
def test_a_long_cooldown_or_an_unlisted_pair_is_not_a_reason_to_fall_back(error):
    src = pair(1, error)
    with pytest.raises(type(error)):
        list(paginate(src, "BTC-USDT", "1h", START, NOW, NOW))
    assert src.switched_at is None and src.meter.requests["backup"] == 0


class NoMarkets(DemoMarket):
    def earliest(self, symbol, interval):
        raise SourceUnavailable("primary", "primary: loading markets: gave up after 5 attempts")


def test_a_primary_that_cannot_even_load_its_markets_hands_over_at_once():
    meter = RequestMeter()
    src = FallbackSource(
        NoMarkets(clock=lambda: NOW, meter=meter, name="primary"),
        DemoMarket(clock=lambda: NOW, meter=meter, name="backup"),
    )
    assert src.earliest("SOL-USDT", "1h") == DemoMarket().earliest("SOL-USDT", "1h")
    assert src.name == "primary → backup"
    page = src.fetch_page("SOL-USDT", "1h", START, NOW)
    assert set(page["source"]) == {"backup"} and meter.requests == {"backup": 1}
