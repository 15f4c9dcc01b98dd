"""One refresh of the asset catalogue: the difference between what the sources list now and what
is stored, and the units of work that write only that difference.

Sources come in priority order; the first to list a key owns its row (``source``, ``source_id``).
Per key:

* listed and not stored: **added** (``first_seen`` = ``last_seen`` = now);
* stored, inactive, listed again: **restored** (``is_active``, ``delisted_at`` null);
* stored and listed with other details (name, owner, ...): **updated**;
* stored, active, its source answered and no source lists it: **delisted** (``is_active``
  false, ``delisted_at`` now, ``last_seen`` the last refresh of its source that listed it);
  a source switched off lists nothing, so its entries are delisted too;
* an active entry whose source **failed** this time is left exactly as it was, whoever else
  lists the key: one API being down never delists, nor re-owns, what it listed.

An entry listed unchanged is not written, so a refresh that finds nothing new writes no row. Its
``last_seen`` stays the time of its last change: the newest successful ``sync_log`` row of its
source (``data_type`` ``asset_catalog``) says when it was last seen (:mod:`.lookup` shows that).
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from platform_pkg.catalog.model import DATA_TYPE, Entry, Listing, SourceResult, entries_table
from platform_pkg.warehouse.sync_log import SyncEntry, SyncStatus
from platform_pkg.warehouse.unit import Committed, Unit, UnitStream


class ChangeKind(StrEnum):
    ADDED = "added"
    UPDATED = "updated"
    DELISTED = "delisted"
    RESTORED = "restored"


@dataclass(frozen=True)
class Change:
    kind: ChangeKind
    entry: Entry  # the row as it is to be stored
    source: str  # the source whose refresh the change belongs to


@dataclass
class Plan:
    changes: list[Change] = field(default_factory=list)
    unchanged: int = 0
    held: int = 0  # active entries of failed sources, left as they were
    active: int = 0  # entries active once the plan is written

    def counts(self) -> dict[str, int]:
        found = Counter(c.kind for c in self.changes)
        return {kind.value: found[kind] for kind in ChangeKind}

    def by_source(self) -> dict[str, list[Change]]:
        grouped: dict[str, list[Change]] = {}
        for change in self.changes:
            grouped.setdefault(change.source, []).append(change)
        return grouped


def plan_refresh(
    stored: Mapping[str, Entry],
    results: Sequence[SourceResult],
    now: datetime,
    last_success: Mapping[str, datetime] | None = None,
) -> Plan:
    """What to write so the catalogue says what ``results`` (in priority order) list at ``now``.

    ``last_success`` is, per source, when it last answered a refresh (from ``sync_log``): the
    last time an entry it delists now was seen.
    """
    failed = {r.source for r in results if r.failed}
    offered: dict[str, Listing] = {}
    for result in results:
        for listing in result.listings or ():
            offered.setdefault(listing.asset_id, listing)
    plan = Plan()
    for asset_id in sorted(stored.keys() | offered.keys()):
        old, new = stored.get(asset_id), offered.get(asset_id)
        held = old is not None and old.is_active and old.listing.source in failed
        plan.active += held or new is not None
        if held:
            plan.held += 1
        elif old is None:
            entry = Entry(new, True, first_seen=now, last_seen=now)
            plan.changes.append(Change(ChangeKind.ADDED, entry, new.source))
        elif new is not None and not old.is_active:
            entry = replace(old, listing=new, is_active=True, last_seen=now, delisted_at=None)
            plan.changes.append(Change(ChangeKind.RESTORED, entry, new.source))
        elif new is not None and new != old.listing:
            entry = replace(old, listing=new, last_seen=now)
            plan.changes.append(Change(ChangeKind.UPDATED, entry, new.source))
        elif new is None and old.is_active:
            seen = (last_success or {}).get(old.listing.source)
            last_seen = max(filter(None, (seen, old.last_seen)), default=None)
            entry = replace(old, is_active=False, last_seen=last_seen, delisted_at=now)
            plan.changes.append(Change(ChangeKind.DELISTED, entry, old.listing.source))
        else:
            plan.unchanged += 1
    return plan


class CatalogRefresh(UnitStream):
    """The refresh as units of work: per source, the rows whose change belongs to it and its
    ``sync_log`` row (requests spent, status), committed together."""

    def __init__(
        self, results: Sequence[SourceResult], plan: Plan, run_id: str | None, now: datetime
    ):
        self.results, self.plan, self.run_id, self.now = list(results), plan, run_id, now

    def units(self) -> Generator[Unit, Committed, None]:
        by_source = self.plan.by_source()
        answered = {r.source: r for r in self.results}
        # Sources switched off since the last refresh have only delistings, and a row of their own.
        for source in [*answered, *sorted(by_source.keys() - answered.keys())]:
            rows = entries_table([c.entry for c in by_source.get(source, [])])
            yield Unit.of(rows, log=self._log(source, answered.get(source)))

    def _log(self, source: str, result: SourceResult | None) -> SyncEntry:
        """The source's sync_log row; a source not asked (switched off) spent nothing."""
        failed = result is not None and result.failed
        return SyncEntry(
            sync_id=str(uuid.uuid4()),
            run_id=self.run_id,
            symbol=source,
            data_type=DATA_TYPE,
            source=source,
            started_at=result.started_at if result else self.now,
            finished_at=(result.finished_at if result else None) or self.now,
            rows_fetched=len(result.listings or ()) if result else 0,
            api_requests=result.requests if result else 0,
            api_units=result.units if result else 0.0,
            status=SyncStatus.FAILED if failed else SyncStatus.SUCCESS,
            error=result.error if result else None,
        )

    def metadata(self) -> dict[str, Any]:
        failed = {r.source: r.error or "failed" for r in self.results if r.failed}
        skipped = Counter()
        for result in self.results:
            skipped.update({f"{result.source}: {why}": n for why, n in result.skipped.items()})
        return {
            **self.plan.counts(),
            "entries_unchanged": self.plan.unchanged,
            "entries_kept_for_failed_sources": self.plan.held,
            "entries_active": self.plan.active,
            "sources": ", ".join(r.source for r in self.results) or "none",
            "listings": {r.source: len(r.listings or ()) for r in self.results},
            "api_requests": sum(r.requests for r in self.results),
            "api_requests_by_source": {r.source: r.requests for r in self.results},
            "api_units": float(sum(r.units for r in self.results)),
            **({"failed_sources": failed} if failed else {}),
            **({"not_catalogued": dict(sorted(skipped.items()))} if skipped else {}),
        }
