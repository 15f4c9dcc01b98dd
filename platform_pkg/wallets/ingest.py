"""Wallet history sync, paid for in units: each transaction is fetched once.

No Dagster here: the asset builds a :class:`WalletSync`, a stream of units the IO manager commits
— each page's transactions with their rejected items, watermark moves and ``sync_log`` row. Per
wallet (all its chains in one call a page), with watermarks ``onchain`` (newest stored
transaction) and ``onchain_oldest`` (the history is complete from there on):

* a **first sync** walks from now back to the window's start, both watermarks moving page by page,
  so a killed run resumes from the oldest one without paying for a page twice;
* an **incremental sync** walks from now back to the newest watermark minus the finality window
  and stops there — one call when nothing is new. What it re-read of the window is compared with
  what is stored: changed transactions are updated (old version kept), vanished ones
  soft-deleted, returning ones restored;
* a range older than the stored history is walked from the oldest watermark back;
* the **reconcile** re-reads the last ``reconcile_days`` in full the same way.

Units are read from the free balance endpoint before and after each wallet (and around each call
when a daily budget is set, which a call that would pass it stops before).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import pandas as pd

from platform_pkg.accounts.model import WalletAccount
from platform_pkg.fetches import Changes, closing_unit, count, fail, guarded
from platform_pkg.market.source import RequestMeter
from platform_pkg.outcome import Outcome, raise_for_failures
from platform_pkg.partitions import SymbolWindow
from platform_pkg.wallets.budget import BudgetExhausted, UnitsBudget, next_reset
from platform_pkg.wallets.paging import End, Walk, walk_back
from platform_pkg.wallets.rows import ONCHAIN_KEY, check_items
from platform_pkg.wallets.source import HistoryPage, UnitsExhausted, WalletSource
from platform_pkg.warehouse import deferrals, rejected_rows
from platform_pkg.warehouse.sync_log import SyncEntry, SyncStatus
from platform_pkg.warehouse.unit import Committed, Mode, TableWrite, Unit, UnitStream
from platform_pkg.warehouse.upsert import Scope
from platform_pkg.warehouse.watermarks import Cursor, CursorMove, Order, WatermarkMove

TABLE = "onchain_transactions"
# The newest stored transaction, where the history is complete from, and — while a walk from the
# top was cut short (a budget, a killed run) — the span it still has to read: [low, high).
# And the chains the history is complete for (``last_id``: "eth,arb"; "*" for every chain).
NEWEST, OLDEST, GAP, CHAINS = "onchain", "onchain_oldest", "onchain_gap", "onchain_chains"
MARKS = (NEWEST, OLDEST, GAP, CHAINS)
BEGINNING = datetime(1970, 1, 1, tzinfo=UTC)
Marks = tuple[Cursor | None, Cursor | None, Cursor | None, Cursor | None]


@dataclass(frozen=True)
class WalletTask:
    """One history to sync: a wallet, all its chains in one call a page (watermarks per wallet).
    A chain added to a wallet later is first read back on its own (``backfill``, watermarks
    ``<wallet>+<chains>``) and then joins the wallet's."""

    wallet: WalletAccount
    window: SymbolWindow
    backfill: tuple[str, ...] = ()

    @property
    def asset_id(self) -> str:
        return (
            f"{self.wallet.name}+{'+'.join(self.backfill)}" if self.backfill else self.wallet.name
        )

    @property
    def chains(self) -> tuple[str, ...] | None:
        return self.backfill or self.wallet.chains


def chain_set(chains: tuple[str, ...] | None) -> str:
    return ",".join(sorted(chains)) if chains else "*"


def added_chains(wallet: WalletAccount, stored: Cursor | None) -> tuple[str, ...]:
    """The chains ``wallet`` names that its stored history does not cover yet."""
    if stored is None or not stored.last_id or stored.last_id == "*" or not wallet.chains:
        return ()
    have = set(stored.last_id.split(","))
    return tuple(c for c in wallet.chains if c not in have)


