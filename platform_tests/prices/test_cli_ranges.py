"""The real CLI: `dagster asset materialize --partition-range` over a year is one run."""

import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pytest

from platform_pkg.market.demo import DemoMarket
from platform_pkg.warehouse.connection import PROJECT_ROOT
from platform_tests.conftest import NOW, rows

pytestmark = pytest.mark.slow


def test_a_year_from_the_cli_is_one_run(tmp_path, warehouse_file, monkeypatch):
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(PROJECT_ROOT / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    env = os.environ | {
        "PLATFORM_WAREHOUSE": str(warehouse_file),
        "PLATFORM_NOW": NOW.isoformat(),
        "DAGSTER_EVENT_BATCH_SIZE": "1000",
    }
    subprocess.run(
        [sys.executable, "-m", "platform_pkg.cli", "symbols", "add", "BTC-USDT"],
        env=env,
        cwd=PROJECT_ROOT,
        check=True,
        timeout=120,
    )
    refused = subprocess.run(
        [sys.executable, "-m", "platform_pkg.cli", "symbols", "add", "BTC|USDT"],
        env=env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert refused.returncode == 2 and "contains '|'" in refused.stderr
    subprocess.run(
        [
            str(Path(sys.executable).parent / "dagster"),
            "asset",
            "materialize",
            "-m",
            "platform_pkg.definitions",
            "--select",
            "prices_1h",
            "--partition-range",
            "2025-11-24|BTC-USDT...2026-11-23|BTC-USDT",
        ],
        env=env,
        cwd=PROJECT_ROOT,
        check=True,
        timeout=300,
        capture_output=True,
    )
    with dg.DagsterInstance.from_config(str(home)) as instance:
        runs = instance.get_runs()
        assert len(runs) == 1 and runs[0].status == dg.DagsterRunStatus.SUCCESS
        assert sorted(instance.get_dynamic_partitions("symbols")) == ["BTC-USDT"]
        assert len(instance.get_materialized_partitions(dg.AssetKey("prices_1h"))) == 365
    want = DemoMarket(clock=lambda: NOW).candles(
        "BTC-USDT", "1h", datetime(2025, 11, 24, tzinfo=UTC), datetime(2026, 11, 24, tzinfo=UTC)
    )
    assert rows(warehouse_file, "SELECT count(*), min(ts), max(ts) FROM prices_1h") == [
        (len(want), want["ts"].min().to_pydatetime(), want["ts"].max().to_pydatetime())
    ]
    assert rows(warehouse_file, "SELECT api_requests FROM sync_log") == [(9,)]
