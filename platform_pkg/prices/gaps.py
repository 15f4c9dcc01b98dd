"""Gaps: candles a symbol's market calendar expects that are not stored, and ``known_gaps``.

A gap is a run of expected candles missing *between* stored ones (before a symbol's first candle
the source simply had nothing yet: that is not a gap). A price run that finds one asks the source
for it once more; what the source still does not serve goes to ``known_gaps`` with the reason, so
the gap check shows it and no run asks for it again. A candle the source serves with volume 0 is
"no trades in that period": stored, not missing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

import duckdb
import numpy as np
import pandas as pd

from platform_pkg.warehouse.upsert import TableSpec, q, table_columns


class GapReason(StrEnum):
    # Asked again: the source serves the candles around it but none for these periods (a source
    # that leaves out periods without trades, or a hole in its own history).
    NO_CANDLE = "no_candle"
    # The fetch ended before the requested end while the source still answered (only with rows
    # before the cursor), twice.
    STOPPED_EARLY = "stopped_early"


SPEC = TableSpec(
    name="known_gaps",
    keys=("symbol", "data_type", "gap_start"),
    columns={
        "symbol": "VARCHAR",
        "data_type": "VARCHAR",
        "gap_start": "TIMESTAMPTZ",  # open time of the first missing candle
        "gap_end": "TIMESTAMPTZ",  # end of the last missing candle
        "candles": "INTEGER",
        "reason": "VARCHAR",
        "detail": "VARCHAR",
        "source": "VARCHAR",
        "calendar": "VARCHAR",
        "first_seen": "TIMESTAMPTZ",
        "run_id": "VARCHAR",
    },
    audit_columns=("first_seen", "run_id"),
)

Span = tuple[datetime, datetime]
# How far around a range stored candles are read, to tell a gap from the start or the end of what
# the source has.
CONTEXT = timedelta(days=7)


@dataclass(frozen=True)
class Gap:
    """Expected candles ``[start, end)`` of ``symbol`` that are not stored (``candles`` of them)."""

    symbol: str
    start: datetime
    end: datetime
    candles: int


def find(
    symbol: str,
    expected: pd.DatetimeIndex,
    stored_ms: np.ndarray,
    step: timedelta,
    known: Sequence[Span] = (),
) -> list[Gap]:
    """The runs of ``expected`` open times absent from ``stored_ms`` (sorted epoch ms) and not
    inside a ``known`` gap, one :class:`Gap` per run of consecutive expected candles."""
    if len(expected) == 0:
        return []
    wanted = pd.DatetimeIndex(expected).tz_convert("UTC").as_unit("ms").asi8
    missing = ~np.isin(wanted, stored_ms, assume_unique=False)
    for start, end in known:
        lo, hi = _ms(start), _ms(end)
        missing &= ~((wanted >= lo) & (wanted < hi))
    if not missing.any():
        return []
    positions = np.flatnonzero(missing)
    # A new run starts where the previous missing candle is not the previous expected one.
    breaks = np.flatnonzero(np.diff(positions) != 1) + 1
    gaps = []
    step_ms = int(step.total_seconds() * 1000)
    for run in np.split(positions, breaks):
        first, last = wanted[run[0]], wanted[run[-1]]
        gaps.append(Gap(symbol, dt(first), dt(last + step_ms), len(run)))
    return gaps


def bounds(
    stored_ms: np.ndarray, start: datetime, end: datetime, step: timedelta, final_before: datetime
) -> Span | None:
    """Where ``[start, end)`` can hold gaps: from ``start`` if a candle is stored before it, else
    from the first stored candle in it; to ``end`` if one is stored after it, else to just past
    the last stored one — and never past the last candle closed by ``final_before``."""
    lo_ms, hi_ms = _ms(start), _ms(end)
    inside = stored_ms[(stored_ms >= lo_ms) & (stored_ms < hi_ms)]
    before = bool((stored_ms < lo_ms).any())
    after = bool((stored_ms >= hi_ms).any())
    if len(inside) == 0 and not (before and after):
        return None
    first = start if before else dt(inside[0])
    last = end if after else dt(inside[-1]) + step
    last = min(last, final_before)
    return (first, last) if first < last else None


def rows(
    gaps: Sequence[Gap],
    *,
    data_type: str,
    reason: GapReason,
    detail: str,
    source: str | None,
    calendar: str,
    now: datetime,
    run_id: str | None,
) -> pd.DataFrame:
    """The ``known_gaps`` rows recording ``gaps``."""
    return pd.DataFrame(
        {
            "symbol": [g.symbol for g in gaps],
            "data_type": data_type,
            "gap_start": pd.to_datetime([g.start for g in gaps], utc=True),
            "gap_end": pd.to_datetime([g.end for g in gaps], utc=True),
            "candles": pd.Series([g.candles for g in gaps], dtype="int32"),
            "reason": str(reason),
            "detail": detail,
            "source": source,
            "calendar": calendar,
            "first_seen": pd.Timestamp(now),
            "run_id": run_id,
        }
    )


def read_known(
    con: duckdb.DuckDBPyConnection, data_type: str, symbols: Sequence[str] | None = None
) -> dict[str, list[Span]]:
    """The known gaps of ``data_type`` per symbol (of ``symbols``, or all)."""
    if not table_columns(con, SPEC.name):
        return {}
    where, params = "data_type = ?", [data_type]
    if symbols is not None:
        where += " AND list_contains(?, symbol)"
        params.append(list(symbols))
    found: dict[str, list[Span]] = {}
    for symbol, start, end in con.execute(
        f"SELECT symbol, gap_start, gap_end FROM known_gaps WHERE {where} ORDER BY ALL",  # noqa: S608
        params,
    ).fetchall():
        found.setdefault(symbol, []).append((start, end))
    return found


def stored_ms(
    con: duckdb.DuckDBPyConnection, table: str, symbol: str, start: datetime, end: datetime
) -> np.ndarray:
    """The open times (epoch ms, sorted) of ``symbol``'s candles in ``[start, end)``."""
    if not table_columns(con, table):
        return np.empty(0, dtype="int64")
    column = con.execute(
        f"SELECT epoch_ms(ts) FROM {q(table)} WHERE symbol = ? AND ts >= ? AND ts < ? ORDER BY 1",
        [symbol, start, end],
    ).fetchnumpy()
    return np.asarray(next(iter(column.values())), dtype="int64")


