"""Two processes materialising into the same warehouse at once both succeed, with exact data."""

import subprocess
import sys
import textwrap
from datetime import UTC, datetime

import pandas as pd

from platform_pkg.market.demo import DemoMarket
from platform_tests.conftest import NOW, rows

WRITER = textwrap.dedent(
    """
    import sys
    import dagster as dg
    from platform_pkg.market.resources import MarketData
    from platform_pkg.prices.assets import prices_1h
    from platform_pkg.warehouse.io_manager import DuckDBUpsertIOManager
    from platform_pkg.warehouse.resources import Warehouse

    path, symbol, now = sys.argv[1:4]
    warehouse = Warehouse(path=path, lock_timeout_seconds=60)
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("symbols", [symbol])
        result = dg.materialize(
            [prices_1h],
            instance=instance,
            resources={
                "warehouse": warehouse,
                "io_manager": DuckDBUpsertIOManager(warehouse=warehouse),
                # Small pages: many short transactions from both processes interleave.
                "market": MarketData(now=now, demo_page_limit=50),
            },
            tags={
                "dagster/asset_partition_range_start": f"2026-08-01|{symbol}",
                "dagster/asset_partition_range_end": f"2026-09-30|{symbol}",
            },
        )
    sys.exit(0 if result.success else 1)
    """
)


def test_two_writers_at_once_both_succeed(warehouse_file):
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(warehouse_file), symbol, NOW.isoformat()],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for symbol in ("BTC-USDT", "ETH-USDT")
    ]
    try:
        outcomes = [(p.wait(timeout=240), p.stderr.read()) for p in procs]
    finally:
        for p in procs:
            p.kill()
    assert [code for code, _ in outcomes] == [0, 0], [err[-2000:] for _, err in outcomes]
    start, end = datetime(2026, 8, 1, tzinfo=UTC), datetime(2026, 10, 1, tzinfo=UTC)
    for symbol in ("BTC-USDT", "ETH-USDT"):
        got = rows(
            warehouse_file, "SELECT ts, close FROM prices_1h WHERE symbol = ? ORDER BY ts", [symbol]
        )
        want = DemoMarket(clock=lambda: NOW).candles(symbol, "1h", start, end)
        assert [pd.Timestamp(t) for t, _ in got] == list(want["ts"])
        assert [c for _, c in got] == want["close"].tolist()
    assert rows(warehouse_file, "SELECT count(*) FROM sync_log WHERE status = 'success'") == [(2,)]
