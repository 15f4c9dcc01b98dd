"""Opening the warehouse: another process's lock is waited out, a stuck one is a clear error."""

import subprocess
import sys
import textwrap
import time

import pytest

from platform_pkg.warehouse.connection import WarehouseLockedError, connect, transaction

HOLD = textwrap.dedent(
    """
    import duckdb, sys, time
    con = duckdb.connect(sys.argv[1])
    con.execute("CREATE TABLE IF NOT EXISTS t (x INT)")
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))
    con.close()
    """
)


def hold_lock(path, seconds: float) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(path), str(seconds)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_waits_for_another_writer_then_writes(warehouse_file):
    holder = hold_lock(warehouse_file, 1.5)
    try:
        started = time.monotonic()
        with transaction(warehouse_file, max_wait_seconds=30) as con:
            con.execute("INSERT INTO t VALUES (1)")
        assert time.monotonic() - started >= 0.5
    finally:
        holder.wait(timeout=30)
    with connect(warehouse_file) as con:
        assert con.execute("SELECT count(*) FROM t").fetchall() == [(1,)]


def test_a_lock_held_too_long_is_a_clear_error(warehouse_file):
    holder = hold_lock(warehouse_file, 5)
    try:
        with pytest.raises(WarehouseLockedError, match="stayed locked by another process"):
            with connect(warehouse_file, max_wait_seconds=0.5):
                pass
    finally:
        holder.kill()
        holder.wait(timeout=30)


def test_a_failed_transaction_is_rolled_back(warehouse_file):
    with transaction(warehouse_file) as con:
        con.execute("CREATE TABLE t (x INT)")
    with pytest.raises(RuntimeError):
        with transaction(warehouse_file) as con:
            con.execute("INSERT INTO t VALUES (1)")
            raise RuntimeError("boom")
    with connect(warehouse_file) as con:
        assert con.execute("SELECT count(*) FROM t").fetchall() == [(0,)]
