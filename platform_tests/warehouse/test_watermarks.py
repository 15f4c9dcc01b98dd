"""Watermarks: coverage only grows contiguously and commits with the data it describes."""

from datetime import UTC, datetime, timedelta

import duckdb

from platform_pkg.warehouse import watermarks
from platform_pkg.warehouse.watermarks import Coverage, Segment, merge

H = timedelta(hours=1)


def t(hour: int) -> datetime:
    return datetime(2026, 1, 1, tzinfo=UTC) + hour * H


def test_first_segment_starts_the_coverage():
    assert merge(None, Segment(t(0), t(10), t(9)), H) == Coverage(t(0), t(9))


def test_an_empty_first_segment_records_nothing():
    assert merge(None, Segment(t(0), t(10), None), H) is None


def test_newer_segment_extends_the_newest_watermark():
    assert merge(Coverage(t(0), t(9)), Segment(t(7), t(20), t(19)), H) == Coverage(t(0), t(19))


def test_older_segment_moves_the_oldest_only_once_it_reaches_the_coverage():
    current = Coverage(t(100), t(200))
    assert merge(current, Segment(t(0), t(50), t(49)), H) == current
    assert merge(current, Segment(t(0), t(100), t(99)), H) == Coverage(t(0), t(200))


def test_a_segment_beyond_a_gap_is_not_claimed():
    current = Coverage(t(0), t(9))
    assert merge(current, Segment(t(20), t(30), t(29)), H) == current


def test_commit_segment_writes_both_rows_in_the_callers_transaction():
    con = duckdb.connect()
    con.execute("BEGIN")
    watermarks.commit_segment(con, "BTC-USDT", "prices_1h", Segment(t(0), t(10), t(9)), H, t(50))
    con.execute("ROLLBACK")
    assert watermarks.read_coverage(con, "BTC-USDT", "prices_1h") is None
    watermarks.commit_segment(con, "BTC-USDT", "prices_1h", Segment(t(0), t(10), t(9)), H, t(50))
    rows = con.execute("SELECT data_type FROM ingestion_state ORDER BY 1").fetchall()
    assert rows == [("prices_1h",), ("prices_1h_oldest",)]
    assert watermarks.read_coverage(con, "BTC-USDT", "prices_1h") == Coverage(t(0), t(9))


def test_coverages_of_many_pairs_come_in_one_read():
    con = duckdb.connect()
    watermarks.commit_segment(con, "BTC-USDT", "prices_1h", Segment(t(0), t(10), t(9)), H, t(50))
    watermarks.commit_segment(con, "ETH-USDT", "prices_1d", Segment(t(24), t(48), t(24)), H, t(50))
    # A newest watermark without its oldest (a cursor-style row) is no coverage.
    watermarks.write(con, "SOL-USDT", "prices_1h", now=t(50), last_timestamp=t(5))
    got = watermarks.read_coverages(
        con, ["BTC-USDT", "ETH-USDT", "SOL-USDT", "AAPL"], ["prices_1h", "prices_1d"]
    )
    assert got == {
        ("BTC-USDT", "prices_1h"): Coverage(t(0), t(9)),
        ("BTC-USDT", "prices_1d"): None,
        ("ETH-USDT", "prices_1h"): None,
        ("ETH-USDT", "prices_1d"): Coverage(t(24), t(24)),
        ("SOL-USDT", "prices_1h"): None,
        ("SOL-USDT", "prices_1d"): None,
        ("AAPL", "prices_1h"): None,
        ("AAPL", "prices_1d"): None,
    }
    assert watermarks.read_coverages(con, [], ["prices_1h"]) == {}
