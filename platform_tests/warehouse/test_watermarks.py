"""Watermarks: coverage grows contiguously, cursors only move further, guarded moves catch races."""

from datetime import UTC, datetime, timedelta

import duckdb
import pytest

from platform_pkg.warehouse import watermarks
from platform_pkg.warehouse.watermarks import (
    Coverage,
    Cursor,
    CursorMove,
    Order,
    Segment,
    WatermarkConflict,
    advance,
    merge,
)

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


def cursor_move(last_id: str | None, hour: int = 0, **how) -> CursorMove:
    return CursorMove("acct:BTC-USDT", "exchange_trades", Cursor(last_id, t(hour)), **how)


def test_integer_ids_compare_as_integers_not_as_strings():
    assert advance(Cursor("9", t(0)), cursor_move("10")) == Cursor("10", t(0))
    assert advance(Cursor("999999999", t(0)), cursor_move("3000000001")).last_id == "3000000001"
    assert advance(Cursor("3000000001", t(0)), cursor_move("999999999")).last_id == "3000000001"


def test_a_cursor_never_moves_back_and_an_unmoved_one_is_not_rewritten():
    con = duckdb.connect()
    watermarks.apply(con, [cursor_move("10", 5)], now=t(50))
    after = watermarks.apply(con, [cursor_move("9", 9), cursor_move("10", 9)], now=t(60))
    assert after == {("acct:BTC-USDT", "exchange_trades"): Cursor("10", t(5))}
    stored = con.execute("SELECT last_id, last_timestamp, updated_at FROM ingestion_state")
    assert stored.fetchall() == [("10", t(5), t(50))]


def test_an_oldest_watermark_only_moves_to_older_positions():
    oldest = Cursor("100", t(10))
    assert advance(oldest, cursor_move("50", forward=False)).last_id == "50"
    assert advance(oldest, cursor_move("150", forward=False)) == oldest
    by_time = cursor_move("1", 5, order=Order.TIME, forward=False)
    assert advance(oldest, by_time) == Cursor("1", t(5))


def test_force_sets_the_cursor_as_given():
    assert advance(Cursor("10", t(9)), cursor_move("3", 1, force=True)) == Cursor("3", t(1))


def test_time_order_compares_times_then_ids():
    current = Cursor("500", t(5))
    assert advance(current, cursor_move("1", 6, order=Order.TIME)) == Cursor("1", t(6))
    assert advance(current, cursor_move("900", 4, order=Order.TIME)) == current
    assert advance(current, cursor_move("501", 5, order=Order.TIME)) == Cursor("501", t(5))
    assert advance(None, cursor_move(None, 1, order=Order.TIME)) == Cursor(None, t(1))


def test_a_guarded_move_refuses_a_watermark_moved_by_someone_else():
    con = duckdb.connect()
    first = cursor_move("10", 1, guarded=True, expected=None)
    assert (
        watermarks.apply(con, [first], now=t(50))[first.asset_id, first.data_type].last_id == "10"
    )
    stale = cursor_move("20", 2, guarded=True, expected=Cursor("7", t(0)))
    with pytest.raises(WatermarkConflict) as raised:
        watermarks.apply(con, [stale], now=t(60))
    assert str(raised.value) == (
        "acct:BTC-USDT exchange_trades is at 10, not at 7 as when this build read its inputs: "
        "another build committed in between; nothing was written, build again"
    )
    assert watermarks.read_cursor(con, "acct:BTC-USDT", "exchange_trades") == Cursor("10", t(1))
    fresh = cursor_move("20", 2, guarded=True, expected=Cursor("10", t(1)))
    watermarks.apply(con, [fresh], now=t(60))
    assert watermarks.read_cursor(con, "acct:BTC-USDT", "exchange_trades") == Cursor("20", t(2))
