"""Read-only SQL over the warehouse for people at a terminal (``python -m platform_pkg.cli sql``).

The file is opened with DuckDB's ``read_only=True`` and no access to other files, so no statement
can change it. DuckDB refuses
even a reader while a writer process has the file open, so the open waits with bounded backoff;
the connection is closed as soon as the rows are read, because a reader in turn keeps the
platform's writers waiting.
"""

from __future__ import annotations

import csv
import io
import json
import random
import re
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import duckdb

from platform_pkg.warehouse.connection import is_lock_conflict

_HOLDER = re.compile(r"Conflicting lock is held in (?P<program>.*?) \(PID (?P<pid>\d+)\)")
_COUNT_CHUNK = 10_000
_CELL_WIDTH = 80


class Format(StrEnum):
    TABLE = "table"
    CSV = "csv"
    JSON = "json"


class WarehouseMissingError(FileNotFoundError):
    """There is no warehouse file yet."""

    def __init__(self, path: Path):
        self.path = path
        super().__init__(
            f"there is no warehouse at {path} (PLATFORM_WAREHOUSE, else data/warehouse.duckdb); "
            "the platform creates it on its first run"
        )


@dataclass(frozen=True)
class LockHolder:
    """The process DuckDB named as holding the file, when it named one."""

    pid: int | None
    program: str | None

    @classmethod
    def from_error(cls, exc: BaseException) -> LockHolder:
        found = _HOLDER.search(str(exc))
        if found is None:
            return cls(None, None)
        return cls(int(found["pid"]), found["program"])

    def __str__(self) -> str:
        if self.pid is None:
            return "another process"
        return f"PID {self.pid} ({self.program})" if self.program else f"PID {self.pid}"


class WarehouseBusyError(RuntimeError):
    """Another process kept the warehouse open for longer than the query was willing to wait."""

    def __init__(self, path: Path, holder: LockHolder, waited: float):
        self.path = path
        self.holder = holder
        super().__init__(
            f"the warehouse {path} is open for writing by {holder} and stayed so for "
            f"{waited:.0f} s: the platform is probably writing to it. Retry in a moment or with "
            "a longer --wait, or stop the platform (Ctrl-C where scripts/dev.sh runs)"
        )


@dataclass(frozen=True)
class QueryResult:
    """The first rows of a result, and how many more there were."""

    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]
    omitted: int = 0


@contextmanager
def open_read_only(
    path: Path,
    *,
    wait_seconds: float = 30.0,
    on_wait: Callable[[LockHolder], None] | None = None,
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection to ``path``, waiting up to ``wait_seconds`` for a writer to let go.

    ``on_wait`` is told once who holds the file, when the first attempt finds it locked.
    """
    if not path.is_file():
        raise WarehouseMissingError(path)
    started = time.monotonic()
    delay = 0.05
    told = False
    while True:
        try:
            con = duckdb.connect(str(path), read_only=True)
            break
        except duckdb.IOException as exc:
            if not is_lock_conflict(exc):
                raise
            holder = LockHolder.from_error(exc)
            waited = time.monotonic() - started
            if waited >= wait_seconds:
                raise WarehouseBusyError(path, holder, waited) from exc
            if on_wait is not None and not told:
                on_wait(holder)
                told = True
            time.sleep(min(delay * random.uniform(0.5, 1.5), wait_seconds - waited))
            delay = min(delay * 2, 1.0)
    try:
        con.execute("SET TimeZone = 'UTC'")
        # read_only covers this file only: ATTACH another file read-write, USE it, DETACH this one
        # and ATTACH it again would write to it. So no file access besides this one, settings locked.
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
        yield con
    finally:
        con.close()


def run_query(con: duckdb.DuckDBPyConnection, sql: str, *, max_rows: int) -> QueryResult:
    """The first ``max_rows`` rows of ``sql`` and a count of the rest (DuckDB errors propagate)."""
    cursor = con.execute(sql)
    if cursor.description is None:  # a statement without a result (SET, PRAGMA ...)
        return QueryResult((), ())
    columns = tuple(d[0] for d in cursor.description)
    rows = tuple(cursor.fetchmany(max_rows)) if max_rows > 0 else ()
    omitted = 0
    while chunk := cursor.fetchmany(_COUNT_CHUNK):
        omitted += len(chunk)
    return QueryResult(columns, rows, omitted)


def render(result: QueryResult, fmt: Format) -> str:
    """The result as an aligned text table, CSV (with a header) or a JSON array of objects."""
    if fmt is Format.CSV:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(result.columns)
        writer.writerows([["" if v is None else _text(v) for v in row] for row in result.rows])
        return out.getvalue()
    if fmt is Format.JSON:
        records = [dict(zip(result.columns, row, strict=True)) for row in result.rows]
        return json.dumps(records, default=_text, ensure_ascii=False, indent=1) + "\n"
    return _table(result)


def omitted_note(result: QueryResult, max_rows: int) -> str | None:
    if not result.omitted:
        return None
    return (
        f"({result.omitted:,} more row(s) left out: --max-rows {max_rows} shows the first "
        f"{max_rows:,}; add a LIMIT or raise --max-rows)"
    )


def _table(result: QueryResult) -> str:
    if not result.columns:
        return "(no result)\n"
    numeric = [all(_is_number(row[i]) for row in result.rows) for i in range(len(result.columns))]
    cells = [[_cell(v) for v in row] for row in result.rows]
    widths = [
        max([len(name), *(len(row[i]) for row in cells)]) for i, name in enumerate(result.columns)
    ]

    def line(values: Sequence[str]) -> str:
        padded = (
            v.rjust(w) if right else v.ljust(w)
            for v, w, right in zip(values, widths, numeric, strict=True)
        )
        return "  ".join(padded).rstrip()

    lines = [line(result.columns), "  ".join("-" * w for w in widths)]
    lines += [line(row) for row in cells]
    shown = len(result.rows)
    lines.append(f"({shown:,} row{'' if shown == 1 else 's'})")
    return "\n".join(lines) + "\n"


def _is_number(value: Any) -> bool:
    return value is None or (isinstance(value, int | float) and not isinstance(value, bool))


def _text(value: Any) -> str:
    return value if isinstance(value, str) else str(value)


def _cell(value: Any) -> str:
    """One table cell on one line; long values (raw JSON) cut short — CSV and JSON keep them."""
    if value is None:
        return "NULL"
    text = _text(value).replace("\r", "\\r").replace("\n", "\\n").replace("\t", "\\t")
    return text if len(text) <= _CELL_WIDTH else text[: _CELL_WIDTH - 1] + "…"
