"""Watermarks in ``ingestion_state``: what has been synced, committed with the data it describes.

For a time series (``prices_1h`` of ``BTC-USDT``) two rows describe one contiguous synced range:

* ``(asset_id, data_type)`` — the **newest** watermark: the open time of the newest committed
  candle. An incremental run re-reads from here minus the lookback, so it always re-reads the
  newest candle (which may still be open).
* ``(asset_id, data_type + "_oldest")`` — the **oldest** watermark: where the synced range starts
  (the start of the earliest window asked for, even if the source had nothing that early).

Every candle between the two has been fetched and committed. A watermark only moves inside the
transaction that commits the rows it covers, and only when the newly synced segment touches the
range already synced, so it never claims a gap.

Cursor-style sources (exchange trades, wallet history) keep a :class:`Cursor` instead: the id and
time of the newest (or oldest) item committed. A cursor only ever moves forward (or, for an
oldest watermark, backward), compared by integer id where the source's ids are integers — trade
ids are strings, and ``"9" > "10"`` as strings — else by time.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

import duckdb

from platform_pkg.warehouse.upsert import table_columns

DDL = """
CREATE TABLE IF NOT EXISTS ingestion_state (
    asset_id VARCHAR NOT NULL,
    data_type VARCHAR NOT NULL,
    last_id VARCHAR,
    last_timestamp TIMESTAMPTZ,
    updated_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (asset_id, data_type)
)
"""

OLDEST_SUFFIX = "_oldest"


@dataclass(frozen=True)
class Coverage:
    """A contiguous synced range: everything from ``oldest`` up to the candle at ``newest``."""

    oldest: datetime
    newest: datetime


@dataclass(frozen=True)
class Segment:
    """A stretch just committed: synced contiguously over ``[start, reaches)``; ``newest`` is the
    open time of the newest candle in it, or None if the source had none there."""

    start: datetime
    reaches: datetime
    newest: datetime | None


def merge(current: Coverage | None, segment: Segment, step: timedelta) -> Coverage | None:
    """The coverage after committing ``segment``; unchanged if it would leave a gap."""
    if current is None:
        if segment.newest is None:
            return None
        return Coverage(segment.start, segment.newest)
    touches = segment.start <= current.newest + step and segment.reaches >= current.oldest
    if not touches:
        return current
    newest = max(current.newest, segment.newest) if segment.newest else current.newest
    return Coverage(min(current.oldest, segment.start), newest)


def ensure(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(DDL)


def read_coverage(con: duckdb.DuckDBPyConnection, asset_id: str, data_type: str) -> Coverage | None:
    return read_coverages(con, [asset_id], [data_type])[(asset_id, data_type)]


def read_coverages(
    con: duckdb.DuckDBPyConnection, asset_ids: Sequence[str], data_types: Sequence[str]
) -> dict[tuple[str, str], Coverage | None]:
    """The coverage of every (asset, data type) pair, in one query. Only reads: the sensors call
    it, and the daemon never writes to the warehouse."""
    wanted = list(data_types) + [dt + OLDEST_SUFFIX for dt in data_types]
    found = (
        {
            (asset_id, data_type): ts
            for asset_id, data_type, ts in con.execute(
                "SELECT asset_id, data_type, last_timestamp FROM ingestion_state "
                "WHERE list_contains(?, asset_id) AND list_contains(?, data_type)",
                [list(asset_ids), wanted],
            ).fetchall()
        }
        if table_columns(con, "ingestion_state")
        else {}
    )
    coverages: dict[tuple[str, str], Coverage | None] = {}
    for asset_id in asset_ids:
        for data_type in data_types:
            newest = found.get((asset_id, data_type))
            oldest = found.get((asset_id, data_type + OLDEST_SUFFIX))
            both = newest is not None and oldest is not None
            coverages[(asset_id, data_type)] = Coverage(oldest, newest) if both else None
    return coverages


def commit_segment(
    con: duckdb.DuckDBPyConnection,
    asset_id: str,
    data_type: str,
    segment: Segment,
    step: timedelta,
    now: datetime,
) -> Coverage | None:
    """Merge ``segment`` into the stored coverage, inside the caller's transaction."""
    current = read_coverage(con, asset_id, data_type)
    merged = merge(current, segment, step)
    if merged is not None and merged != current:
        write(con, asset_id, data_type, last_timestamp=merged.newest, now=now)
        write(con, asset_id, data_type + OLDEST_SUFFIX, last_timestamp=merged.oldest, now=now)
    return merged


