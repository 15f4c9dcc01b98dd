"""Read-only queries: the file cannot change, a writer's lock is waited out or named, results render."""

import json
import time

import duckdb
import pytest

from platform_pkg.warehouse.query import (
    Format,
    LockHolder,
    QueryResult,
    WarehouseBusyError,
    WarehouseMissingError,
    omitted_note,
    open_read_only,
    render,
    run_query,
)
from platform_tests.warehouse.test_connection import hold_lock


@pytest.fixture
def warehouse(warehouse_file):
    con = duckdb.connect(str(warehouse_file))
    con.execute("CREATE TABLE t (x INT)")
    con.execute("CREATE TABLE prices (symbol VARCHAR, close DOUBLE, note VARCHAR)")
    con.execute(
        "INSERT INTO prices VALUES ('BTC-USDT', 64000.5, NULL), ('AAPL', 190.25, 'two\nlines')"
    )
    con.execute("INSERT INTO t SELECT range FROM range(25)")
    con.close()
    return warehouse_file


def query(path, sql, max_rows=1000):
    with open_read_only(path, wait_seconds=5) as con:
        return run_query(con, sql, max_rows=max_rows)


def test_a_query_renders_as_an_aligned_table(warehouse):
    result = query(warehouse, "SELECT symbol, close, note FROM prices ORDER BY close DESC")
    assert render(result, Format.TABLE) == (
        "symbol      close  note\n"
        "--------  -------  ----------\n"
        "BTC-USDT  64000.5  NULL\n"
        "AAPL       190.25  two\\nlines\n"
        "(2 rows)\n"
    )


def test_csv_and_json_keep_values_whole(warehouse):
    result = query(warehouse, "SELECT symbol, close, note FROM prices ORDER BY close DESC")
    assert render(result, Format.CSV) == (
        'symbol,close,note\nBTC-USDT,64000.5,\nAAPL,190.25,"two\nlines"\n'
    )
    assert json.loads(render(result, Format.JSON)) == [
        {"symbol": "BTC-USDT", "close": 64000.5, "note": None},
        {"symbol": "AAPL", "close": 190.25, "note": "two\nlines"},
    ]


def test_rows_past_the_limit_are_counted_not_shown(warehouse):
    result = query(warehouse, "SELECT x FROM t ORDER BY x", max_rows=10)
    assert result.rows == tuple((i,) for i in range(10))
    assert result.omitted == 15
    assert "15 more row(s) left out" in omitted_note(result, 10)
    assert omitted_note(query(warehouse, "SELECT 1 AS one"), 10) is None


def test_long_values_are_cut_in_the_table_only():
    long = "x" * 200
    result = QueryResult(("raw",), ((long,),))
    assert max(len(line) for line in render(result, Format.TABLE).splitlines()) == 80
    assert long in render(result, Format.CSV)


def test_the_file_cannot_be_changed(warehouse):
    with open_read_only(warehouse, wait_seconds=5) as con:
        with pytest.raises(duckdb.Error, match="read-only"):
            con.execute("DELETE FROM t")
        with pytest.raises(duckdb.Error, match="read-only"):
            con.execute("CREATE TABLE u (y INT)")
    assert query(warehouse, "SELECT count(*) FROM t").rows == ((25,),)


def test_no_way_round_read_only_through_another_file(warehouse, tmp_path):
    other = tmp_path / "other.duckdb"
    escape = (
        f"ATTACH '{other}' AS o (READ_WRITE); USE o; DETACH warehouse; "
        f"ATTACH '{warehouse}' AS w (READ_WRITE); DELETE FROM w.t"
    )
    with open_read_only(warehouse, wait_seconds=5) as con:
        for sql in (
            escape,
            f"COPY t TO '{tmp_path / 't.csv'}'",
            "SET enable_external_access = true",
        ):
            with pytest.raises(duckdb.Error):
                con.execute(sql)
    assert query(warehouse, "SELECT count(*) FROM t").rows == ((25,),)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["warehouse.duckdb"]


def test_a_missing_warehouse_says_where_it_looked(tmp_path):
    path = tmp_path / "nowhere.duckdb"
    with pytest.raises(WarehouseMissingError, match="creates it on its first run") as caught:
        query(path, "SELECT 1")
    assert str(path) in str(caught.value)
    assert not path.exists()


def test_a_writer_that_keeps_the_file_is_named(warehouse):
    holder = hold_lock(warehouse, 30)
    told = []
    try:
        started = time.monotonic()
        with pytest.raises(WarehouseBusyError) as caught:
            with open_read_only(warehouse, wait_seconds=1, on_wait=told.append):
                pass
        assert 1 <= time.monotonic() - started < 5
    finally:
        holder.kill()
        holder.wait(timeout=30)
    assert caught.value.holder.pid == holder.pid
    assert f"PID {holder.pid}" in str(caught.value)
    assert [h.pid for h in told] == [holder.pid]


def test_a_writer_that_lets_go_within_the_wait_is_waited_out(warehouse):
    holder = hold_lock(warehouse, 1)
    try:
        assert query(warehouse, "SELECT count(*) FROM t").rows == ((25,),)
    finally:
        holder.wait(timeout=30)


def test_the_lock_holder_is_read_from_duckdbs_message():
    message = (
        'IO Error: Could not set lock on file "/w.duckdb": Conflicting lock is held in '
        "/usr/bin/python3.11 (PID 27959). See also https://duckdb.org/docs/current/connect"
    )
    assert LockHolder.from_error(RuntimeError(message)) == LockHolder(27959, "/usr/bin/python3.11")
    assert str(LockHolder.from_error(RuntimeError("locked"))) == "another process"