def _ms(moment: datetime) -> int:
    return pd.Timestamp(moment).value // 1_000_000


def dt(ms: int) -> datetime:
    return pd.Timestamp(int(ms), unit="ms", tz="UTC").to_pydatetime()


def stored_times(rows: pd.DataFrame) -> np.ndarray:
    """The open times (epoch ms) of a frame of candles with a ``ts`` column."""
    if rows.empty:
        return np.empty(0, dtype="int64")
    ts = pd.DatetimeIndex(pd.to_datetime(rows["ts"], utc=True, errors="coerce")).dropna()
    return np.sort(ts.as_unit("ms").asi8)


def read_segment(
    connect: Callable[[], AbstractContextManager[duckdb.DuckDBPyConnection]],
    table: str,
    symbol: str,
    start: datetime,
    end: datetime,
) -> tuple[np.ndarray, list[Span]]:
    """What the gap pass of a price run reads, in one short connection: ``symbol``'s stored open
    times in ``[start, end)`` and its known gaps."""
    with connect() as con:
        stored = stored_ms(con, table, symbol, start, end)
        rejected = read_rejected(con, table, [symbol]).get(symbol)
        if rejected is not None:
            stored = np.union1d(stored, rejected)
        return stored, read_known(con, table, [symbol]).get(symbol, [])


def read_rejected(
    con: duckdb.DuckDBPyConnection, data_type: str, symbols: Sequence[str] | None = None
) -> dict[str, np.ndarray]:
    """Open times (epoch ms) of candles the source served malformed, per symbol: recorded in
    ``rejected_rows``, so not missing."""
    if not table_columns(con, "rejected_rows"):
        return {}
    where, params = "data_type = ? AND ts IS NOT NULL", [data_type]
    if symbols is not None:
        where += " AND list_contains(?, symbol)"
        params.append(list(symbols))
    found = con.execute(
        f"SELECT symbol, list(DISTINCT epoch_ms(ts)) FROM rejected_rows WHERE {where}"  # noqa: S608
        " GROUP BY symbol",
        params,
    ).fetchall()
    return {symbol: np.sort(np.asarray(ms, dtype="int64")) for symbol, ms in found}
