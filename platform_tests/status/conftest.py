"""A warehouse with known contents, written through the platform's own tables and writers."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from platform_pkg.market.candles import PRICE_KEY, PRICE_TABLE_COLUMNS
from platform_pkg.portfolio import tracked
from platform_pkg.portfolio.tables import HOLDING_COLUMNS, HOLDING_KEY
from platform_pkg.prices import anomalies, gaps
from platform_pkg.warehouse import deferrals, sync_log, watermarks
from platform_pkg.warehouse.sync_log import SyncEntry, SyncStatus
from platform_pkg.warehouse.upsert import TableSpec, ensure_table, upsert

NOW = datetime(2026, 11, 24, 10, 30, tzinfo=UTC)  # a Tuesday
H, D = timedelta(hours=1), timedelta(days=1)
MONDAY_20H = datetime(2026, 11, 23, 20, tzinfo=UTC)


def _frame(spec: TableSpec, records: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame.from_records(records, columns=list(spec.columns))
    for col, typ in spec.columns.items():
        if typ == "TIMESTAMPTZ":
            frame[col] = pd.to_datetime(frame[col], utc=True)
    return frame


def _write(con, spec: TableSpec, records: list[dict]) -> None:
    ensure_table(con, spec)
    upsert(con, spec, _frame(spec, records))


def _tracked(con) -> None:
    rows = [
        ("AAPL", "stock", True, 1, NOW - 3 * H),
        ("BTC-USDT", "crypto", True, 2, NOW - 10 * timedelta(minutes=1)),
        ("ETH-USDT", "crypto", True, 1, NOW - 6 * H),
        ("EURUSD=X", "fx", True, 1, None),
        ("SOL-USDT", "crypto", False, 0, NOW - 9 * D),
    ]
    _write(
        con,
        tracked.SPEC,
        [
            {"asset_id": a, "asset_class": c, "is_active": on, "tracking_users": n}
            | {"last_price_update": ts, "updated_at": NOW - H}
            for a, c, on, n, ts in rows
        ],
    )


def _holdings(con) -> None:
    spec = TableSpec("holdings", tuple(HOLDING_KEY), HOLDING_COLUMNS)
    rows = [
        ("binance-main", "BTC-USDT", True, NOW - 5 * D),
        ("binance-main", "SOL-USDT", False, NOW - 9 * D),
        ("manual", "AAPL", True, NOW - 30 * D),
        ("old-broker", "ETH-USDT", False, NOW - 60 * D),
    ]
    _write(
        con,
        spec,
        [
            {"account": a, "symbol": s, "quantity": 1.0 if is_open else 0.0, "is_open": is_open}
            | {"last_transaction_at": last, "transactions": 1, "computed_at": NOW - H}
            for a, s, is_open, last in rows
        ],
    )


def _prices(con) -> None:
    """The candle at each active symbol's newest watermark (its source decides the calendar)."""
    candles = {
        "prices_1h": [
            ("BTC-USDT", NOW - 30 * timedelta(minutes=1), "ccxt:binance"),  # 10:00
            ("ETH-USDT", NOW - 5.5 * H, "ccxt:binance"),  # 05:00: stale (07:00 is due)
            ("AAPL", MONDAY_20H, "demo"),  # the demo session's last hour: fresh
            ("SOL-USDT", NOW - 9 * D, "ccxt:binance"),  # inactive: not judged
        ],
        "prices_1d": [
            ("BTC-USDT", datetime(2026, 11, 23, tzinfo=UTC), "ccxt:binance"),
            ("ETH-USDT", datetime(2026, 11, 20, tzinfo=UTC), "ccxt:binance"),  # 11-21 is due
            ("AAPL", datetime(2026, 11, 23, tzinfo=UTC), "demo"),
        ],
    }
    watermarks.ensure(con)
    for table, rows in candles.items():
        spec = TableSpec(table, tuple(PRICE_KEY), PRICE_TABLE_COLUMNS)
        records = [
            {"symbol": s, "ts": ts, "open": 1.0, "high": 1.0, "low": 1.0, "close": 1.0}
            | {"volume": 1.0, "source": src, "is_final": True, "fetched_at": NOW - H}
            for s, ts, src in rows
        ]
        # An older candle of each, which the freshness join must not pick.
        records += [r | {"ts": r["ts"] - 3 * D, "source": "old"} for r in records]
        _write(con, spec, records)
        for symbol, ts, _ in rows:
            watermarks.write(con, symbol, table, last_timestamp=ts, now=NOW)
            watermarks.write(con, symbol, table + "_oldest", last_timestamp=ts - 3 * D, now=NOW)


