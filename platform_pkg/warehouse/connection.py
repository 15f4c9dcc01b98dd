"""Opening the DuckDB warehouse: short-lived connections that wait out another process's lock.

DuckDB lets one process at a time open a database file (readers included) and has no wait
setting, so every open goes through :func:`connect`, which retries the lock conflict with bounded,
jittered backoff, and every connection is closed as soon as its transaction is done.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_WAREHOUSE = PROJECT_ROOT / "data" / "warehouse.duckdb"
_LOCK_MARKERS = ("could not set lock", "conflicting lock")


class WarehouseLockedError(RuntimeError):
    """Another process kept the warehouse file locked for longer than we are willing to wait."""


def warehouse_path(configured: str | None = None) -> Path:
    """The warehouse file: ``configured``, else ``$PLATFORM_WAREHOUSE``, else ``data/warehouse.duckdb``.

    Relative paths are taken from the project root, not the current directory, so the webserver,
    the daemon and every run process agree on one file wherever they were started.
    """
    raw = configured or os.environ.get("PLATFORM_WAREHOUSE") or str(DEFAULT_WAREHOUSE)
    path = Path(raw).expanduser()
    return path if path.is_absolute() else PROJECT_ROOT / path


def is_lock_conflict(exc: BaseException) -> bool:
    return isinstance(exc, duckdb.IOException) and any(
        marker in str(exc).lower() for marker in _LOCK_MARKERS
    )


@contextmanager
def connect(path: Path, *, max_wait_seconds: float = 120.0) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection to ``path``, waiting up to ``max_wait_seconds`` for another writer to finish."""
    path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + max_wait_seconds
    delay = 0.02
    while True:
        try:
            con = duckdb.connect(str(path))
            break
        except duckdb.IOException as exc:
            if not is_lock_conflict(exc):
                raise
            if time.monotonic() + delay > deadline:
                raise WarehouseLockedError(
                    f"the warehouse {path} stayed locked by another process for "
                    f"{max_wait_seconds:.0f} s; DuckDB said: {exc}"
                ) from exc
            time.sleep(delay * random.uniform(0.5, 1.5))
            # Writers hold the file for tens of milliseconds a commit: a waiter that slept up to
            # a second missed most of the gaps between two busy runs' commits (two block runs in
            # parallel took 29-33 s with a 1 s cap, 27-30 s with 0.1 s).
            delay = min(delay * 2, 0.1)
    try:
        con.execute("SET TimeZone = 'UTC'")
        yield con
    finally:
        con.close()


@contextmanager
def transaction(
    path: Path, *, max_wait_seconds: float = 120.0
) -> Iterator[duckdb.DuckDBPyConnection]:
    """One transaction on a fresh connection: committed on success, rolled back on any error."""
    with connect(path, max_wait_seconds=max_wait_seconds) as con:
        con.execute("BEGIN TRANSACTION")
        try:
            yield con
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")
