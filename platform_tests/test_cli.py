"""The ``sql`` command: output formats, row limit, exit statuses, a writer's lock, no Dagster import."""

import json
import os
import subprocess
import sys
import time

import duckdb
import pytest

from platform_pkg.cli import main
from platform_tests.warehouse.test_connection import hold_lock


@pytest.fixture
def warehouse(warehouse_file):
    """The file ``$PLATFORM_WAREHOUSE`` names (conftest), with a few rows."""
    con = duckdb.connect(str(warehouse_file))
    con.execute("CREATE TABLE t (x INT)")
    con.execute("CREATE TABLE sync_log (symbol VARCHAR, status VARCHAR, rows_inserted BIGINT)")
    con.execute("INSERT INTO sync_log VALUES ('BTC-USDT', 'success', 366), ('AAPL', 'partial', 12)")
    con.close()
    return warehouse_file


def sql(capsys, *args):
    status = main(["sql", *args])
    out, err = capsys.readouterr()
    return status, out, err


def test_prints_the_rows_as_a_table(capsys, warehouse):
    status, out, err = sql(capsys, "SELECT * FROM sync_log ORDER BY symbol")
    assert (status, err) == (0, "")
    assert out == (
        "symbol    status   rows_inserted\n"
        "--------  -------  -------------\n"
        "AAPL      partial             12\n"
        "BTC-USDT  success            366\n"
        "(2 rows)\n"
    )


def test_csv_and_json(capsys, warehouse):
    status, out, _ = sql(capsys, "--format", "csv", "SELECT * FROM sync_log ORDER BY symbol")
    assert status == 0
    assert out == "symbol,status,rows_inserted\nAAPL,partial,12\nBTC-USDT,success,366\n"
    status, out, _ = sql(capsys, "--format", "json", "SELECT symbol, rows_inserted FROM sync_log")
    assert status == 0
    assert sorted(json.loads(out), key=lambda r: r["symbol"]) == [
        {"symbol": "AAPL", "rows_inserted": 12},
        {"symbol": "BTC-USDT", "rows_inserted": 366},
    ]


def test_the_row_limit_says_how_many_rows_were_left_out(capsys, warehouse):
    status, out, _ = sql(capsys, "--max-rows", "3", "SELECT range AS i FROM range(10)")
    assert status == 0
    assert out.splitlines()[2:6] == ["0", "1", "2", "(3 rows)"]
    assert "7 more row(s) left out" in out
    # csv stays parseable: the note goes to stderr
    status, out, err = sql(capsys, "--max-rows", "3", "--format", "csv", "SELECT 1 FROM range(5)")
    assert out.count("\n") == 4
    assert "2 more row(s) left out" in err


def test_an_sql_error_exits_2_with_duckdbs_message(capsys, warehouse):
    status, out, err = sql(capsys, "SELECT * FROM no_such_table")
    assert (status, out) == (2, "")
    assert "Table with name no_such_table does not exist" in err


def test_it_cannot_write(capsys, warehouse):
    status, _, err = sql(capsys, "DELETE FROM sync_log")
    assert status == 2
    assert "read-only" in err
    assert sql(capsys, "SELECT count(*) AS n FROM sync_log")[1].splitlines()[2].strip() == "2"


def test_a_missing_warehouse_says_where_it_looked(capsys, warehouse_file):
    status, out, err = sql(capsys, "SELECT 1")
    assert (status, out) == (1, "")
    assert str(warehouse_file) in err
    assert "creates it on its first run" in err


def test_a_writer_holding_the_file_is_named_and_exits_3(capsys, warehouse):
    holder = hold_lock(warehouse, 30)
    try:
        started = time.monotonic()
        status, out, err = sql(capsys, "--wait", "1", "SELECT 1")
        assert 1 <= time.monotonic() - started < 5
    finally:
        holder.kill()
        holder.wait(timeout=30)
    assert (status, out) == (3, "")
    assert f"PID {holder.pid}" in err
    assert str(warehouse) in err
    assert "stop the platform" in err


def test_a_writer_letting_go_within_the_wait_is_waited_out(capsys, warehouse):
    holder = hold_lock(warehouse, 1)
    try:
        status, out, err = sql(capsys, "--wait", "20", "SELECT count(*) AS n FROM sync_log")
    finally:
        holder.wait(timeout=30)
    assert status == 0
    assert out.splitlines()[2].strip() == "2"
    assert f"PID {holder.pid}" in err  # it said what it was waiting for


def test_sql_does_not_import_dagster(warehouse):
    code = (
        "import sys; from platform_pkg.cli import main; "
        "assert main(['sql', 'SELECT 1']) == 0; "
        "assert 'dagster' not in sys.modules, 'dagster was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env=os.environ, capture_output=True)


def test_anomalies_are_listed_and_marked_reviewed(capsys, warehouse_file):
    from datetime import UTC, datetime

    import pandas as pd

    from platform_pkg.prices import anomalies
    from platform_pkg.warehouse.connection import transaction
    from platform_pkg.warehouse.unit import Mode, TableWrite, Unit, commit

    assert main(["anomalies", "list"]) == 1  # no warehouse yet
    moves = pd.DataFrame(
        {
            "symbol": ["BTC-USDT", "BTC-USDT"],
            "ts": pd.to_datetime(["2026-03-01", "2026-03-02"], utc=True),
            "prev_ts": pd.to_datetime(["2026-02-28", "2026-03-01"], utc=True),
            "prev_close": [100.0, 300.0],
            "close": [300.0, 100.0],
            "change": [2.0, -2 / 3],
        }
    )
    now = datetime(2026, 3, 3, tzinfo=UTC)
    found = anomalies.rows(moves, data_type="prices_1d", threshold=0.5, now=now, run_id="r")
    with transaction(warehouse_file) as con:
        write = TableWrite(found, anomalies.SPEC, Mode.INSERT_NEW)
        commit(con, None, Unit(writes=(write,)), run_id="r", now=now)
    capsys.readouterr()
    assert main(["anomalies", "list"]) == 0
    listed = capsys.readouterr().out
    first, second = found["anomaly_id"]
    assert first in listed and second in listed and "200.0" in listed
    assert main(["anomalies", "review", first, "--note", "real: halving day"]) == 0
    assert "marked 1 anomaly reviewed" in capsys.readouterr().out
    assert main(["anomalies", "list"]) == 0
    listed = capsys.readouterr().out
    assert first not in listed and second in listed
    assert main(["anomalies", "review", "nope"]) == 2
    assert "nope" in capsys.readouterr().err
    assert main(["anomalies", "list", "--all"]) == 0
    assert "real: halving day" in capsys.readouterr().out
