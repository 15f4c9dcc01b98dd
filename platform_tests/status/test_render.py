"""The status as figures (what the UI plots), Markdown (the asset's summary) and terminal text."""

from __future__ import annotations

import os
from dataclasses import replace

from platform_pkg.status import render
from platform_pkg.status.model import FailedRun, InstanceFacts
from platform_tests.status.conftest import NOW, H
from platform_tests.status.test_build import expected

RUN = FailedRun("0123456789abcdef", "prices_job", NOW - H, "schedule intraday_refresh", "boom")


def test_every_figure_by_name(known_warehouse):
    facts = InstanceFacts((RUN,), 3, ("AAPL", "XRP-USDT"), 12345)
    status = replace(expected(os.path.getsize(known_warehouse)), instance=facts)
    by_source = {
        f"{name}_{period}/{source}": value
        for period, rows in {
            "24h": {"(none)": (0, 0.0, 0, 0, 0, 0.0), "ccxt:binance": (3, 24.0, 2, 1, 0, 6.0)}
            | {"debank": (1, 5.0, 0, 0, 1, 0.0), "demo": (1, 1.0, 0, 0, 0, 1.0)},
            "7d": {"(none)": (0, 0.0, 0, 0, 0, 0.0), "ccxt:binance": (5, 46.0, 2, 1, 0, 12.0)}
            | {"debank": (4, 20.0, 0, 0, 1, 10.0), "demo": (1, 1.0, 0, 0, 0, 1.0)},
        }.items()
        for source, values in rows.items()
        for name, value in zip(
            ("requests", "units", "throttled", "rate_limited", "budget_exhausted", "units_saved"),
            values,
            strict=True,
        )
    }
    assert render.figures(status) == {
        "tracked_active": 4,
        "tracked_inactive": 1,
        "accounts_active": 2,
        "accounts_inactive": 2,
        "stale_symbols": 4,
        "symbol_partitions": 2,
        "untracked_partitions": 1,
        "stale/prices_1h/(no candle yet)": 1,
        "stale/prices_1h/ccxt:binance": 1,
        "stale/prices_1h/demo": 0,
        "stale/prices_1d/(no candle yet)": 1,
        "stale/prices_1d/ccxt:binance": 1,
        "stale/prices_1d/demo": 0,
        "deferred_fetches": 3,
        "budget_blocked": 1,
        "failed_runs_24h": 3,
        "requests_24h": 5,
        "units_24h": 30.0,
        "rate_limited_24h": 1,
        "throttled_24h": 2,
        "units_saved_24h": 7.0,
        "requests_7d": 10,
        "units_7d": 67.0,
        "rate_limited_7d": 1,
        "throttled_7d": 2,
        "units_saved_7d": 23.0,
        **by_source,
        "known_gaps": 3,
        "known_gap_candles": 6,
        "unreviewed_anomalies": 2,
        "warehouse_bytes": os.path.getsize(known_warehouse),
        "instance_bytes": 12345,
    }
    text = render.text(status)
    assert "Failed runs in the last 24 h: 3 (the newest 1 listed)" in text
    assert "01234567  prices_job  2026-11-24 09:30  schedule intraday_refresh  boom" in text
    assert "4 active, 1 inactive; 2 symbol partitions, 1 not tracked (XRP-USDT)" in text


def test_the_markdown_summary_has_every_section(known_warehouse):
    markdown = render.markdown(expected(os.path.getsize(known_warehouse)))
    titles = [line.removeprefix("#### ") for line in markdown.splitlines() if line[:5] == "#### "]
    assert titles == [
        "Tracked assets",
        "Accounts",
        "Freshness",
        "Stale symbols",
        "Deferred fetches",
        "Failed runs in the last 24 h",
        "API use (sync_log)",
        "Known gaps",
        "Unreviewed anomalies",
        "Sizes",
    ]
    assert "| 7d | ccxt:binance | 5 | 5 | 46 | 2 | 1 | 0 | 0 | 3 | 24 | 36 | 12 |" in markdown
    stale = "| ETH-USDT | prices_1h | ccxt:binance | 24/7 | 2026-11-24 05:00 | 2026-11-24 07:00 |"
    assert stale in markdown


def test_unknown_figures_are_left_out_not_zero():
    import duckdb

    from platform_pkg.status.build import build

    with duckdb.connect() as con:
        figures = render.figures(build(con, NOW))
    assert not {"failed_runs_24h", "symbol_partitions", "warehouse_bytes"} & set(figures)
    assert figures["requests_7d"] == 0 and figures["stale_symbols"] == 0
