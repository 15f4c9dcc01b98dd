"""What the price checks look at: plain SQL over a price table, on the windows a run wrote or on
the whole table. Nothing here changes a stored candle.

Each function returns a :class:`Finding`: what was looked at, how many rows failed and why, and
the first offending rows — the check turns it into a Dagster result, a test reads it directly.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

import duckdb
import numpy as np
import pandas as pd

from platform_pkg.findings import SAMPLE, Finding, records
from platform_pkg.market.calendars import MarketCalendar
from platform_pkg.market.candles import floor_time, grid_of, interval_delta
from platform_pkg.partitions import SymbolWindow
from platform_pkg.prices import gaps as gap_store
from platform_pkg.warehouse.upsert import q, table_columns


@dataclass(frozen=True)
class Slice:
    """The rows a check looks at: those of some ``(symbol, [start, end))`` windows, or, with no
    window, the whole table."""

    windows: tuple[SymbolWindow, ...] = ()

    @property
    def whole(self) -> bool:
        return not self.windows

    def join(
        self,
        alias: str = "t",
        before: timedelta = timedelta(0),
        after: timedelta = timedelta(0),
        kind: str = "JOIN",
    ) -> tuple[str, list]:
        """A join clause restricting ``alias`` to the windows, widened ``before`` and ``after``
        (``w.start_ts``/``w.end_ts`` stay the windows' own), and its parameters; empty for the
        whole table."""
        if self.whole:
            return "", []
        values = ", ".join("(?, ?, ?, ?, ?)" for _ in self.windows)
        params: list = []
        for w in self.windows:
            params += [w.symbol, w.start, w.end, w.start - before, w.end + after]
        return (
            f" {kind} (VALUES {values}) AS w(symbol, start_ts, end_ts, lo, hi)"
            f" ON {alias}.symbol = w.symbol AND {alias}.ts >= w.lo AND {alias}.ts < w.hi",
            params,
        )

    def describe(self) -> str:
        if self.whole:
            return "the whole table"
        symbols = sorted({w.symbol for w in self.windows})
        first = min(w.start for w in self.windows)
        last = max(w.end for w in self.windows) - timedelta(days=1)
        return f"{len(symbols)} symbol(s), {first:%Y-%m-%d}..{last:%Y-%m-%d}"


def keys(
    con: duckdb.DuckDBPyConnection, table: str, interval: str, part: Slice, now: datetime
) -> Finding:
    """No two candles with one ``(symbol, ts)``, none opening in the future, none off the grid of
    the interval (the grid of the source that served it: Yahoo's US hours open at half past)."""
    join, params = part.join()
    grids = _grid_case(interval)
    totals = con.execute(
        f"SELECT count(*), count(DISTINCT t.symbol),"
        f" count(*) FILTER (WHERE t.ts > ?),"
        f" count(*) FILTER (WHERE epoch_ms(t.ts) % ({grids}) <> 0)"
        f" FROM {q(table)} t{join}",
        [now, *params],
    ).fetchone()
    rows, symbols, future, off_grid = totals
    duplicates = con.execute(
        f"SELECT t.symbol, t.ts, count(*) AS copies FROM {q(table)} t{join}"
        " GROUP BY ALL HAVING count(*) > 1 ORDER BY copies DESC, t.symbol, t.ts",
        params,
    ).df()
    sample = con.execute(
        f"SELECT t.symbol, t.ts, t.source,"
        f" CASE WHEN t.ts > ? THEN 'in the future' ELSE 'off the {interval} grid' END AS problem"
        f" FROM {q(table)} t{join}"
        f" WHERE t.ts > ? OR epoch_ms(t.ts) % ({grids}) <> 0 ORDER BY t.symbol, t.ts LIMIT ?",
        [now, *params, now, SAMPLE],
    ).df()
    dup_sample = duplicates.head(SAMPLE).assign(problem="duplicate key")
    return Finding(
        looked_at={"rows": rows, "symbols": symbols, "scope": part.describe()},
        failures={
            "duplicate_keys": int(duplicates["copies"].sum() - len(duplicates)),
            "future_candles": future,
            "off_grid": off_grid,
        },
        sample=records(pd.concat([dup_sample, sample], ignore_index=True)),
    )


def _grid_case(interval: str) -> str:
    """The grid of each row's source, in milliseconds, as SQL over ``t.source``."""
    default = int(interval_delta(interval).total_seconds() * 1000)
    cases = [
        f"WHEN t.source LIKE '{name}%' THEN {int(grid.total_seconds() * 1000)}"
        for name, grid in grid_of(interval).items()
    ]
    return f"CASE {' '.join(cases)} ELSE {default} END" if cases else str(default)


OHLC_BROKEN = (
    "NOT (coalesce(t.open > 0 AND t.high > 0 AND t.low > 0 AND t.close > 0, false)"
    " AND coalesce(t.volume >= 0, true)"
    " AND t.low <= least(t.open, t.close) AND greatest(t.open, t.close) <= t.high)"
)


def ohlc(con: duckdb.DuckDBPyConnection, table: str, part: Slice) -> Finding:
    """Prices > 0, volume ≥ 0 (a source without volume stores none), low ≤ min(open, close) and
    max(open, close) ≤ high."""
    join, params = part.join()
    rows, broken, zero_volume = con.execute(
        f"SELECT count(*), count(*) FILTER (WHERE {OHLC_BROKEN}),"
        " count(*) FILTER (WHERE t.volume = 0)"
        f" FROM {q(table)} t{join}",
        params,
    ).fetchone()
    sample = con.execute(
        f"SELECT t.symbol, t.ts, t.open, t.high, t.low, t.close, t.volume, t.source"
        f" FROM {q(table)} t{join} WHERE {OHLC_BROKEN} ORDER BY t.symbol, t.ts LIMIT ?",
        [*params, SAMPLE],
    ).df()
    return Finding(
        looked_at={"rows": rows, "scope": part.describe()},
        failures={"broken_candles": broken},
        sample=records(sample),
        # A candle with volume 0 is a period the source says had no trades: stored, not missing.
        notes={"zero_volume_candles": zero_volume},
    )


def spikes(
    con: duckdb.DuckDBPyConnection, table: str, part: Slice, threshold: float
) -> pd.DataFrame:
    """Close-to-close moves larger than ``threshold`` (0.5 = 50 %) between consecutive candles of
    a symbol, in the slice (the candle before a window's first one is read too)."""
    join, params = part.join(before=timedelta(days=10))
    start_filter = ""
    if not part.whole:
        start_filter = " AND s.ts >= s.window_start"
    window_start = "w.start_ts" if not part.whole else "NULL"
    return con.execute(
        f"""
        SELECT s.symbol, s.ts, s.prev_ts, s.prev_close, s.close,
               s.close / s.prev_close - 1 AS change
        FROM (
            SELECT t.symbol, t.ts, t.close, {window_start} AS window_start,
                   lag(t.ts) OVER (PARTITION BY t.symbol ORDER BY t.ts) AS prev_ts,
                   lag(t.close) OVER (PARTITION BY t.symbol ORDER BY t.ts) AS prev_close
            FROM {q(table)} t{join}
        ) s
        WHERE s.prev_close > 0 AND abs(s.close / s.prev_close - 1) > ?{start_filter}
        ORDER BY s.symbol, s.ts
        """,
        [*params, threshold],
    ).df()


def freshness(
    con: duckdb.DuckDBPyConnection,
    table: str,
    interval: str,
    active: Mapping[str, str],
    calendar_of: Callable[[str, str | None], MarketCalendar],
    now: datetime,
    grace: timedelta,
) -> Finding:
    """Each active symbol's newest candle (its newest watermark: the newest committed) is no
    older than its market's calendar allows: at least the newest candle that had closed ``grace``
    ago."""
    if not active:
        return Finding(looked_at={"active_symbols": 0})
    newest = dict(
        con.execute(
            "SELECT asset_id, last_timestamp FROM ingestion_state"
            " WHERE data_type = ? AND list_contains(?, asset_id)",
            [table, sorted(active)],
        ).fetchall()
        if table_columns(con, "ingestion_state")
        else []
    )
    stale = []
    for symbol, asset_class in sorted(active.items()):
        calendar = calendar_of(symbol, asset_class)
        due = calendar.newest_due(interval, now - grace)
        ts = newest.get(symbol)
        if due is not None and (ts is None or pd.Timestamp(ts) < pd.Timestamp(due)):
            stale.append(
                {
                    "symbol": symbol,
                    "newest_stored": None if ts is None else pd.Timestamp(ts),
                    "due_by_now": pd.Timestamp(due),
                    "calendar": calendar.name,
                }
            )
    return Finding(
        looked_at={"active_symbols": len(active), "grace_minutes": grace / timedelta(minutes=1)},
        failures={"stale_symbols": len(stale)},
        sample=stale[:SAMPLE],
    )


def gap_report(
    con: duckdb.DuckDBPyConnection,
    table: str,
    interval: str,
    part: Slice,
    calendar_of: Callable[[str, str | None, str | None], MarketCalendar],
    asset_class_of: Callable[[str], str | None],
    now: datetime,
) -> Finding:
    """Every candle a symbol's calendar expects between its first and newest stored candle (of
    the slice) is stored, or is a known gap the source was asked for again and does not serve."""
    step = interval_delta(interval)
    closed_by = floor_time(now, interval)
    known = gap_store.read_known(con, table)
    rejected = gap_store.read_rejected(con, table)
    looked = {"symbols": 0, "expected_candles": 0, "scope": part.describe()}
    found: list[dict] = []
    for symbol, stored, source, span in _gap_spans(con, table, part, step, closed_by):
        calendar = calendar_of(symbol, asset_class_of(symbol), source)
        expected = calendar.expected_opens(interval, *span)
        if symbol in rejected:  # served malformed: in rejected_rows, not missing
            stored = np.union1d(stored, rejected[symbol])
        looked["symbols"] += 1
        looked["expected_candles"] += len(expected)
        for gap in gap_store.find(symbol, expected, stored, step, known.get(symbol, ())):
            found.append(
                {
                    "symbol": symbol,
                    "gap_start": gap.start,
                    "gap_end": gap.end,
                    "candles": gap.candles,
                    "calendar": calendar.name,
                }
            )
    known_rows = [(s, a, b) for s, spans in known.items() for a, b in spans]
    return Finding(
        looked_at=looked,
        failures={"missing_candles": sum(g["candles"] for g in found)},
        sample=found[:SAMPLE],
        notes={
            "gaps": len(found),
            "known_gaps": len(known_rows),
            "known_gap_symbols": len(known),
        },
    )


def _gap_spans(con, table: str, part: Slice, step: timedelta, closed_by: datetime):
    """Per symbol (or window): its stored open times (epoch ms) and the span gaps can be in."""
    if part.whole:
        lists = con.sql(
            f"SELECT symbol, list(epoch_ms(ts) ORDER BY ts) AS ms, arg_max(source, ts) AS source"
            f" FROM {q(table)} GROUP BY symbol ORDER BY symbol"
        ).to_arrow_table()  # a relation's Arrow output, without the DB-API result's extra copy
        for symbol, ms, source in zip(
            lists.column("symbol").to_pylist(),
            _list_arrays(lists.column("ms")),
            lists.column("source").to_pylist(),
            strict=True,
        ):
            if len(ms):
                last = gap_store.dt(int(ms[-1])) + step
                yield symbol, ms, source, (gap_store.dt(int(ms[0])), min(last, closed_by))
        return
    # Each window with its stored open times, its context included, in one query.
    join, params = part.join("t", gap_store.CONTEXT, gap_store.CONTEXT, kind="RIGHT JOIN")
    lists = con.execute(
        f"SELECT w.symbol, w.start_ts, w.end_ts, list(epoch_ms(t.ts) ORDER BY t.ts)"
        f" FILTER (WHERE t.ts IS NOT NULL) AS ms, arg_max(t.source, t.ts) AS source"
        f" FROM {q(table)} t{join} GROUP BY ALL ORDER BY ALL",
        params,
    ).fetchall()
    for symbol, start, end, ms, source in lists:
        stored = np.asarray(ms or [], dtype="int64")
        span = gap_store.bounds(stored, start, end, step, closed_by)
        if span is not None:
            yield symbol, stored, source, span


def _list_arrays(column) -> list[np.ndarray]:
    out = []
    for chunk in column.chunks:
        offsets = chunk.offsets.to_numpy()
        values = chunk.values.to_numpy()
        out += [values[offsets[i] : offsets[i + 1]] for i in range(len(chunk))]
    return out
