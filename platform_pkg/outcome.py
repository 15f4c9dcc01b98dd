"""How a run that fetched several things ends: success, or an error that names what failed.

Shared by every fetching asset (prices, exchange trades, wallets). Whatever was committed stays
committed; a run with failed or deferred work fails, so Dagster does not mark those partitions
materialised and a backfill or schedule retries them. Where every outcome names its partition
group (a price window's symbol), the error says which groups are incomplete, so a run over
several symbols can still mark the others' partitions materialised.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime


class IngestionError(RuntimeError):
    """Some fetches of a run could not be completed; the others were committed.

    ``incomplete``: the partition groups (symbols) whose fetches failed or were deferred, when
    every outcome named its group; None when the failure cannot be pinned to groups.
    """

    def __init__(self, message: str, incomplete: frozenset[str] | None = None):
        super().__init__(message)
        self.incomplete = incomplete


class RateLimitedError(IngestionError):
    """Only rate limits (or a budget) stood in the way: the deferred work is served first by a
    later run."""


@dataclass(frozen=True)
class Outcome:
    what: str  # "BTC-USDT 2026-11-01..2026-11-30", "binance-main:BTC-USDT"
    error: BaseException | None
    deferred_until: datetime | None = None  # set when the work was deferred, not failed
    deferred_as: str = "rate_limited"  # or "budget_exhausted"
    group: str | None = None  # the partition group it fetched for (a symbol), where there is one


def raise_for_failures(outcomes: Sequence[Outcome]) -> None:
    """Raise :class:`IngestionError` naming every failure (and the deferrals with it), or
    :class:`RateLimitedError` when there were only deferrals."""
    failed = [o for o in outcomes if o.error is not None and o.deferred_until is None]
    deferred = [o for o in outcomes if o.deferred_until is not None]
    later = ""
    if deferred:
        until = max(o.deferred_until for o in deferred)  # type: ignore[type-var]
        why = ", ".join(sorted({o.deferred_as for o in deferred}))
        later = (
            f"{len(deferred)} of {len(outcomes)} fetches deferred ({why}) until "
            f"{until:%Y-%m-%d %H:%M:%S} UTC, to be served first by the next run: "
            + ", ".join(o.what for o in deferred)
        )
    unfinished = failed + deferred
    groups = frozenset(o.group for o in unfinished if o.group is not None)
    incomplete = groups if all(o.group is not None for o in unfinished) else None
    if failed:
        detail = "; ".join(f"{o.what}: {o.error}" for o in failed)
        message = f"{len(failed)} of {len(outcomes)} fetches failed: {detail}"
        raise IngestionError(message + (f"; {later}" if later else ""), incomplete)
    if deferred:
        raise RateLimitedError(later, incomplete)
