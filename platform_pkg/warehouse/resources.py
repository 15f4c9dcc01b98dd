"""The warehouse as a resource: where the DuckDB file is, and short read/write sessions on it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import duckdb
import pandas as pd
from pydantic import Field

from platform_pkg.warehouse import watermarks
from platform_pkg.warehouse.connection import connect, transaction, warehouse_path


class Warehouse(dg.ConfigurableResource):
    """The DuckDB warehouse file shared by every run, sensor and schedule."""

    path: str | None = Field(
        default=None,
        description="Warehouse file. Default: $PLATFORM_WAREHOUSE, else data/warehouse.duckdb "
        "(relative paths are taken from the project root).",
    )
    lock_timeout_seconds: float = Field(
        default=120.0, description="How long to wait for another process's lock before failing."
    )

    def resolved_path(self) -> Path:
        return warehouse_path(self.path)

    @contextmanager
    def connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with connect(self.resolved_path(), max_wait_seconds=self.lock_timeout_seconds) as con:
            yield con

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with transaction(self.resolved_path(), max_wait_seconds=self.lock_timeout_seconds) as con:
            yield con

    def query(self, sql: str, params: list | None = None) -> pd.DataFrame:
        with self.connection() as con:
            return con.execute(sql, params or []).df()

    def coverage(self, symbol: str, data_type: str) -> watermarks.Coverage | None:
        with self.connection() as con:
            return watermarks.read_coverage(con, symbol, data_type)
