"""Fetch planning: only what is missing, plus the lookback, and never leaving a gap."""

from datetime import UTC, datetime, timedelta

from platform_pkg.prices.ingest import plan_segments
from platform_pkg.warehouse.watermarks import Coverage

H = timedelta(hours=1)


def t(hour: int) -> datetime:
    return datetime(2026, 1, 1, tzinfo=UTC) + hour * H


def test_nothing_synced_fetches_the_window():
    assert plan_segments(t(0), t(24), None, H, 3) == [(t(0), t(24))]


def test_a_synced_window_rereads_only_the_lookback():
    assert plan_segments(t(0), t(24), Coverage(t(0), t(23)), H, 3) == [(t(20), t(24))]


def test_a_window_well_inside_the_synced_range_fetches_nothing():
    assert plan_segments(t(0), t(24), Coverage(t(0), t(100)), H, 3) == []


def test_older_window_fetches_only_up_to_the_oldest_watermark():
    assert plan_segments(t(0), t(48), Coverage(t(24), t(100)), H, 3) == [(t(0), t(24))]


def test_window_after_a_gap_is_widened_to_stay_contiguous():
    assert plan_segments(t(50), t(60), Coverage(t(0), t(23)), H, 3) == [(t(20), t(60))]


def test_window_before_a_gap_is_widened_to_reach_the_oldest():
    assert plan_segments(t(0), t(10), Coverage(t(50), t(60)), H, 3) == [(t(0), t(50))]


def test_window_spanning_both_ends_fetches_both_ends_only():
    assert plan_segments(t(0), t(200), Coverage(t(50), t(100)), H, 2) == [
        (t(0), t(50)),
        (t(98), t(200)),
    ]


def test_touching_segments_merge_into_one():
    assert plan_segments(t(0), t(60), Coverage(t(50), t(51)), H, 3) == [(t(0), t(60))]


def test_full_refresh_ignores_the_watermarks():
    assert plan_segments(t(0), t(24), Coverage(t(0), t(100)), H, 3, full_refresh=True) == [
        (t(0), t(24))
    ]


def test_zero_lookback_still_rereads_the_newest_candle():
    assert plan_segments(t(0), t(24), Coverage(t(0), t(23)), H, 0) == [(t(23), t(24))]
