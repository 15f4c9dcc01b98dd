"""walk_back over an in-memory history: same-second boundaries, seen-only pages, stuck pages."""

from __future__ import annotations

import pytest

from platform_pkg.wallets.paging import End, PagingStuck, Walk, walk_back
from platform_pkg.wallets.source import HistoryPage


def tx(tx_id: str, at: float, chain: str = "eth") -> dict:
    return {"id": tx_id, "chain": chain, "time_at": at}


class History:
    """DeBank's paging over ``items``: the newest ``limit`` strictly before ``start_time``
    (ties in stored order), cut to ``short`` when set; every call is logged."""

    def __init__(self, items: list[dict], limit: int = 3, short: int | None = None):
        self.items, self.limit, self.short = items, limit, short
        self.calls: list[int | None] = []

    def __call__(self, start: int | None) -> HistoryPage:
        assert len(self.calls) < 50, "the walk loops"
        self.calls.append(start)
        hits = [i for i in self.items if start is None or i["time_at"] < start]
        page = sorted(hits, key=lambda i: -i["time_at"])[: self.limit]
        return HistoryPage(page[: self.short] if self.short else page, {"t": {"symbol": "T"}})


def walk(history: History, stop_below: float = 0.0, cursor: int | None = None):
    state = Walk(cursor=cursor, stop_below=stop_below)
    pages = [[i["id"] for i in page.items] for page in walk_back(history, state, history.limit)]
    return pages, state


def test_items_sharing_the_boundary_second_are_asked_again_and_kept_once():
    # b and c share second 20; the first page ends between them: asked from 20 on, b is lost.
    items = [tx("a", 30), tx("b", 20), tx("c", 20.5), tx("d", 25), tx("e", 10), tx("f", 5)]
    history = History(items)
    pages, state = walk(history)
    assert pages == [["a", "d", "c"], ["b", "e"], ["f"]]
    # Each page after one with news is asked from its boundary second + 1.
    assert history.calls == [None, 21, 11, 6, 5]
    assert state.end is End.BEGINNING and state.complete_from == 0
    assert state.seen == {("eth", i) for i in "abcdef"}
    assert state.calls == 5


def test_the_same_id_on_two_chains_is_two_transactions():
    items = [tx("x", 30), tx("x", 30, "arb"), tx("y", 20)]
    pages, _ = walk(History(items))
    assert sorted(sum(pages, [])) == ["x", "x", "y"]


def test_a_short_page_is_not_the_end():
    items = [tx(str(n), 100 - n) for n in range(7)]
    history = History(items, limit=3, short=2)
    pages, state = walk(history)
    assert sum(pages, []) == [str(n) for n in range(7)]
    assert state.end is End.BEGINNING
    # Two a call, each asked again from its oldest second + 1: one new item a call after the
    # first page, then the seen-only page moves below the boundary, then the empty page.
    assert len(history.calls) == 1 + 5 + 1 + 1


def test_a_short_page_of_only_seen_items_moves_below_the_boundary():
    items = [tx("a", 30), tx("b", 20), tx("c", 20)]
    history = History(items)
    pages, state = walk(history)
    assert pages == [["a", "b", "c"]]
    # Second 20 is asked again (21): only b and c, seen, and the page is short: below it (20).
    assert history.calls == [None, 21, 20]
    assert state.end is End.BEGINNING


def test_a_full_page_of_seen_items_spread_over_seconds_moves_below_the_boundary():
    items = [tx("a", 30), tx("b", 20), tx("c", 20), tx("d", 15), tx("e", 10)]
    history = History(items)
    state = Walk(cursor=None, stop_below=0, seen={("eth", "d")})  # d came with an earlier walk
    pages = [[i["id"] for i in page.items] for page in walk_back(history, state, 3)]
    # 21 answers b, c, d: all seen, a full page but over two seconds, so on from 15.
    assert pages == [["a", "b", "c"], ["e"]]
    assert history.calls == [None, 21, 15, 11, 10]


def test_a_full_page_inside_one_second_stops_with_paging_stuck_never_loops():
    items = [tx("a", 30)] + [tx(f"s{n}", 20) for n in range(4)]
    history = History(items)
    state = Walk(cursor=None, stop_below=0)
    got = []
    with pytest.raises(PagingStuck, match="more than 3 transactions at second 20"):
        for page in walk_back(history, state, 3):
            got += [i["id"] for i in page.items]
    # 21 gives s0..s2 (s1, s2 new), 21 again gives the same three: stuck, s3 unreachable.
    assert got == ["a", "s0", "s1", "s2"]
    assert history.calls == [None, 21, 21]
    assert state.complete_from == 21  # what was seen stays exactly described


def test_a_first_page_all_in_one_second_is_stuck_after_two_calls():
    history = History([tx(f"s{n}", 20) for n in range(4)])
    with pytest.raises(PagingStuck):
        walk(history)
    assert history.calls == [None, 21]


def test_a_page_without_usable_times_is_stuck():
    page = HistoryPage([{"id": "a", "chain": "eth", "time_at": "soon"}, {"id": "b"}])
    with pytest.raises(PagingStuck, match="a page of 2 item.s. with no usable time_at"):
        list(walk_back(lambda _: page, Walk(cursor=None, stop_below=0), 3))


def test_the_walk_stops_once_a_page_reaches_below_the_stop_bound():
    items = [tx(str(n), 100 - 10 * n) for n in range(10)]  # 100, 90, ..., 10
    history = History(items)
    pages, state = walk(history, stop_below=65)
    # 81 answers 80 (seen), 70 and 60: below 65, so the page is kept and the walk ends.
    assert pages == [["0", "1", "2"], ["3", "4"]]
    assert state.end is End.REACHED
    assert history.calls == [None, 81]
    assert state.complete_from == 61


@pytest.mark.parametrize(("stop_below", "calls"), [(80.5, [None]), (80, [None, 81])])
def test_a_page_ending_exactly_at_the_stop_bound_goes_on(stop_below, calls):
    history = History([tx(str(n), 100 - 10 * n) for n in range(10)])
    _, state = walk(history, stop_below=stop_below)
    assert history.calls == calls  # the first page's oldest is 80: not below 80
    assert state.end is End.REACHED


def test_a_walk_from_a_cursor_sees_only_what_is_older():
    items = [tx(str(n), 100 - 10 * n) for n in range(10)]
    history = History(items)
    pages, state = walk(history, cursor=55)
    assert pages == [["5", "6", "7"], ["8", "9"]]
    assert history.calls == [55, 31, 11, 10]
    assert state.complete_from == 0 and state.end is End.BEGINNING


def test_complete_from_follows_each_page():
    items = [tx("a", 30.7), tx("b", 20.2), tx("c", 12.9), tx("d", 5.5)]
    history = History(items, limit=2)
    state = Walk(cursor=None, stop_below=0)
    marks, tokens = [], []
    for page in walk_back(history, state, 2):
        marks.append(state.complete_from)
        tokens.append(page.tokens)
    # A page with news: everything from its boundary second + 1 on is seen; after the empty
    # page: everything.
    assert marks == [21, 13, 6]
    assert state.complete_from == 0
    assert tokens == [{"t": {"symbol": "T"}}] * 3


def test_an_empty_history_is_one_call():
    history = History([])
    pages, state = walk(history)
    assert pages == [] and history.calls == [None]
    assert state.end is End.BEGINNING and state.complete_from == 0
