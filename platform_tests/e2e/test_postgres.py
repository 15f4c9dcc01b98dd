"""End to end on the PostgreSQL instance: ``dagster dev`` on deploy/dagster.postgres.yaml and a real
server, where a new holding becomes one ranged run per price asset and exactly the demo candles."""

from datetime import date

import pytest

from platform_tests import postgres
from platform_tests.e2e.harness import DagsterDev
from platform_tests.e2e.test_daemon import HEADER, NOW
from platform_tests.e2e.test_daemon import (
    test_a_new_holding_becomes_one_ranged_run_of_both_assets_and_exactly_the_demo_candles as new_holding,
)

pytestmark = pytest.mark.slow
postgres_server = postgres.postgres_server

# The holding's history: 365 days before its first acquisition (2026-05-01) to today.
DAYS = (NOW.date() - date(2025, 5, 1)).days + 1


@pytest.fixture
def dev(postgres_server, tmp_path):
    server = DagsterDev(
        tmp_path,
        env={
            "PLATFORM_NOW": NOW.isoformat(),
            "PLATFORM_HOLDINGS_SENSOR_SECONDS": "2",
            "PLATFORM_ACCOUNTS_SENSOR_SECONDS": "2",
            "PLATFORM_INTRADAY_MINUTES": "60",
        },
        postgres=postgres_server.dagster_env(postgres_server.create_database("e2e")),
    )
    server.portfolio.write_text(HEADER)
    with server:
        yield server


def test_a_new_holding_becomes_one_ranged_run_of_both_assets_on_the_postgres_instance(
    dev, postgres_server
):
    new_holding(dev)

    # Everything Dagster recorded is in PostgreSQL: no SQLite file in the instance's folder.
    assert not list(dev.home.rglob("*.db")), list(dev.home.rglob("*.db"))
    con = postgres_server.connect(dev.extra_env["DAGSTER_PG_DB"])
    try:
        with con.cursor() as cur:
            cur.execute("SELECT count(*) FROM runs WHERE status = 'SUCCESS'")
            (runs,) = cur.fetchone()
            cur.execute(
                "SELECT asset_key, count(*) FROM event_logs "
                "WHERE dagster_event_type = 'ASSET_MATERIALIZATION' AND asset_key LIKE '%prices%' "
                "GROUP BY 1 ORDER BY 1"
            )
            materialised = cur.fetchall()
            cur.execute(
                "SELECT partition FROM dynamic_partitions WHERE partitions_def_name = %s",
                ["symbols"],
            )
            symbols = [row[0] for row in cur.fetchall()]
    finally:
        con.close()
    assert runs >= 3  # the ledger run(s) and the two price runs
    assert materialised == [('["prices_1d"]', DAYS), ('["prices_1h"]', DAYS)]
    assert symbols == ["ETH-USDT"]
