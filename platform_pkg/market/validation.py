"""Which fetched candles are fit to store as prices, and why the others are not.

Exchanges and libraries pass nonsense straight through (ccxt hands over ``NaN``, negative prices
and ``high < low`` as the exchange sent them), so every page is checked before it is stored: the
numbers are finite, prices are positive, ``low ≤ open, close ≤ high``, volume is not negative, and
the open time sits on the source's grid for the interval. Rejected rows are kept, with the reason,
in the ``rejected_rows`` table rather than silently dropped.
"""

from __future__ import annotations

import json
from datetime import timedelta

import numpy as np
import pandas as pd

PRICE_COLUMNS = ("open", "high", "low", "close")
REJECTED_COLUMNS = ["ts", "raw", "reason"]


def validate_candles(
    frame: pd.DataFrame, grid: timedelta, *, volume_required: bool = True
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split ``frame`` into the rows fit to store and the rejected ones (``ts``, ``raw``, ``reason``).

    ``grid`` is the spacing open times must sit on (the interval, or finer for sources whose
    sessions open at half past). ``volume_required=False`` accepts a missing volume, for sources
    that have none (CoinGecko); a negative one is refused all the same.
    """
    if frame.empty:
        return frame, _rejected([], [], [])
    # Each row keeps the first reason that applies (checks in this order); numpy, not pandas
    # assignment, because every page of every fetch goes through here.
    reasons: list[str] = [""]
    code = np.zeros(len(frame), dtype=np.int16)

    def flag(mask, reason: str) -> None:
        hit = np.asarray(mask, dtype=bool) & (code == 0)
        if hit.any():
            reasons.append(reason)
            code[hit] = len(reasons) - 1

    numbers = {c: _floats(frame[c]) for c in PRICE_COLUMNS}
    volume = _floats(frame["volume"])
    ts = frame["ts"]
    known = ts.notna().to_numpy()
    flag(~known, "no timestamp")
    for col, values in numbers.items():
        flag(~np.isfinite(values), f"{col} is not a number")
    flag(~np.isfinite(volume) if volume_required else np.isinf(volume), "volume is not a number")
    with np.errstate(invalid="ignore"):
        for col, values in numbers.items():
            flag(values <= 0, f"{col} is not positive")
        flag(volume < 0, "volume is negative")
        flag(numbers["high"] < numbers["low"], "high is below low")
        flag(
            numbers["low"] > np.minimum(numbers["open"], numbers["close"]),
            "low is above open/close",
        )
        flag(
            numbers["high"] < np.maximum(numbers["open"], numbers["close"]),
            "high is below open/close",
        )
    step_ns = int(grid.total_seconds() * 1e9)
    if step_ns > 0 and known.any():
        off_grid = np.zeros(len(frame), dtype=bool)
        off_grid[known] = ts[known].dt.as_unit("ns").astype("int64").to_numpy() % step_ns != 0
        flag(off_grid, f"open time is not on the {_fmt(grid)} grid")
    bad = code != 0
    if not bad.any():
        return frame.reset_index(drop=True), _rejected([], [], [])
    good = frame[~bad].reset_index(drop=True)
    rejected = frame[bad]
    return good, _rejected(
        list(rejected["ts"]),
        [_raw(row) for row in rejected.to_dict("records")],
        [reasons[c] for c in code[bad]],
    )


def _floats(column: pd.Series) -> np.ndarray:
    """A column as float64, anything not a number as NaN."""
    return pd.to_numeric(column, errors="coerce").astype("float64").to_numpy()


def _fmt(grid: timedelta) -> str:
    minutes = int(grid.total_seconds() // 60)
    return f"{minutes // 60}h" if minutes % 60 == 0 else f"{minutes}min"


def _raw(row: dict) -> str:
    """The rejected row as JSON, exactly as received (NaN and infinities spelled out)."""
    out = {}
    for key, value in row.items():
        if isinstance(value, pd.Timestamp):
            out[key] = value.isoformat()
        elif isinstance(value, float) and not np.isfinite(value):
            out[key] = str(value)
        elif isinstance(value, np.generic):
            out[key] = value.item()
        else:
            out[key] = value
    return json.dumps(out, default=str, sort_keys=True)


def _rejected(ts: list, raw: list[str], reason: list[str]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "ts": pd.to_datetime(pd.Series(ts, dtype=object), utc=True),
            "raw": pd.Series(raw, dtype=object),
            "reason": pd.Series(reason, dtype=object),
        }
    )
