"""Which candles are fit to store, and the reason recorded for each one that is not."""

from __future__ import annotations

import json
from datetime import timedelta

import numpy as np
import pandas as pd

from platform_pkg.market.candles import candles_frame
from platform_pkg.market.validation import validate_candles

H = 3_600_000
T0 = 1_767_225_600_000  # 2026-01-01 00:00 UTC


def frame(rows):
    return candles_frame([(T0 + i * H, *values, True) for i, values in enumerate(rows)], source="x")


def test_sane_candles_pass():
    good, bad = validate_candles(
        frame([(1, 2, 0.5, 1.5, 10), (1.5, 1.5, 1.5, 1.5, 0)]), timedelta(hours=1)
    )
    assert len(good) == 2 and bad.empty


def test_each_kind_of_nonsense_is_rejected_with_its_reason():
    rows = [
        (1, 2, 0.5, 1.5, 10),  # fine
        (np.nan, 2, 0.5, 1.5, 10),
        (-1, 2, -2, 1.5, 10),
        (1, 0.5, 2, 1.5, 10),  # high < low
        (1, 2, 1.2, 1.5, 10),  # low above open
        (1, 1.2, 0.5, 1.5, 10),  # high below close
        (1, 2, 0.5, 1.5, -3),
        (1, 2, 0.5, 1.5, np.inf),
        (1, 2, 0.5, 1.5, np.nan),
    ]
    good, bad = validate_candles(frame(rows), timedelta(hours=1))
    assert len(good) == 1
    assert list(bad["reason"]) == [
        "open is not a number",
        "open is not positive",
        "high is below low",
        "low is above open/close",
        "high is below open/close",
        "volume is negative",
        "volume is not a number",
        "volume is not a number",
    ]
    raw = json.loads(bad["raw"].iloc[0])
    assert raw["open"] == "nan" and raw["ts"].startswith("2026-01-01T01:00")


def test_open_times_must_sit_on_the_grid():
    data = frame([(1, 2, 0.5, 1.5, 10)] * 2)
    data.loc[1, "ts"] = data.loc[1, "ts"] + pd.Timedelta(minutes=30)
    good, bad = validate_candles(data, timedelta(hours=1))
    assert len(good) == 1 and list(bad["reason"]) == ["open time is not on the 1h grid"]
    good, bad = validate_candles(data, timedelta(minutes=30))
    assert len(good) == 2


def test_a_missing_volume_is_accepted_only_where_sources_have_none():
    data = frame([(1, 2, 0.5, 1.5, np.nan)])
    assert validate_candles(data, timedelta(hours=1))[1]["reason"].tolist() == [
        "volume is not a number"
    ]
    good, bad = validate_candles(data, timedelta(hours=1), volume_required=False)
    assert len(good) == 1 and bad.empty
