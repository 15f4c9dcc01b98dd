"""``cli status``: read-only while a writer holds the file, no Dagster import with --no-runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from platform_pkg.cli import main
from platform_tests.warehouse.test_connection import hold_lock


def status(capsys, *args):
    code = main(["status", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_the_status_of_the_known_warehouse(capsys, known_warehouse, monkeypatch):
    monkeypatch.setenv("PLATFORM_NOW", "2026-11-24T10:30:00Z")
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    code, out, err = status(capsys)
    assert (code, err) == (0, "")
    assert ": 4 active symbols, 4 stale; 3 deferred fetch(es); failed runs unknown;" in out
    assert "  prices_1h  ccxt:binance           2      1  2026-11-24 10:00  ETH-USDT" in out
    assert out.endswith("note: DAGSTER_HOME is not set: no Dagster instance to read\n")
    code, out, _ = status(capsys, "--format", "json")
    figures = json.loads(out)["figures"]
    assert (figures["stale_symbols"], figures["unreviewed_anomalies"]) == (4, 2)


def test_a_writer_letting_go_within_the_wait_is_waited_out(capsys, known_warehouse):
    holder = hold_lock(known_warehouse, 1)
    try:
        code, out, err = status(capsys, "--no-runs", "--wait", "20")
    finally:
        holder.wait(timeout=30)
    assert code == 0 and "Tracked assets: 4 active, 1 inactive" in out
    assert f"waiting up to 20 s for PID {holder.pid}" in err


def test_a_writer_holding_on_exits_3(capsys, known_warehouse):
    holder = hold_lock(known_warehouse, 30)
    try:
        code, out, err = status(capsys, "--no-runs", "--wait", "0.3")
    finally:
        holder.kill()
        holder.wait(timeout=30)
    assert (code, out) == (3, "")
    assert "stop the platform" in err


def test_no_warehouse_yet_is_an_empty_status_saying_so(capsys, warehouse_file):
    code, out, _ = status(capsys, "--no-runs")
    assert code == 0
    assert f"note: there is no warehouse at {warehouse_file}" in out


def test_status_without_runs_does_not_import_dagster(known_warehouse):
    code = (
        "import sys; from platform_pkg.cli import main; "
        "assert main(['status', '--no-runs']) == 0; "
        "assert 'dagster' not in sys.modules, 'dagster was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env=os.environ, capture_output=True)
