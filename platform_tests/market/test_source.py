"""The shared paginator: overlapping and short pages, and never asking past now."""

from datetime import UTC, datetime, timedelta

import pandas as pd

from platform_pkg.market.candles import candles_frame, to_ms
from platform_pkg.market.source import RequestMeter, paginate

START = datetime(2026, 1, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)


class ListedSource:
    """A source over a fixed list of hourly candles, with a page size and an overlap."""

    name = "listed"

    def __init__(self, hours: int, page_limit: int, overlap: int = 0, short_every: int = 0):
        self.page_limit, self.overlap, self.short_every = page_limit, overlap, short_every
        self.meter = RequestMeter()
        self.calls: list[tuple[datetime, datetime]] = []
        self.rows = [(to_ms(START + i * HOUR), 1, 2, 0.5, 1.5, 10, True) for i in range(hours)]

    def earliest(self, symbol, interval):
        return None

    def fetch_page(self, symbol, interval, start, end) -> pd.DataFrame:
        self.meter.count(self.name)
        self.calls.append((start, end))
        begin = max(0, int((start - START) / HOUR) - self.overlap)
        limit = self.page_limit
        if self.short_every and len(self.calls) % self.short_every == 0:
            limit = self.page_limit // 2
        chosen = [r for r in self.rows[begin:] if r[0] < to_ms(end)][:limit]
        return candles_frame(chosen, source=self.name)


def fetched(source, end, now):
    pages = list(paginate(source, "X", "1h", START, end, now))
    return pd.concat(pages) if pages else pd.DataFrame()


def test_pages_follow_each_other_exactly():
    source = ListedSource(hours=250, page_limit=100)
    frame = fetched(source, START + 250 * HOUR, START + 1000 * HOUR)
    assert len(frame) == 250 and frame["ts"].is_unique
    assert source.meter.total == 3


def test_overlapping_pages_are_trimmed():
    source = ListedSource(hours=250, page_limit=100, overlap=5)
    frame = fetched(source, START + 250 * HOUR, START + 1000 * HOUR)
    assert len(frame) == 250 and frame["ts"].is_unique


def test_a_short_page_is_not_the_end():
    source = ListedSource(hours=300, page_limit=100, short_every=2)
    frame = fetched(source, START + 300 * HOUR, START + 1000 * HOUR)
    assert len(frame) == 300


def test_never_asks_past_now():
    source = ListedSource(hours=300, page_limit=100)
    now = START + 120 * HOUR + timedelta(minutes=20)
    frame = fetched(source, START + 300 * HOUR, now)
    assert frame["ts"].max() == pd.Timestamp(START + 120 * HOUR)
    assert all(end <= now for _, end in source.calls)


def test_an_empty_window_costs_one_request_at_most():
    source = ListedSource(hours=0, page_limit=100)
    assert fetched(source, START + 10 * HOUR, START + 100 * HOUR).empty
    assert source.meter.total == 1