def write(
    con: duckdb.DuckDBPyConnection,
    asset_id: str,
    data_type: str,
    *,
    now: datetime,
    last_timestamp: datetime | None = None,
    last_id: str | None = None,
) -> None:
    ensure(con)
    con.execute(
        "INSERT INTO ingestion_state VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT (asset_id, data_type) DO UPDATE SET last_id = excluded.last_id, "
        "last_timestamp = excluded.last_timestamp, updated_at = excluded.updated_at",
        [asset_id, data_type, last_id, last_timestamp, now],
    )


class Order(StrEnum):
    """What makes one cursor position later than another."""

    ID = "id"  # integer ids (exchange trade ids)
    TIME = "time"  # timestamps, then ids (wallet transactions)


@dataclass(frozen=True)
class Cursor:
    last_id: str | None
    last_timestamp: datetime | None


@dataclass(frozen=True)
class SegmentMove:
    """Merge a committed stretch of candles into ``(asset_id, data_type)``'s coverage."""

    asset_id: str
    data_type: str
    segment: Segment
    step: timedelta


@dataclass(frozen=True)
class CursorMove:
    """Move ``(asset_id, data_type)`` to ``cursor`` if that is further in ``direction``: newer
    (``forward``) for a newest watermark, older for an oldest one; ``force`` sets it as given."""

    asset_id: str
    data_type: str
    cursor: Cursor
    order: Order = Order.ID
    forward: bool = True
    force: bool = False
    # A derived build that read its inputs up to ``expected`` must find the watermark still
    # there when it commits; otherwise another build committed in between and this one is stale.
    guarded: bool = False
    expected: Cursor | None = None


class WatermarkConflict(RuntimeError):
    """A guarded move found the watermark moved by someone else: nothing was committed."""


WatermarkMove = SegmentMove | CursorMove


def _position(cursor: Cursor, order: Order) -> tuple:
    if order is Order.ID:
        return (int(cursor.last_id or 0),)
    ts = cursor.last_timestamp
    return (ts.timestamp() if ts is not None else float("-inf"), cursor.last_id or "")


def read_cursor(con: duckdb.DuckDBPyConnection, asset_id: str, data_type: str) -> Cursor | None:
    ensure(con)
    found = con.execute(
        "SELECT last_id, last_timestamp FROM ingestion_state WHERE asset_id = ? AND data_type = ?",
        [asset_id, data_type],
    ).fetchall()
    return Cursor(*found[0]) if found else None


def advance(current: Cursor | None, move: CursorMove) -> Cursor:
    """The cursor after ``move``: it never goes back."""
    if current is None or move.force:
        return move.cursor
    new, old = _position(move.cursor, move.order), _position(current, move.order)
    further = new > old if move.forward else new < old
    return move.cursor if further else current


def apply(
    con: duckdb.DuckDBPyConnection, moves: Iterable[WatermarkMove], now: datetime
) -> dict[tuple[str, str], Coverage | Cursor | None]:
    """Apply every move inside the caller's transaction; returns where each watermark stands."""
    after: dict[tuple[str, str], Coverage | Cursor | None] = {}
    for move in moves:
        key = (move.asset_id, move.data_type)
        if isinstance(move, SegmentMove):
            after[key] = commit_segment(
                con, move.asset_id, move.data_type, move.segment, move.step, now
            )
            continue
        current = read_cursor(con, move.asset_id, move.data_type)
        if move.guarded and _id(current) != _id(move.expected):
            raise WatermarkConflict(
                f"{move.asset_id} {move.data_type} is at {_id(current)}, not at {_id(move.expected)}"
                " as when this build read its inputs: another build committed in between; "
                "nothing was written, build again"
            )
        moved = advance(current, move)
        if moved != current:
            write(
                con,
                move.asset_id,
                move.data_type,
                now=now,
                last_timestamp=moved.last_timestamp,
                last_id=moved.last_id,
            )
        after[key] = moved
    return after


def _id(cursor: Cursor | None) -> str | None:
    return cursor.last_id if cursor is not None else None
