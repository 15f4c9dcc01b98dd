"""The trade-history walkers on an in-memory source: when a walk ends, what is new, windows."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from platform_pkg.market.source import RequestMeter
from platform_pkg.trades import paging
from platform_pkg.trades.paging import BEGINNING, NEWEST, OLDEST, SYNCED, Watermarks
from platform_pkg.trades.rows import check_trades
from platform_pkg.warehouse.watermarks import Cursor, CursorMove, Order

T0 = datetime(2026, 11, 20, tzinfo=UTC)
MS0 = int(T0.timestamp() * 1000)
ASSET = "acct:BTC-USDT"


def trade(trade_id: int | None, ms: int = MS0, **changes) -> dict:
    found = {"id": None if trade_id is None else str(trade_id), "timestamp": ms, "side": "buy"}
    return found | {"price": 100.0, "amount": 1.0} | changes


@dataclass
class Ledger:
    """One account's trades of one market, answered like Binance's myTrades: by ``fromId``
    (inclusive) or by a ``[start, end)`` window, ascending, at most ``page_limit`` a request."""

    trades: list[dict]
    page_limit: int = 3
    window: timedelta | None = timedelta(days=1)
    id_cursor: bool = True
    name: str = "ledger"
    meter: RequestMeter = field(default_factory=RequestMeter)
    calls: list[tuple] = field(default_factory=list)

    def market(self, symbol: str) -> str:
        return symbol

    def trades_from_id(self, symbol: str, from_id: str | None) -> list[dict]:
        self.calls.append((from_id,))
        low = int(from_id) if from_id is not None else 0
        return [t for t in self.trades if int(t["id"]) >= low][: self.page_limit]

    def trades_between(self, symbol: str, start: datetime, end: datetime) -> list[dict]:
        assert self.window is None or end - start <= self.window, "window too long"
        self.calls.append((start, end))
        lo, hi = _ms(start), _ms(end)
        return [t for t in self.trades if lo <= t["timestamp"] < hi][: self.page_limit]


@dataclass
class Scripted:
    """A source that answers its ``pages`` in turn, whatever is asked, then the last forever."""

    pages: list[list[dict]]
    page_limit: int = 3
    window: timedelta | None = None
    id_cursor: bool = True
    name: str = "scripted"
    meter: RequestMeter = field(default_factory=RequestMeter)
    calls: list[tuple] = field(default_factory=list)

    def market(self, symbol: str) -> str:
        return symbol

    def _next(self, *asked) -> list[dict]:
        self.calls.append(asked)
        if len(self.calls) > 50:
            raise AssertionError("the walk does not end")
        return self.pages[min(len(self.calls), len(self.pages)) - 1]

    def trades_from_id(self, symbol, from_id):
        return self._next(from_id)

    def trades_between(self, symbol, start, end):
        return self._next(start, end)


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def check(trades):
    return check_trades(
        trades,
        account="acct",
        exchange="ledger",
        symbol="BTC-USDT",
        fetched_at=T0,
        integer_ids=True,
    )


def walk_ids(source, marks: Watermarks | None = None) -> list[paging.TradePage]:
    return list(paging.walk_ids(source, "BTC-USDT", ASSET, marks or Watermarks(), check))


def ids(pages) -> list[str]:
    return [i for p in pages if p.rows is not None for i in p.rows["trade_id"]]


def stored(newest: int) -> Watermarks:
    """The watermarks after a sync whose newest trade is ``newest``."""
    return Watermarks(newest=Cursor(str(newest), T0), oldest=Cursor("0", BEGINNING))


# -- by id -------------------------------------------------------------------------------------


def test_a_first_sync_pages_forward_from_the_first_trade_until_nothing_is_new():
    source = Ledger([trade(i, MS0 + i) for i in range(10, 17)])
    pages = walk_ids(source)
    assert ids(pages) == [str(i) for i in range(10, 17)]
    # Each next page starts just after the last one's newest id; an empty page ends the walk.
    assert source.calls == [(None,), ("13",), ("16",), ("17",)]
    beginning = CursorMove(ASSET, OLDEST, Cursor("0", BEGINNING), force=True)
    assert pages[0].moves[-1] == beginning
    assert all(beginning not in p.moves for p in pages[1:])
    newest = [m.cursor.last_id for p in pages for m in p.moves if m.data_type == NEWEST]
    assert newest == ["12", "15", "16"]


def test_an_incremental_walk_starts_at_the_stored_newest_and_drops_the_boundary():
    source = Ledger([trade(i, MS0 + i) for i in range(10, 15)])
    pages = walk_ids(source, stored(12))
    assert ids(pages) == ["13", "14"]
    assert source.calls == [("12",), ("15",)]
    assert all(m.data_type == NEWEST for p in pages for m in p.moves)


def test_nothing_new_costs_one_request_and_yields_nothing():
    source = Ledger([trade(i) for i in range(10, 15)])
    assert walk_ids(source, stored(14)) == []
    assert source.calls == [("14",)]


def test_an_account_that_never_traded_the_market_is_still_marked_synced():
    source = Ledger([])
    (page,) = walk_ids(source)
    assert page.rows is None and page.fetched == 0
    assert page.moves == (CursorMove(ASSET, OLDEST, Cursor("0", BEGINNING), force=True),)
    assert source.calls == [(None,)]
    assert walk_ids(Ledger([]), stored(12)) == []  # later syncs move nothing


def test_a_page_of_only_already_seen_trades_ends_the_walk():
    # An exchange that ignores fromId and answers the same page every time.
    same = [trade(10), trade(11), trade(12)]
    source = Scripted([same])
    pages = walk_ids(source)
    assert ids(pages) == ["10", "11", "12"] and len(source.calls) == 2
    source = Scripted([same])
    assert walk_ids(source, stored(12)) == [] and len(source.calls) == 1


def test_ids_are_compared_as_integers():
    source = Ledger([trade(999_999_998), trade(999_999_999), trade(1_000_000_000)], page_limit=2)
    pages = walk_ids(source, stored(999_999_997))
    assert ids(pages) == ["999999998", "999999999", "1000000000"]
    assert source.calls == [("999999997",), ("1000000000",), ("1000000001",)]
    assert pages[-1].moves[0].cursor.last_id == "1000000000"


def test_rejects_without_an_id_are_kept_and_the_cursor_follows_the_ids():
    source = Scripted([[trade(10), trade(None), trade(11)], [trade(11)]])
    (page,) = walk_ids(source)
    assert page.rows["trade_id"].tolist() == ["10", "11"]
    assert page.rejected["reason"].tolist() == ["no trade id"]
    assert source.calls == [(None,), ("12",)]


def test_a_page_of_only_new_rejects_still_moves_the_cursor_past_them():
    source = Scripted([[trade(10), trade(11, amount="abc"), trade(12, price=-1)], [trade(12)]])
    (page,) = walk_ids(source, stored(10))
    assert page.rows.empty and len(page.rejected) == 2
    assert page.moves == (CursorMove(ASSET, NEWEST, Cursor("12", None)),)
    assert source.calls == [("10",), ("13",)]


def test_a_reject_on_the_boundary_is_not_taken_twice():
    source = Scripted([[trade(10), trade(11, amount="abc")], [trade(11, amount="abc"), trade(12)]])
    first, second = walk_ids(source)
    assert first.rejected["id"].tolist() == [11]
    assert second.rejected.empty and second.rows["trade_id"].tolist() == ["12"]


# -- by time -----------------------------------------------------------------------------------


def test_windows_cut_a_span_into_pieces_no_longer_than_the_limit():
    day = timedelta(days=1)
    assert paging.windows(T0, T0 + 2 * day, day) == [(T0, T0 + day), (T0 + day, T0 + 2 * day)]
    assert paging.windows(T0, T0 + day + timedelta(hours=5), day) == [
        (T0, T0 + day),
        (T0 + day, T0 + day + timedelta(hours=5)),
    ]
    assert paging.windows(T0, T0 + timedelta(minutes=1), day) == [(T0, T0 + timedelta(minutes=1))]
    assert paging.windows(T0, T0, day) == [] and paging.windows(T0 + day, T0, day) == []
    assert paging.windows(T0, T0 + 9 * day, None) == [(T0, T0 + 9 * day)]
    assert paging.windows(T0, T0, None) == []
    cut = paging.windows(T0, T0 + timedelta(days=30, minutes=7), day)
    assert len(cut) == 31 and all(hi - lo <= day for lo, hi in cut)
    assert all(a[1] == b[0] for a, b in zip(cut, cut[1:], strict=False))


def walk_window(source, start=T0, end=T0 + timedelta(days=1), seen=None):
    return list(
        paging.walk_window(
            source,
            "BTC-USDT",
            ASSET,
            start,
            end,
            check,
            Order.TIME,
            set() if seen is None else seen,
        )
    )


def test_a_window_is_asked_again_from_its_last_time_and_the_boundary_ms_dropped_by_id():
    trades = [
        trade(1, MS0),
        trade(2, MS0 + 5),
        trade(3, MS0 + 9),
        trade(4, MS0 + 9),
        trade(5, MS0 + 20),
    ]
    source = Ledger(trades)
    pages = walk_window(source)
    assert ids(pages) == ["1", "2", "3", "4", "5"]
    at = [T0 + timedelta(milliseconds=ms) for ms in (0, 9, 20)]
    assert [c[0] for c in source.calls] == at
    assert pages[-1].moves[0].cursor == Cursor("5", at[-1])


def test_a_window_page_of_only_seen_trades_ends_it():
    source = Scripted([[trade(1), trade(2)]])
    assert ids(walk_window(source)) == ["1", "2"] and len(source.calls) == 2


def test_a_window_page_of_only_new_rejects_ends_it_as_there_is_no_time_to_go_on_from():
    source = Scripted([[trade(None, MS0), trade(7, "soon")], [trade(8)]])
    (page,) = walk_window(source)
    assert page.rows.empty and len(page.rejected) == 2 and len(source.calls) == 1


def test_rejects_are_taken_once_per_walk_by_their_raw_text():
    bad = trade(None, MS0 + 1)
    source = Scripted([[trade(1, MS0), bad, trade(2, MS0 + 1)], [bad, trade(2, MS0 + 1)]])
    seen: set[str] = set()
    pages = walk_window(source, seen=seen)
    assert [len(p.rejected) for p in pages] == [1] and len(source.calls) == 2
    assert "1" in seen and "2" in seen


def test_more_trades_in_one_millisecond_than_a_page_holds_fail_loudly_never_quietly():
    source = Ledger([trade(i, MS0) for i in range(1, 5)], page_limit=3)
    with pytest.raises(paging.PagingStuck, match="more than 3 BTC-USDT trades at"):
        ids(walk_window(source))


def time_walk(source, marks: Watermarks, start: datetime, now: datetime):
    return list(paging.walk_time(source, "BTC-USDT", ASSET, marks, start, now, check, Order.TIME))


def test_a_first_time_walk_goes_from_the_range_start_to_now_in_day_windows():
    now = T0 + timedelta(days=2, hours=6)
    trades = [trade(i, _ms(T0 + timedelta(hours=5 * i))) for i in range(1, 11)]
    source = Ledger(trades, page_limit=2)
    pages = time_walk(source, Watermarks(), T0, now)
    assert ids(pages) == [str(i) for i in range(1, 11)]
    assert all(end - start <= timedelta(days=1) for start, end in source.calls)
    synced = [m.cursor.last_timestamp for p in pages for m in p.moves if m.data_type == SYNCED]
    assert synced == [T0 + timedelta(days=1), T0 + timedelta(days=2), now]
    oldest = {m.cursor.last_timestamp for p in pages for m in p.moves if m.data_type == OLDEST}
    assert oldest == {T0}


def test_a_time_walk_resumes_from_synced_and_goes_back_for_an_older_range():
    now = T0 + timedelta(days=3)
    trades = [trade(i, _ms(T0 + timedelta(hours=7 * i))) for i in range(0, 10)]
    source = Ledger(trades, page_limit=5)
    marks = Watermarks(
        newest=Cursor("6", T0 + timedelta(hours=42)),
        oldest=Cursor(None, T0 + timedelta(days=1)),
        synced=Cursor(None, T0 + timedelta(hours=43)),
    )
    pages = time_walk(source, marks, T0, now)
    # Forward from synced: 7, 8, 9; then back from the oldest watermark to the range start.
    assert ids(pages) == ["7", "8", "9", "0", "1", "2", "3"]
    assert source.calls[0][0] == T0 + timedelta(hours=43)
    back = [m for p in pages for m in p.moves if m.data_type == OLDEST]
    assert [m.cursor.last_timestamp for m in back] == [T0] and not back[0].forward


def test_a_reconcile_walk_rereads_everything_and_moves_no_watermark():
    trades = [trade(i, _ms(T0 + timedelta(hours=9 * i))) for i in range(8)]
    source = Ledger(trades, page_limit=2)
    pages = list(
        paging.walk_reconcile(
            source, "BTC-USDT", ASSET, T0, T0 + timedelta(days=3), check, Order.ID
        )
    )
    assert ids(pages) == [str(i) for i in range(8)]
    assert all(p.moves == () for p in pages)
