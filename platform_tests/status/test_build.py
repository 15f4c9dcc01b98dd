"""The status built from a warehouse with known contents: every figure, exactly."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import duckdb

from platform_pkg.market.candles import PRICE_TABLES
from platform_pkg.status.build import ACCOUNT_DATA_TYPES, build
from platform_pkg.status.model import (
    Account,
    Anomaly,
    Deferred,
    Freshness,
    InstanceFacts,
    KnownGaps,
    Stale,
    Status,
    TrackedAsset,
    Usage,
)
from platform_pkg.warehouse import query
from platform_tests.status.conftest import MONDAY_20H, NOW, D, H

M = timedelta(minutes=1)
FACTS = InstanceFacts(failed_runs=(), symbol_partitions=("AAPL", "BTC-USDT", "XRP-USDT"))


def day(d: int) -> datetime:
    return datetime(2026, 11, d, tzinfo=UTC)


EXPECTED_USAGE = (
    # period, source, syncs, requests, units, 429 deferrals, budget stops, failed,
    # incremental syncs, their units, what full re-exports would have cost
    Usage("(none)", "24h", 1, 0, 0.0, 0, 0, 1, 0, 0.0, 0.0),
    # BTC 2 h ago: ⌈3026 / 1000⌉ × 2 = 8; the trades sync: ⌈10 / 10⌉ × 20 = 20
    Usage("ccxt:binance", "24h", 3, 3, 24.0, 1, 0, 0, 2, 22.0, 28.0, throttled=2),
    Usage("debank", "24h", 1, 1, 5.0, 0, 1, 0, 0, 0.0, 0.0),
    Usage("demo", "24h", 1, 1, 1.0, 0, 0, 0, 1, 1.0, 2.0),  # ⌈107 / 100⌉ × 1
    Usage("(none)", "7d", 1, 0, 0.0, 0, 0, 1, 0, 0.0, 0.0),
    # + BTC 3 days ago: ⌈3024 / 1000⌉ × 2 = 8; the trades' first sync is their export
    Usage("ccxt:binance", "7d", 5, 5, 46.0, 1, 0, 0, 3, 24.0, 36.0, throttled=2),
    # the wallet's second sync: ⌈41 / 20⌉ × 5 = 15 (its first is the export, its third stopped)
    Usage("debank", "7d", 3, 4, 20.0, 0, 1, 0, 1, 5.0, 15.0),
    Usage("demo", "7d", 1, 1, 1.0, 0, 0, 0, 1, 1.0, 2.0),
)


def expected(size: int | None) -> Status:
    return Status(
        now=NOW,
        market_now=NOW,
        tracked=(
            TrackedAsset("AAPL", "stock", True, 1, NOW - 3 * H),
            TrackedAsset("BTC-USDT", "crypto", True, 2, NOW - 10 * M),
            TrackedAsset("ETH-USDT", "crypto", True, 1, NOW - 6 * H),
            TrackedAsset("EURUSD=X", "fx", True, 1, None),
            TrackedAsset("SOL-USDT", "crypto", False, 0, NOW - 9 * D),
        ),
        accounts=(
            Account("binance-main", True, 1, 2, NOW - 5 * D, NOW - 29 * M),
            Account("ledger-eth", False, 0, 0, None, NOW - D - H + M),
            Account("manual", True, 1, 1, NOW - 30 * D, None),
            Account("old-broker", False, 0, 1, NOW - 60 * D, None),
        ),
        freshness=(
            Freshness("(no candle yet)", "prices_1d", 1, 1, None, None, None),
            Freshness("ccxt:binance", "prices_1d", 2, 1, day(23), "ETH-USDT", day(20)),
            Freshness("demo", "prices_1d", 1, 0, day(23), "AAPL", day(23)),
            Freshness("(no candle yet)", "prices_1h", 1, 1, None, None, None),
            Freshness("ccxt:binance", "prices_1h", 2, 1, NOW - 30 * M, "ETH-USDT", NOW - 5.5 * H),
            Freshness("demo", "prices_1h", 1, 0, MONDAY_20H, "AAPL", MONDAY_20H),
        ),
        stale=(
            Stale("ETH-USDT", "prices_1d", "ccxt:binance", "24/7", day(20), day(21)),
            Stale("EURUSD=X", "prices_1d", "(no candle yet)", "FX 24x5", None, day(20)),
            Stale("ETH-USDT", "prices_1h", "ccxt:binance", "24/7", NOW - 5.5 * H, NOW - 3.5 * H),
            Stale("EURUSD=X", "prices_1h", "(no candle yet)", "FX 24x5", None, NOW - 3.5 * H),
        ),
        deferred=(
            Deferred(
                "SOL-USDT",
                "prices_1d",
                "ccxt:binance",
                None,
                NOW - 5 * H,
                NOW - H,
                "HTTP 418, Retry-After 14400 s",
            ),
            Deferred(
                "ETH-USDT",
                "prices_1h",
                "ccxt:binance",
                "rate_limited",
                NOW - H,
                NOW + 30 * M,
                "HTTP 429, Retry-After 1800 s",
            ),
            Deferred(
                "ledger-eth",
                "onchain",
                "debank",
                "budget_exhausted",
                NOW - 2 * H,
                day(25),
                "the DeBank units budget of 20 units a day is spent",
            ),
        ),
        usage=EXPECTED_USAGE,
        known_gaps=(
            KnownGaps("prices_1d", "stopped_early", 1, 1, 1),
            KnownGaps("prices_1h", "no_candle", 2, 5, 2),
        ),
        unreviewed_anomalies=2,
        anomalies=(
            Anomaly("a2", "ETH-USDT", "prices_1h", NOW - D, -0.55),
            Anomaly("a1", "BTC-USDT", "prices_1h", NOW - 2 * D, 0.6),
        ),
        warehouse_bytes=size,
        instance=FACTS,
    )


def test_every_figure_of_a_known_warehouse(known_warehouse):
    with query.open_read_only(known_warehouse) as con:
        status = build(con, NOW, instance=FACTS)
    assert status == expected(os.path.getsize(known_warehouse))
    assert status.untracked_partitions == ("XRP-USDT",)
    assert status.active_symbols == 4
    assert [u.units_saved for u in status.usage_of("7d")] == [0.0, 12.0, 10.0, 1.0]


def test_an_empty_warehouse_is_all_zero():
    with duckdb.connect() as con:
        status = build(con, NOW)
    assert (status.tracked, status.accounts, status.freshness, status.usage) == ((), (), (), ())
    assert (status.deferred, status.known_gaps, status.unreviewed_anomalies) == ((), (), 0)
    assert status.warehouse_bytes is None
    assert status.instance.failed_runs is None and status.instance.note


def test_candles_are_judged_by_the_market_clock(known_warehouse):
    """A frozen market clock ($PLATFORM_NOW) a day back: nothing was due yet but EURUSD=X."""
    with query.open_read_only(known_warehouse) as con:
        status = build(con, NOW, market_now=datetime(2026, 11, 22, 12, tzinfo=UTC))
    assert {(s.symbol, s.data_type) for s in status.stale} == {
        ("EURUSD=X", "prices_1h"),
        ("EURUSD=X", "prices_1d"),
    }
    assert status.usage == EXPECTED_USAGE  # sync_log keeps wall-clock times


def test_the_freshness_verdicts_match_the_freshness_check(known_warehouse):
    """The status judges as prices.quality.freshness does (which imports Dagster, so the CLI
    cannot call it); a drift between the two fails here."""
    from platform_pkg.market.calendars import calendar_for
    from platform_pkg.market.candles import interval_delta
    from platform_pkg.portfolio import tracked
    from platform_pkg.prices import quality
    from platform_pkg.status.build import GRACE_CANDLES

    with query.open_read_only(known_warehouse) as con:
        status = build(con, NOW)
        for table, interval in PRICE_TABLES:
            finding = quality.freshness(
                con,
                table,
                interval,
                tracked.active_symbols(con),
                lambda s, c: calendar_for(s, c, "demo" if s == "AAPL" else None),
                NOW,
                interval_delta(interval) * GRACE_CANDLES,
            )
            mine = sorted(s.symbol for s in status.stale if s.data_type == table)
            assert sorted(r["symbol"] for r in finding.sample) == mine


def test_the_data_types_are_the_platforms():
    from platform_pkg.portfolio.tracking import PRICE_ASSETS
    from platform_pkg.trades.paging import NEWEST as TRADES
    from platform_pkg.wallets.ingest import NEWEST as ONCHAIN

    assert sorted(PRICE_TABLES) == sorted(PRICE_ASSETS)
    assert ACCOUNT_DATA_TYPES == (TRADES, ONCHAIN)