# (ago, symbol, data_type, source, status, rows_fetched, inserted, deleted, requests, units, run)
SYNCS = [
    (20 * D, "BTC-USDT", "prices_1h", "ccxt:binance", "success", 3000, 3000, 0, 3, 6.0, "r1"),
    (3 * D, "BTC-USDT", "prices_1h", "ccxt:binance", "success", 25, 24, 0, 1, 2.0, "r2"),
    (2 * H, "BTC-USDT", "prices_1h", "ccxt:binance", "success", 4, 2, 0, 1, 2.0, "r3"),
    (20 * D, "ETH-USDT", "prices_1h", "ccxt:binance", "success", 1500, 1500, 0, 2, 4.0, "r1"),
    (1 * H, "ETH-USDT", "prices_1h", "ccxt:binance", "rate_limited", 0, 0, 0, 1, 2.0, "run-eth"),
    (10 * D, "AAPL", "prices_1h", "demo", "success", 100, 100, 0, 1, 1.0, "r4"),
    (1 * H, "AAPL", "prices_1h", "demo", "success", 7, 7, 0, 1, 1.0, "r5"),
    (3 * H, "MSFT", "prices_1d", None, "failed", 0, 0, 0, 0, 0.0, "r6"),
    (6 * D, "binance-main:BTC-USDT", "trades", "ccxt:binance", "success", 10, 10, 0, 1, 20.0, "t1"),
    (30 * timedelta(minutes=1), "binance-main:BTC-USDT", "trades", "ccxt:binance", "success")
    + (0, 0, 0, 1, 20.0, "t2"),
    (5 * D, "ledger-eth", "onchain", "debank", "success", 40, 40, 0, 2, 10.0, "w1"),
    (D + H, "ledger-eth", "onchain", "debank", "success", 20, 2, 1, 1, 5.0, "w2"),
    (2 * H, "ledger-eth", "onchain", "debank", "budget_exhausted", 3, 3, 0, 1, 5.0, "run-wallet"),
]


def _sync_log(con) -> None:
    for i, row in enumerate(SYNCS):
        ago, symbol, data_type, source, status, fetched, ins, dele, req, units, run = row
        started = NOW - ago
        sync_log.save(
            con,
            SyncEntry(
                sync_id=f"s{i:02d}",
                run_id=run,
                symbol=symbol,
                data_type=data_type,
                source=source,
                started_at=started,
                finished_at=started + timedelta(minutes=1),
                rows_fetched=fetched,
                rows_inserted=ins,
                rows_deleted=dele,
                api_requests=req,
                api_units=units,
                # The deferred fetch met two 429s: the first waited out, the second too long.
                api_throttled=2 if status == "rate_limited" else 0,
                status=SyncStatus(status),
            ),
        )


def _deferred(con) -> None:
    rows = [
        ("ETH-USDT", "prices_1h", "ccxt:binance", NOW - H, NOW + 30 * timedelta(minutes=1))
        + ("HTTP 429, Retry-After 1800 s", "run-eth"),
        ("ledger-eth", "onchain", "debank", NOW - 2 * H, datetime(2026, 11, 25, tzinfo=UTC))
        + ("the DeBank units budget of 20 units a day is spent", "run-wallet"),
        ("SOL-USDT", "prices_1d", "ccxt:binance", NOW - 5 * H, NOW - H)
        + ("HTTP 418, Retry-After 14400 s", "run-old"),
    ]
    for symbol, data_type, source, at, retry, reason, run in rows:
        deferral = deferrals.Deferral(symbol, data_type, source, retry, at, at, reason, run)
        ensure_table(con, deferrals.SPEC)
        upsert(con, deferrals.SPEC, deferral.row(at))


def _gaps_and_anomalies(con) -> None:
    gap_rows = [
        ("BTC-USDT", "prices_1h", NOW - 4 * D, 3, "no_candle"),
        ("ETH-USDT", "prices_1h", NOW - 4 * D, 2, "no_candle"),
        ("AAPL", "prices_1d", NOW - 8 * D, 1, "stopped_early"),
    ]
    _write(
        con,
        gaps.SPEC,
        [
            {"symbol": s, "data_type": dt, "gap_start": start, "gap_end": start + n * H}
            | {"candles": n, "reason": reason, "source": "ccxt:binance", "first_seen": NOW - D}
            for s, dt, start, n, reason in gap_rows
        ],
    )
    anomaly_rows = [
        ("a1", "BTC-USDT", NOW - 2 * D, 0.6, None),
        ("a2", "ETH-USDT", NOW - 1 * D, -0.55, None),
        ("a3", "AAPL", NOW - 3 * D, 0.7, NOW - D),  # reviewed
    ]
    _write(
        con,
        anomalies.SPEC,
        [
            {"anomaly_id": i, "symbol": s, "data_type": "prices_1h", "ts": ts, "change": change}
            | {"prev_close": 1.0, "close": 1.0 + change, "threshold": 0.5, "detected_at": NOW}
            | {"reviewed_at": reviewed}
            for i, s, ts, change, reviewed in anomaly_rows
        ],
    )


def build_known(path: Path) -> Path:
    con = duckdb.connect(str(path))
    con.execute("SET TimeZone = 'UTC'")
    for part in (_tracked, _holdings, _prices, _sync_log, _deferred, _gaps_and_anomalies):
        part(con)
    con.close()
    return path


@pytest.fixture(scope="session")
def _known_template(tmp_path_factory) -> Path:
    return build_known(tmp_path_factory.mktemp("status") / "known.duckdb")


@pytest.fixture
def known_warehouse(_known_template, warehouse_file) -> Path:
    """A copy of the known warehouse at ``$PLATFORM_WAREHOUSE`` (the root conftest's file)."""
    shutil.copyfile(_known_template, warehouse_file)
    return warehouse_file
