"""Incremental exchange-trade sync: each (account, market) walks only what is new, page by page.

No Dagster here: the asset builds a :class:`TradeSync`, a stream of units the IO manager commits
— each page's trades with their rejected rows, watermark moves and ``sync_log`` row. An
incremental sync with nothing new costs one request per (account, market), whatever dates the
run covers. The reconcile re-reads the last days in full and soft-deletes what the exchange no
longer returns. Failures, deferrals and unknown markets stay with their (account, market); the
others go on.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Generator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from platform_pkg.accounts.model import AccountError, ExchangeAccount
from platform_pkg.accounts.resources import AccountProblem
from platform_pkg.fetches import Changes, closing_unit, count, fail, guarded
from platform_pkg.market.retry import SourceDeferred
from platform_pkg.market.source import RequestMeter, UnknownSymbolError
from platform_pkg.outcome import Outcome, raise_for_failures
from platform_pkg.partitions import SymbolWindow
from platform_pkg.trades import paging
from platform_pkg.trades.paging import TradePage, Watermarks
from platform_pkg.trades.rows import TRADE_KEY, check_trades
from platform_pkg.trades.source import TradeSource
from platform_pkg.warehouse import deferrals, rejected_rows
from platform_pkg.warehouse.sync_log import SyncEntry, SyncStatus
from platform_pkg.warehouse.unit import Committed, Mode, TableWrite, Unit, UnitStream
from platform_pkg.warehouse.upsert import Scope
from platform_pkg.warehouse.watermarks import Cursor, Order

TABLE = "exchange_trades"
DATA_TYPE = paging.NEWEST


class AccountsFileError(ValueError):
    """An error in the accounts file that keeps an account from syncing."""


@dataclass(frozen=True)
class TradeTask:
    """One (account, market) to sync in a run, and why it is synced."""

    account: ExchangeAccount
    symbol: str
    window: SymbolWindow
    reason: str
    explicit: bool = True  # named in the account's markets (else: held, traded or tracked)

    @property
    def asset_id(self) -> str:
        return f"{self.account.name}:{self.symbol}"


@dataclass
class TaskResult:
    task: TradeTask
    entry: SyncEntry
    before: Cursor | None
    after: Cursor | None = None
    error: BaseException | None = None
    changes: Changes = field(default_factory=Changes)


@dataclass
class TradeSync(UnitStream):
    tasks: list[TradeTask]
    source_for: Callable[[ExchangeAccount, RequestMeter], TradeSource]
    read_marks: Callable[[str], Watermarks]
    now: datetime
    accounts_file: Path
    reconcile_days: int = 0  # > 0: also re-read that many days in full and compare
    run_id: str | None = None
    log: Any = None
    deferred_before: dict[str, datetime | None] = field(default_factory=dict)
    # Errors of the accounts file that keep an exchange account (or all) from syncing: the run
    # syncs every valid account, then fails naming them.
    file_errors: list[str] = field(default_factory=list)
    meter: RequestMeter = field(default_factory=RequestMeter)
    results: list[TaskResult] = field(default_factory=list)
    _sources: dict[str, TradeSource] = field(default_factory=dict)

    def units(self) -> Generator[Unit, Committed, None]:
        yield from guarded(self._all_units(), lambda: [r.entry for r in self.results])
        raise_for_failures(
            [
                Outcome(
                    r.task.asset_id,
                    r.error,
                    r.error.until if isinstance(r.error, SourceDeferred) else None,
                )
                for r in self.results
            ]
            + [Outcome("the accounts file", AccountsFileError(e)) for e in self.file_errors]
        )

    def _all_units(self) -> Generator[Unit, Committed, None]:
        for task in sorted(self.tasks, key=lambda t: t.asset_id not in self.deferred_before):
            yield from self._task_units(task)

    def _task_units(self, task: TradeTask) -> Generator[Unit, Committed, None]:
        if not task.explicit and not self._listed(task):
            return
        marks = self.read_marks(task.asset_id)
        entry = SyncEntry(
            sync_id=str(uuid.uuid4()),
            run_id=self.run_id,
            symbol=task.asset_id,
            data_type=DATA_TYPE,
            source=None,
            started_at=datetime.now(UTC),
            requested_start=task.window.start,
            requested_end=task.window.end,
        )
        result = TaskResult(task, entry, marks.newest, marks.newest)
        self.results.append(result)
        requests, units = self.meter.total, sum(self.meter.units.values())
        throttled = self.meter.throttled.total()
        try:
            source = self._source(task.account)
            entry.source = f"{source.name} ({task.account.name})"
            self._market(source, task)
            for page in self._pages(source, task, marks):
                entry.api_requests = self.meter.total - requests
                entry.api_units = sum(self.meter.units.values()) - units
                entry.api_throttled = self.meter.throttled.total() - throttled
                entry.rows_fetched += page.fetched
                committed = yield self._page_unit(result, page)
                self._committed(result, committed)
            if self.reconcile_days:
                yield from self._reconcile(source, result)
        except SourceDeferred as exc:
            result.error = exc
            entry.status, entry.error = SyncStatus.RATE_LIMITED, f"{type(exc).__name__}: {exc}"
            self._info(f"{task.asset_id}: deferred: {exc}", warning=True)
        except AccountProblem as exc:
            result.error = exc
            entry.status, entry.error = SyncStatus.FAILED, str(exc)
            self._info(f"{task.asset_id}: not synced: {exc}", error=True)
        except Exception as exc:
            result.error = exc
            fail(entry, exc)
            self._info(f"{task.asset_id}: {entry.error}", warning=True)
        else:
            entry.status = SyncStatus.SUCCESS
        entry.api_requests = self.meter.total - requests
        entry.api_units = sum(self.meter.units.values()) - units
        entry.api_throttled = self.meter.throttled.total() - throttled
        entry.finished_at = datetime.now(UTC)
        yield self._closing_unit(result)

    def _source(self, account: ExchangeAccount) -> TradeSource:
        if account.name not in self._sources:
            self._sources[account.name] = self.source_for(account, self.meter)
        return self._sources[account.name]

    def _listed(self, task: TradeTask) -> bool:
        """Whether the exchange lists a market the account syncs implicitly (a problem with the
        account itself is reported by the sync that follows)."""
        try:
            self._source(task.account).market(task.symbol)
        except UnknownSymbolError:
            self._info(f"{task.asset_id}: not synced: {task.account.exchange} does not list it")
            return False
        except Exception:  # noqa: BLE001 - reported, with its sync_log row, by _task_units
            return True
        return True

    def _market(self, source: TradeSource, task: TradeTask) -> None:
        """An explicitly listed market the exchange does not list is the file's error."""
        try:
            source.market(task.symbol)
        except UnknownSymbolError as exc:
            account = task.account
            raise AccountProblem(
                AccountError(
                    self.accounts_file, account.line or None, account.name, "markets", str(exc),
                    "exchange",
                )
            ) from None  # fmt: skip

    @staticmethod
    def _checker(source: TradeSource, task: TradeTask) -> paging.Check:
        def check(trades):
            return check_trades(
                trades,
                account=task.account.name,
                exchange=source.name,
                symbol=task.symbol,
                fetched_at=datetime.now(UTC),
                integer_ids=source.id_cursor,
            )

        return check

    def _pages(self, source: TradeSource, task: TradeTask, marks: Watermarks):
        check = self._checker(source, task)
        if source.id_cursor:
            return paging.walk_ids(source, task.symbol, task.asset_id, marks, check)
        return paging.walk_time(
            source,
            task.symbol,
            task.asset_id,
            marks,
            task.window.start,
            self.now,
            check,
            Order.TIME,
        )

    def _reconcile(self, source: TradeSource, result: TaskResult):
        """Re-read the last ``reconcile_days`` in full; a stored trade the exchange no longer
        returns in that span is soft-deleted, one that came back is restored."""
        task = result.task
        start = self.now - timedelta(days=self.reconcile_days)
        order = Order.ID if source.id_cursor else Order.TIME
        present: list[pd.DataFrame] = []
        check = self._checker(source, task)
        for page in paging.walk_reconcile(
            source, task.symbol, task.asset_id, start, self.now, check, order
        ):
            result.entry.rows_fetched += page.fetched
            if page.rows is not None:
                present.append(page.rows[TRADE_KEY])
            committed = yield self._page_unit(result, page)
            self._committed(result, committed)
        keys = pd.concat(present) if present else pd.DataFrame(columns=TRADE_KEY, dtype=object)
        scope = Scope({"account": task.account.name, "symbol": task.symbol}, "ts", start, self.now)
        gone = TableWrite(keys, mode=Mode.SOFT_DELETE_MISSING, scope=scope)
        committed = yield Unit(writes=(gone,), log=replace(result.entry))
        self._committed(result, committed)
        changes = result.changes
        self._info(
            f"{task.asset_id}: reconciled {start:%Y-%m-%d %H:%M}..{self.now:%Y-%m-%d %H:%M}: "
            f"{changes.changed} changed, {len(changes.deleted)} deleted, {changes.restored} restored"
        )

    def _page_unit(self, result: TaskResult, page: TradePage) -> Unit:
        writes = []
        if page.rows is not None:
            writes.append(TableWrite(page.rows))
        if page.rejected is not None and not page.rejected.empty:
            rows = rejected_rows.rows(
                page.rejected,
                symbol=result.task.asset_id,
                data_type=DATA_TYPE,
                source=result.entry.source,
                fetched_at=datetime.now(UTC),
                run_id=self.run_id,
                sync_id=result.entry.sync_id,
            )
            writes.append(TableWrite(rows, rejected_rows.SPEC, Mode.INSERT_NEW))
            self._info(
                f"{result.task.asset_id}: {len(rows)} trade(s) rejected "
                f"({', '.join(sorted(set(page.rejected['reason'])))})",
                warning=True,
            )
        return Unit(writes=tuple(writes), watermarks=page.moves, log=replace(result.entry))

    def _committed(self, result: TaskResult, committed: Committed) -> None:
        count(result.entry, committed, TABLE, result.changes)
        after = committed.watermarks.get((result.task.asset_id, paging.NEWEST))
        if isinstance(after, Cursor):
            result.after = after

    def _closing_unit(self, result: TaskResult) -> Unit:
        """The last unit of an (account, market): its status, its deferral recorded or cleared."""
        entry, error, deferral = result.entry, result.error, None
        if isinstance(error, SourceDeferred):
            deferral = deferrals.Deferral(
                entry.symbol, DATA_TYPE, error.source, error.until, result.task.window.start,
                result.task.window.end, error.reason, self.run_id,
            )  # fmt: skip
        return closing_unit(entry, DATA_TYPE, deferral)

    def metadata(self) -> dict[str, Any]:
        lines = [
            "| account | market | why | new | newest id before → after | status |",
            "|---|---|---|---|---|---|",
        ]
        for r in self.results:
            lines.append(
                f"| {r.task.account.name} | {r.task.symbol} | {r.task.reason} | {r.changes.new} | "
                f"{_fmt(r.before)} → {_fmt(r.after)} | {r.entry.status} |"
            )
        meta: dict[str, Any] = {
            "accounts": len({r.task.account.name for r in self.results}),
            "markets_synced": len(self.results),
            "api_requests": self.meter.total,
            "api_units": float(sum(self.meter.units.values())),
            "rows_fetched": sum(r.entry.rows_fetched for r in self.results),
            "rows_rejected": sum(r.entry.rows_rejected for r in self.results),
            "synced": "\n".join(lines),
        }
        if self.reconcile_days:
            deleted = [k for r in self.results for k in r.changes.deleted]
            meta |= {
                "reconcile_days": self.reconcile_days,
                "trades_changed": sum(r.changes.changed for r in self.results),
                "trades_deleted": len(deleted),
                "trades_restored": sum(r.changes.restored for r in self.results),
                "deleted": "\n".join(f"- {a} {s} {t}" for a, s, t in deleted[:50]) or "none",
            }
        problems = [str(r.error) for r in self.results if isinstance(r.error, AccountProblem)]
        problems += self.file_errors
        if problems:
            meta["account_errors"] = "\n".join(f"- {p}" for p in problems)
        return meta

    def _info(self, message: str, warning: bool = False, error: bool = False) -> None:
        if self.log is not None:
            level = "error" if error else "warning" if warning else "info"
            getattr(self.log, level)(message)


def _fmt(cursor: Cursor | None) -> str:
    return "none" if cursor is None or cursor.last_id is None else cursor.last_id
