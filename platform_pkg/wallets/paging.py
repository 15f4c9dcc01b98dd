"""Walking a wallet's history back in time, newest first, without losing or repeating anything.

DeBank pages by ``start_time``, a strict upper bound in whole seconds, at most 20 a page. Several
transactions can share one second across a page boundary, so paging on with the last item's
second would lose the rest of it. The walk asks again from **the boundary second + 1** (its
items come back, with the rest of that second) and drops what it has seen by ``(chain, id)``. A
page that brings nothing new moves the bound below the boundary second — unless the page was
full and all of it sits in that second, when more may hide behind it: then the walk stops with
:class:`PagingStuck` rather than loop or skip silently. A short page is not the end: only an
empty page (the wallet's beginning) or the stop bound is. No Dagster, no warehouse here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum

from platform_pkg.wallets.source import HistoryPage, Item


class End(StrEnum):
    BEGINNING = "beginning"  # an empty page: nothing older exists
    REACHED = "reached"  # the walk went below its stop bound


class PagingStuck(RuntimeError):
    """A full page inside one second: the transactions behind it cannot be reached."""


def item_time(item: Item) -> float | None:
    """The item's ``time_at`` in seconds, or None when it has no usable one."""
    value = item.get("time_at")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) and value > 0 else None


def item_key(item: Item) -> tuple[str, str]:
    return str(item.get("chain")), str(item.get("id"))


@dataclass
class Walk:
    """Where a walk stands: what it has seen, the lowest second it has fully covered down to,
    and how it ended."""

    cursor: int | None  # the next page's start_time (None: now)
    stop_below: float  # stop once a page reaches below this time
    seen: set[tuple[str, str]] = field(default_factory=set)
    complete_from: int | None = None  # every item at or after this second has been seen
    end: End | None = None
    calls: int = 0


Fetch = Callable[[int | None], HistoryPage]


def walk_back(fetch: Fetch, walk: Walk, page_limit: int) -> Iterator[HistoryPage]:
    """Yield each page's new items (newest first), updating ``walk`` as it goes."""
    while True:
        page = fetch(walk.cursor)
        walk.calls += 1
        if not page.items:
            walk.end = End.BEGINNING
            walk.complete_from = 0
            return
        new = [i for i in page.items if item_key(i) not in walk.seen]
        times = [t for t in map(item_time, page.items) if t is not None]
        if not times:
            raise PagingStuck(
                f"a page of {len(page.items)} item(s) with no usable time_at: cannot page past it"
            )
        boundary = math.floor(min(times))
        if new:
            walk.seen.update(item_key(i) for i in new)
            walk.complete_from = boundary + 1
            yield HistoryPage(new, page.tokens)
        if min(times) < walk.stop_below:
            walk.end = End.REACHED
            return
        if new:
            walk.cursor = boundary + 1
        elif walk.cursor == boundary + 1 and len(page.items) >= page_limit:
            raise PagingStuck(
                f"more than {page_limit} transactions at second {boundary}: the history behind "
                "them cannot be paged by time"
            )
        else:
            # Everything up to here was seen, the boundary second included.
            walk.cursor = boundary
            walk.complete_from = boundary
