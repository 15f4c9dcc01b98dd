"""API use per source and the units incremental syncs saved, on small sync logs."""

from __future__ import annotations

from datetime import timedelta

import duckdb

from platform_pkg.status.model import Usage
from platform_pkg.status.usage import usage
from platform_pkg.warehouse import sync_log
from platform_pkg.warehouse.sync_log import SyncEntry, SyncStatus
from platform_tests.status.conftest import NOW, H


def log(con, i, ago, *, inserted, fetched, requests, units, status=SyncStatus.SUCCESS):
    sync_log.save(
        con,
        SyncEntry(
            sync_id=f"s{i}", run_id="r", symbol="BTC-USDT", data_type="prices_1d",
            source="coingecko", started_at=NOW - ago, rows_fetched=fetched,
            rows_inserted=inserted, api_requests=requests, api_units=units, status=status,
        ),
    )  # fmt: skip


def test_a_sync_rereading_more_than_a_page_saves_negative_units():
    """90 rows in pages of 100: an export is one request; re-reading them in two costs more."""
    with duckdb.connect() as con:
        log(con, 1, 3 * H, inserted=90, fetched=100, requests=1, units=1.0)
        log(con, 2, 2 * H, inserted=0, fetched=150, requests=2, units=2.0)
        log(con, 3, 1 * H, inserted=1, fetched=1, requests=1, units=1.0)
        (day, week) = usage(con, NOW)
    # rates: page 100 rows, 1 unit a request; syncs 2 and 3: ⌈90/100⌉ and ⌈91/100⌉ requests
    assert day == Usage("coingecko", "24h", 3, 4, 4.0, 0, 0, 0, 2, 3.0, 2.0)
    assert day.units_saved == -1.0
    assert week == Usage("coingecko", "7d", 3, 4, 4.0, 0, 0, 0, 2, 3.0, 2.0)


def test_syncs_older_than_a_week_count_in_the_history_only():
    with duckdb.connect() as con:
        log(con, 1, timedelta(days=30), inserted=1000, fetched=1000, requests=1, units=1.0)
        log(con, 2, timedelta(days=8), inserted=5, fetched=5, requests=1, units=1.0)
        log(con, 3, timedelta(days=2), inserted=5, fetched=5, requests=1, units=1.0)
        (week,) = usage(con, NOW)
    assert week == Usage("coingecko", "7d", 1, 1, 1.0, 0, 0, 0, 1, 1.0, 2.0)  # ⌈1010/1000⌉


def test_a_sync_log_from_before_rows_deleted():
    with duckdb.connect() as con:
        con.execute(sync_log.DDL)
        con.execute(
            "INSERT INTO sync_log (sync_id, symbol, data_type, source, started_at, rows_inserted,"
            " rows_fetched, api_requests, api_units, status) VALUES"
            " ('a', 'X', 'prices_1h', 'demo', ?, 10, 10, 1, 1, 'success'),"
            " ('b', 'X', 'prices_1h', 'demo', ?, 1, 2, 1, 1, 'success')",
            [NOW - 2 * H, NOW - H],
        )
        (day, _) = usage(con, NOW)
    assert (day.incremental_syncs, day.full_export_units, day.units_saved) == (1, 2.0, 1.0)
