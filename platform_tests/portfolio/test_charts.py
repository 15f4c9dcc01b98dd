"""Charts for metadata: Markdown with an inline PNG of about 800 x 300 px, under 60 KB."""

import base64
import re
import struct

import numpy as np
import pandas as pd

from platform_pkg.charts import close_chart, value_chart

LIMIT = 60_000
_IMAGE = re.compile(r"^!\[(?P<alt>[^\]]*)\]\(data:image/png;base64,(?P<data>[A-Za-z0-9+/=]+)\)$")


def _png(markdown: str) -> tuple[str, bytes]:
    match = _IMAGE.match(markdown)
    assert match, markdown[:80]
    data = base64.b64decode(match["data"])
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return match["alt"], data


def _size(png: bytes) -> tuple[int, int]:
    return struct.unpack(">II", png[16:24])  # the IHDR chunk: width, height


def _closes(symbol: str, level: float, periods: int, freq: str = "h") -> pd.DataFrame:
    ts = pd.date_range("2025-01-01", periods=periods, freq=freq, tz="UTC")
    walk = np.cumprod(1 + np.random.default_rng(len(symbol)).normal(0, 0.01, periods))
    return pd.DataFrame({"symbol": symbol, "ts": ts, "close": level * walk})


def test_close_chart_of_one_symbol_is_a_small_png():
    alt, png = _png(close_chart(_closes("BTC-USDT", 90_000, 8_760), "BTC-USDT [1h]"))
    assert alt == "BTC-USDT (1h)"
    assert _size(png) == (800, 300)
    assert len(png) < LIMIT


def test_close_chart_of_symbols_on_similar_scales_shares_one_axis():
    frame = pd.concat([_closes("AAPL", 230, 500, "D"), _closes("MSFT", 410, 500, "D")])
    _, png = _png(close_chart(frame, "stocks"))
    assert _size(png) == (800, 300)
    assert len(png) < LIMIT


def test_close_chart_of_wildly_different_scales_uses_small_multiples():
    symbols = [("BTC-USDT", 90_000), ("SOL-USDT", 150), ("EURUSD=X", 1.1), ("AAPL", 230)]
    symbols += [("GC=F", 2_600)]
    frame = pd.concat([_closes(s, level, 2_000) for s, level in symbols])
    _, png = _png(close_chart(frame, "everything"))
    width, height = _size(png)
    assert width == 800 and height > 300  # a second row of panels
    assert len(png) < LIMIT


def test_close_chart_without_prices_says_so():
    empty = pd.DataFrame({"symbol": [], "ts": [], "close": []})
    assert close_chart(empty, "BTC-USDT") == "_BTC-USDT: no prices to chart_"


def test_value_chart_draws_total_and_accounts_with_gaps_for_unpriced_days():
    dates = pd.date_range("2021-01-01", periods=5 * 365, freq="D").date
    parts = []
    for account, level in (("*", 30_000.0), ("broker", 10_000.0), ("exchange", 20_000.0)):
        values = level * np.linspace(1, 2, len(dates))
        parts.append(pd.DataFrame({"date": dates, "account": account, "value": values}))
    frame = pd.concat(parts, ignore_index=True)
    frame.loc[frame.index[100:110], "value"] = np.nan
    alt, png = _png(value_chart(frame, "EUR"))
    assert alt == "Portfolio value (EUR)"
    assert _size(png) == (800, 300)
    assert len(png) < LIMIT


def test_value_chart_without_values_says_so():
    frame = pd.DataFrame({"date": [], "account": [], "value": []})
    assert value_chart(frame, "USD") == "_Portfolio value (USD): no values to chart_"