class Kind(StrEnum):
    """What a walk is for, which decides the watermarks it moves."""

    FIRST = "first"  # a first sync: from now down to the window's start
    TOP = "top"  # from now down to the newest stored, minus the finality window
    GAP = "gap"  # the rest of a walk from the top that was cut short
    OLDER = "older"  # a range older than the stored history, from the oldest watermark down
    RECONCILE = "reconcile"  # the last reconcile_days, re-read in full


@dataclass
class WalletResult:
    task: WalletTask
    entry: SyncEntry
    before: Marks
    after: Marks
    error: BaseException | None = None
    changes: Changes = field(default_factory=Changes)
    calls: int = 0


def _seconds(moment: datetime) -> datetime:
    return datetime.fromtimestamp(int(moment.timestamp()), UTC)


@dataclass
class WalletSync(UnitStream):
    tasks: list[WalletTask]
    source_for: Callable[[WalletAccount, RequestMeter], WalletSource]
    read_marks: Callable[[str], Marks]
    now: datetime
    budget: UnitsBudget
    finality: timedelta = timedelta(minutes=60)
    reconcile_days: int = 0
    run_id: str | None = None
    log: Any = None
    deferred_before: dict[str, datetime | None] = field(default_factory=dict)
    file_errors: list[str] = field(default_factory=list)
    spending: Callable[[], dict[str, float]] | None = None  # units today / this month, stored
    meter: RequestMeter = field(default_factory=RequestMeter)
    results: list[WalletResult] = field(default_factory=list)
    balance: float | None = None  # the current source's, to measure each call
    remaining: float | None = None  # DeBank's units left after the last wallet

    def units(self) -> Generator[Unit, Committed, None]:
        yield from guarded(self._all_units(), lambda: [r.entry for r in self.results])
        raise_for_failures(
            [_outcome(r) for r in self.results]
            + [Outcome("the accounts file", ValueError(e)) for e in self.file_errors]
        )

    def _all_units(self) -> Generator[Unit, Committed, None]:
        for task in sorted(self.tasks, key=lambda t: t.asset_id not in self.deferred_before):
            added = added_chains(task.wallet, self.read_marks(task.asset_id)[3])
            if added:
                self._info(f"{task.asset_id}: chains {', '.join(added)} added: reading them back")
                yield from self._task_units(replace(task, backfill=added))
            yield from self._task_units(task)

    def _task_units(self, task: WalletTask) -> Generator[Unit, Committed, None]:
        wallet = task.wallet
        before = self.read_marks(task.asset_id)
        entry = SyncEntry(
            sync_id=str(uuid.uuid4()), run_id=self.run_id, symbol=task.asset_id, data_type=NEWEST,
            source=None, started_at=datetime.now(UTC), requested_start=task.window.start,
            requested_end=task.window.end,
        )  # fmt: skip
        result = WalletResult(task, entry, before, before)
        self.results.append(result)
        requests, throttled = self.meter.total, self.meter.throttled.total()
        source: WalletSource | None = None
        start_balance = None
        try:
            source = self.source_for(wallet, self.meter)
            entry.source = source.name
            start_balance = self.balance = source.units_balance()
            for walk, kind in self._walks(result):
                yield from self._walk_units(source, result, walk, kind)
        except (BudgetExhausted, UnitsExhausted) as exc:
            if isinstance(exc, UnitsExhausted):
                why = f"DeBank refused the call: the account's units ran out ({exc})"
                exc = BudgetExhausted(why, next_reset(self.now))
            result.error = exc
            entry.status, entry.error = SyncStatus.BUDGET_EXHAUSTED, str(exc)
            self._info(f"{task.asset_id}: stopped before the next call: {exc}", warning=True)
        except Exception as exc:
            result.error = exc
            fail(entry, exc)
            self._info(f"{task.asset_id}: {entry.error}", warning=True)
        else:
            entry.status = SyncStatus.SUCCESS
        entry.api_requests = self.meter.total - requests
        entry.api_units = self._units_spent(source, start_balance, result)
        entry.api_throttled = self.meter.throttled.total() - throttled
        entry.finished_at = datetime.now(UTC)
        yield self._closing_unit(result)

    # -- what each wallet sync walks ----------------------------------------------------------
    def _walks(self, result: WalletResult) -> Iterator[tuple[Walk, Kind]]:
        newest, oldest, gap, _ = result.before
        window = result.task.window
        if newest is None or oldest is None:
            yield Walk(cursor=None, stop_below=window.start.timestamp()), Kind.FIRST
        else:
            if gap is not None and gap.last_timestamp is not None:
                low = float(gap.last_id or 0)
                yield Walk(cursor=int(gap.last_timestamp.timestamp()), stop_below=low), Kind.GAP
            since = newest.last_timestamp - self.finality
            yield Walk(cursor=None, stop_below=since.timestamp()), Kind.TOP
            if window.start < oldest.last_timestamp:
                cursor = int(oldest.last_timestamp.timestamp())
                yield Walk(cursor=cursor, stop_below=window.start.timestamp()), Kind.OLDER
        if self.reconcile_days:
            since = self.now - timedelta(days=self.reconcile_days)
            yield Walk(cursor=None, stop_below=since.timestamp()), Kind.RECONCILE

    def _walk_units(
        self, source: WalletSource, result: WalletResult, walk: Walk, kind: Kind
    ) -> Generator[Unit, Committed, None]:
        """The walk's pages, each committed with the watermark moves it allows, then the unit
        that ends the walk."""
        asset = result.task.asset_id
        newest: Cursor | None = None
        for page in walk_back(
            lambda cursor: self._fetch(source, result, cursor), walk, source.page_limit
        ):
            rows, unit = self._page_unit(result, page)
            top = _newest(rows)
            if top is not None and (newest is None or top.last_timestamp > newest.last_timestamp):
                newest = top
            reached = Cursor(None, _at(walk.complete_from))
            moves: tuple[WatermarkMove, ...] = ()
            if kind in (Kind.FIRST, Kind.OLDER):  # the history extends downward page by page
                moves = (self._move(asset, OLDEST, reached, forward=False),)
            if kind in (Kind.FIRST, Kind.TOP) and newest is not None:
                moves += (self._move(asset, NEWEST, newest),)
            if kind is Kind.FIRST and not result.task.backfill:
                moves += (self._chains(asset, result.task.wallet.chains),)
            if kind is Kind.TOP:  # until it ends, what lies below this page is still to read
                moves += (self._gap(asset, walk.stop_below, reached.last_timestamp),)
            if kind is Kind.GAP:
                moves += (self._gap(asset, walk.stop_below, reached.last_timestamp),)
            committed = yield replace(unit, watermarks=moves)
            self._committed(result, committed)
        moves, writes = (), ()
        if kind in (Kind.FIRST, Kind.OLDER) and walk.end is End.BEGINNING:
            moves = (self._move(asset, OLDEST, Cursor(None, BEGINNING), forward=False),)
        if kind is Kind.FIRST:  # the history is complete for these chains from now on
            moves += (self._chains(result.task.wallet.name, result.task.wallet.chains),)
        if kind is Kind.TOP and (kept := self._kept_chains(result)) is not None:
            moves += (self._chains(result.task.wallet.name, kept),)
        if kind in (Kind.TOP, Kind.GAP):
            moves = (self._gap(asset, None, None),)
        if kind in (Kind.TOP, Kind.RECONCILE):
            since = datetime.fromtimestamp(walk.stop_below, UTC)
            writes = self._vanished(result.task, walk, since)
        committed = yield Unit(writes=writes, watermarks=moves, log=replace(result.entry))
        self._committed(result, committed)

    @staticmethod
    def _kept_chains(result: WalletResult) -> tuple[str, ...] | None:
        """The stored chains the wallet still names, when it dropped some (so a chain named
        again later is read back for the time it was not synced); None: nothing to change."""
        stored, named = result.before[3], result.task.wallet.chains
        if stored is None or not stored.last_id or stored.last_id == "*" or not named:
            return None
        have = stored.last_id.split(",")
        kept = tuple(c for c in have if c in named)
        return kept if len(kept) < len(have) else None

    @staticmethod
    def _chains(name: str, chains: tuple[str, ...] | None) -> CursorMove:
        return CursorMove(name, CHAINS, Cursor(chain_set(chains), None), Order.TIME, force=True)

    @staticmethod
    def _gap(asset: str, low: float | None, high: datetime | None) -> CursorMove:
        """The span [low, high) a walk from the top still has to read (None, None: none)."""
        low_id = None if low is None else str(int(low))
        return CursorMove(asset, GAP, Cursor(low_id, high), Order.TIME, force=True)

    def _fetch(self, source: WalletSource, result: WalletResult, cursor: int | None) -> HistoryPage:
        """One paid call, stopped before it when the day's budget would not cover it."""
        wallet = result.task.wallet
        budgeted = _budgeted(source)
        if budgeted:
            self.budget.check(self.now)
        page = source.history(wallet.address, result.task.chains, cursor)
        result.calls += 1
        if budgeted and self.budget.per_day is not None:  # every call measured: an exact cap
            balance = source.units_balance()
            if balance is not None and self.balance is not None:
                self.budget.spend(self.now, self.balance - balance)
            self.balance = balance
        return page

    def _vanished(self, task: WalletTask, walk: Walk, since: datetime) -> tuple[TableWrite, ...]:
        """After re-reading ``[since, now)`` in full: what is stored there but was not seen is
        gone (soft-deleted) — on the chains read, or every chain of the wallet."""
        name = task.wallet.name
        seen = pd.DataFrame([(name, c, t) for c, t in walk.seen], columns=ONCHAIN_KEY)
        within = {"chain": list(task.chains)} if task.chains else {}
        scope = Scope(
            {"wallet": name}, "ts", since, _seconds(self.now) + timedelta(seconds=1), within
        )
        return (TableWrite(seen, mode=Mode.SOFT_DELETE_MISSING, scope=scope),)

    @staticmethod
    def _move(asset_id: str, data_type: str, cursor: Cursor, forward: bool = True) -> CursorMove:
        return CursorMove(asset_id, data_type, cursor, Order.TIME, forward=forward)

    # -- units ----------------------------------------------------------------------------------
    def _page_unit(self, result: WalletResult, page: HistoryPage) -> tuple[pd.DataFrame, Unit]:
        wallet = result.task.wallet
        fetched_at = datetime.now(UTC)
        rows, rejected = check_items(
            page.items, page.tokens, wallet=wallet.name, address=wallet.address,
            fetched_at=fetched_at,
        )  # fmt: skip
        result.entry.rows_fetched += len(page.items)
        writes = [TableWrite(rows)]
        if not rejected.empty:
            rejects = rejected_rows.rows(
                rejected, symbol=result.task.asset_id, data_type=NEWEST,
                source=result.entry.source, fetched_at=fetched_at, run_id=self.run_id,
                sync_id=result.entry.sync_id, once=True,
            )  # fmt: skip
            writes.append(TableWrite(rejects, rejected_rows.SPEC, Mode.INSERT_NEW))
            self._info(
                f"{result.task.asset_id}: {len(rejects)} item(s) rejected "
                f"({', '.join(sorted(set(rejected['reason'])))})",
                warning=True,
            )
        return rows, Unit(writes=tuple(writes), log=replace(result.entry))

    def _committed(self, result: WalletResult, committed: Committed) -> None:
        count(result.entry, committed, TABLE, result.changes)
        name = result.task.asset_id
        result.after = tuple(  # type: ignore[assignment]
            committed.watermarks.get((name, dt), was)
            for dt, was in zip(MARKS, result.after, strict=True)
        )

    def _closing_unit(self, result: WalletResult) -> Unit:
        """The wallet's last unit: its status, and its deferral recorded or cleared."""
        entry, error, deferral = result.entry, result.error, None
        if isinstance(error, BudgetExhausted):
            deferral = deferrals.Deferral(
                entry.symbol, NEWEST, entry.source, error.until, result.task.window.start,
                result.task.window.end, error.reason[:500], self.run_id,
            )  # fmt: skip
        return closing_unit(entry, NEWEST, deferral)

    def _units_spent(self, source, start_balance, result: WalletResult) -> float:
        """Units this wallet's sync cost: the balance before it less the balance after it."""
        if source is None or start_balance is None:
            return 0.0
        try:
            end = source.units_balance()
        except Exception as exc:  # noqa: BLE001 - the sync's own outcome matters more
            self._info(f"{result.task.asset_id}: could not read the units balance: {exc}", True)
            return 0.0
        spent = max(0.0, start_balance - end) if end is not None else 0.0
        if self.budget.per_day is None and _budgeted(source):  # else recorded call by call
            self.budget.spend(self.now, spent, result.calls)
        self.balance = end
        if _budgeted(source):
            self.remaining = end
        return spent

    def metadata(self) -> dict[str, Any]:
        lines = [
            "| wallet | new | changed | deleted | restored | calls | units | status |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in self.results:
            lines.append(
                f"| {r.task.asset_id} | {r.changes.new} | {r.changes.changed} | "
                f"{len(r.changes.deleted)} | {r.changes.restored} | {r.calls} | "
                f"{r.entry.api_units:g} | {r.entry.status} |"
            )
        meta: dict[str, Any] = {
            "wallets": len(self.results),
            "history_calls": sum(r.calls for r in self.results),
            "api_requests": self.meter.total,
            "units_spent": float(sum(r.entry.api_units for r in self.results)),
            "rows_fetched": sum(r.entry.rows_fetched for r in self.results),
            "rows_rejected": sum(r.entry.rows_rejected for r in self.results),
            "transactions_deleted": sum(len(r.changes.deleted) for r in self.results),
            "transactions_restored": sum(r.changes.restored for r in self.results),
            "transactions_changed": sum(r.changes.changed for r in self.results),
            "synced": "\n".join(lines),
        }
        if self.remaining is not None:  # DeBank's: the demo wallet's units are make-believe
            meta["units_remaining"] = float(self.remaining)
        if self.spending is not None:
            meta |= {f"units_{k}": float(v) for k, v in self.spending().items()}
        if self.budget.per_day is not None:
            meta["units_budget_per_day"] = float(self.budget.per_day)
        if self.file_errors:
            meta["account_errors"] = "\n".join(f"- {e}" for e in self.file_errors)
        return meta

    def _info(self, message: str, warning: bool = False) -> None:
        if self.log is not None:
            (self.log.warning if warning else self.log.info)(message)


def _budgeted(source: WalletSource) -> bool:
    """Whether ``source`` spends DeBank's units, which the daily budget caps (the demo's are
    make-believe)."""
    return source.name == "debank"


def _newest(rows: pd.DataFrame) -> Cursor | None:
    if rows.empty:
        return None
    last = rows.sort_values(["ts", "tx_id"]).iloc[-1]
    return Cursor(str(last["tx_id"]), last["ts"].to_pydatetime())


def _at(second: int | None) -> datetime:
    return datetime.fromtimestamp(second or 0, UTC)


def _outcome(result: WalletResult) -> Outcome:
    error = result.error
    if isinstance(error, BudgetExhausted):
        return Outcome(f"{result.task.asset_id} ({error})", error, error.until, "budget_exhausted")
    return Outcome(result.task.asset_id, error)
