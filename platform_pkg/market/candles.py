"""Candles as the platform stores them: intervals, the column schema, and helpers to build frames."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd

# The price tables and their candle intervals, daily first: it is the cheaper of the two.
PRICE_TABLES: tuple[tuple[str, str], ...] = (("prices_1d", "1d"), ("prices_1h", "1h"))

INTERVALS: dict[str, timedelta] = {"1h": timedelta(hours=1), "1d": timedelta(days=1)}

# What a source returns per candle; the ingestion adds symbol and fetched_at.
CANDLE_COLUMNS = ["ts", "open", "high", "low", "close", "volume", "is_final", "source"]

# The stored table, in order, with explicit DuckDB types.
PRICE_TABLE_COLUMNS: dict[str, str] = {
    "symbol": "VARCHAR",
    "ts": "TIMESTAMPTZ",
    "open": "DOUBLE",
    "high": "DOUBLE",
    "low": "DOUBLE",
    "close": "DOUBLE",
    "volume": "DOUBLE",
    "source": "VARCHAR",
    "is_final": "BOOLEAN",
    "fetched_at": "TIMESTAMPTZ",
}
PRICE_KEY = ["symbol", "ts"]
# Sources whose open times sit on a finer grid than the interval: Yahoo's US hours open at half
# past (source name prefix → interval → grid).
SOURCE_GRIDS: dict[str, dict[str, timedelta]] = {"yfinance": {"1h": timedelta(minutes=30)}}


def grid_of(interval: str) -> dict[str, timedelta]:
    """Source name prefix → the grid its open times of ``interval`` sit on, where not the
    interval itself."""
    return {name: grids[interval] for name, grids in SOURCE_GRIDS.items() if interval in grids}


def interval_delta(interval: str) -> timedelta:
    try:
        return INTERVALS[interval]
    except KeyError:
        raise ValueError(f"unknown interval {interval!r}; known: {', '.join(INTERVALS)}") from None


def floor_time(moment: datetime, interval: str) -> datetime:
    """The open time of the candle of ``interval`` that contains ``moment``."""
    step = int(interval_delta(interval).total_seconds())
    epoch = int(moment.timestamp())
    return datetime.fromtimestamp(epoch - epoch % step, tz=UTC)


def ceil_time(moment: datetime, interval: str) -> datetime:
    floored = floor_time(moment, interval)
    return floored if floored == moment else floored + interval_delta(interval)


def empty_candles() -> pd.DataFrame:
    return candles_frame([], source="")


def candles_frame(rows: list[tuple], *, source: str) -> pd.DataFrame:
    """A candle frame from ``(ts_ms, open, high, low, close, volume, is_final)`` tuples."""
    frame = pd.DataFrame(rows, columns=CANDLE_COLUMNS[:-1])
    frame["ts"] = pd.to_datetime(frame["ts"].astype("int64"), unit="ms", utc=True)
    for col in ("open", "high", "low", "close", "volume"):
        frame[col] = frame[col].astype("float64")
    frame["is_final"] = frame["is_final"].astype(bool)
    frame["source"] = source
    return frame


def to_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)
