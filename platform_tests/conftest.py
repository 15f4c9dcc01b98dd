"""Shared fixtures: a temporary warehouse, an ephemeral Dagster instance, a frozen demo clock."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import duckdb
import pandas as pd
import pytest

from platform_pkg.market.demo import DEMO_LISTINGS, DemoMarket
from platform_pkg.market.resources import MarketData
from platform_pkg.market.settings import ENV as MARKET_ENV
from platform_pkg.market.source import RequestMeter
from platform_pkg.warehouse.io_manager import DuckDBUpsertIOManager
from platform_pkg.warehouse.resources import Warehouse

NOW = datetime(2026, 11, 24, 10, 30, tzinfo=UTC)


class ScriptedMarket(MarketData):
    """The real demo market with a scripted scenario (revisions, a dropped connection).

    Scenarios live in ``SCENARIOS`` because resources hold configuration, not objects.
    """

    scenario: str = "default"

    def source_for(self, symbol: str, meter: RequestMeter):
        market = SCENARIOS[self.scenario]
        market.meter = meter
        return market


SCENARIOS: dict[str, DemoMarket] = {}


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path, monkeypatch):
    """No test touches the real data/ folder or reads the developer's settings."""
    for var, _default in MARKET_ENV.values():
        monkeypatch.delenv(var, raising=False)
    monkeypatch.delenv("PLATFORM_NOW", raising=False)
    monkeypatch.setenv("PLATFORM_PORTFOLIO", str(tmp_path / "portfolio.csv"))
    monkeypatch.setenv("PLATFORM_ACCOUNTS", str(tmp_path / "accounts.toml"))
    monkeypatch.setenv("PLATFORM_WAREHOUSE", str(tmp_path / "warehouse.duckdb"))
    monkeypatch.setenv("PLATFORM_RATE_LIMIT_DIR", str(tmp_path / "sources"))
    yield
    SCENARIOS.clear()


@pytest.fixture
def warehouse_file(tmp_path) -> Path:
    return tmp_path / "warehouse.duckdb"


@pytest.fixture
def instance():
    with dg.instance_for_test() as inst:
        inst.add_dynamic_partitions("symbols", list(DEMO_LISTINGS))
        yield inst


def resources_for(path: Path, market: MarketData | None = None, now: datetime = NOW) -> dict:
    warehouse = Warehouse(path=str(path), lock_timeout_seconds=30)
    return {
        "warehouse": warehouse,
        "io_manager": DuckDBUpsertIOManager(warehouse=warehouse),
        "market": market or MarketData(now=now.isoformat()),
    }


def scripted(name: str, market: DemoMarket) -> ScriptedMarket:
    """A market resource serving ``market``, with the run's clock frozen at the market's now."""
    SCENARIOS[name] = market
    return ScriptedMarket(scenario=name, now=market.clock().isoformat())


def range_tags(symbol: str, first: str, last: str) -> dict[str, str]:
    return {
        "dagster/asset_partition_range_start": f"{first}|{symbol}",
        "dagster/asset_partition_range_end": f"{last}|{symbol}",
    }


def rows(path: Path, sql: str, params: list | None = None):
    con = duckdb.connect(str(path))
    try:
        con.execute("SET TimeZone = 'UTC'")
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def stored(path, table, symbol) -> pd.DataFrame:
    """A symbol's stored candles, as the demo market returns them (without the source)."""
    frame = pd.DataFrame(
        rows(
            path,
            f"SELECT ts, open, high, low, close, volume, is_final FROM {table} WHERE symbol = ? ORDER BY ts",
            [symbol],
        ),
        columns=["ts", "open", "high", "low", "close", "volume", "is_final"],
    )
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
    return frame


def warehouse_text(path: Path) -> str:
    """Every value of every table of the warehouse, joined: where no secret may appear."""
    parts = []
    for (table,) in rows(path, "SELECT table_name FROM information_schema.tables"):
        found = rows(path, f'SELECT * FROM "{table}"')  # noqa: S608 - names from the catalogue
        parts += [str(v) for row in found for v in row]
    return "\n".join(parts)
