"""Incremental price ingestion: plan what to fetch from the watermarks, then stream it in pages.

No Dagster here: the asset builds a :class:`PriceIngestion`, a stream of units of work that the
IO manager commits one by one — each page's candles with its rejected rows, corporate actions,
watermark move and ``sync_log`` row. Rows unfit to store go to ``rejected_rows``. A source that
asks for a longer cooldown than the run waits (429/418) defers that window: ``sync_log`` says
``rate_limited``, the symbol is recorded in ``deferred_fetches`` and served first by the next
run, the other symbols go on. A run with deferred windows fails with :class:`RateLimitedError` —
so Dagster does not mark those partitions materialised and a backfill or schedule retries them —
while everything fetched is kept, with exact watermarks.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd

from platform_pkg.fetches import closing_unit, count, guarded
from platform_pkg.market.candles import PRICE_TABLE_COLUMNS, ceil_time, interval_delta
from platform_pkg.market.retry import SourceDeferred
from platform_pkg.market.source import (
    PriceSource,
    RequestMeter,
    paginate,
    source_grid,
    volume_required,
)
from platform_pkg.market.validation import validate_candles
from platform_pkg.outcome import Outcome, raise_for_failures
from platform_pkg.partitions import SymbolWindow
from platform_pkg.portfolio import tracked
from platform_pkg.prices import corporate_actions
from platform_pkg.warehouse import deferrals, rejected_rows
from platform_pkg.warehouse.sync_log import SyncEntry, SyncStatus
from platform_pkg.warehouse.unit import Committed, Mode, TableWrite, Unit, UnitStream
from platform_pkg.warehouse.watermarks import Coverage, Segment, SegmentMove


def plan_segments(
    start: datetime,
    end: datetime,
    coverage: Coverage | None,
    step: timedelta,
    lookback: int,
    full_refresh: bool = False,
) -> list[tuple[datetime, datetime]]:
    """The stretches of ``[start, end)`` to fetch, given what is already synced.

    Nothing inside the synced range is fetched again except the newest candle and the
    ``lookback`` candles before it (the open candle and late corrections). A window that does not
    touch the synced range is widened to reach it, so the synced range stays one gap-free stretch.
    """
    if start >= end:
        return []
    if coverage is None or full_refresh:
        return [(start, end)]
    segments = []
    if start < coverage.oldest:
        segments.append((start, coverage.oldest))
    reread_from = coverage.newest - lookback * step
    if end > reread_from:
        if segments and segments[0][1] >= reread_from:
            segments = [(segments[0][0], end)]
        else:
            segments.append((reread_from, end))
    return segments


@dataclass
class WindowResult:
    window: SymbolWindow
    entry: SyncEntry
    before: Coverage | None
    after: Coverage | None = None
    error: BaseException | None = None


@dataclass(frozen=True)
class Page:
    """What one fetched page brings: its candles, what was rejected, where it reaches."""

    rows: pd.DataFrame
    segment_start: datetime
    reaches: datetime
    newest: datetime | None
    rejected: pd.DataFrame | None = None
    actions: pd.DataFrame | None = None
    source: str | None = None


@dataclass
class PriceIngestion(UnitStream):
    """Fetches each symbol window's missing candles page by page; each page is one unit."""

    data_type: str
    interval: str
    windows: list[SymbolWindow]
    source_for: Callable[[str, RequestMeter], PriceSource]
    read_coverage: Callable[[str, str], Coverage | None]
    now: datetime
    lookback: int = 3
    full_refresh: bool = False
    run_id: str | None = None
    log: Any = None
    # Symbols deferred by earlier runs (symbol → retry after), served first.
    deferred_before: dict[str, datetime | None] = field(default_factory=dict)
    # Runs whose fetches are still marked running, and a run's final status (None while it may
    # still run): closes the rows of killed runs.
    running_runs: list[str] = field(default_factory=list)
    run_ended: Callable[[str], str | None] | None = None
    meter: RequestMeter = field(default_factory=RequestMeter)
    results: list[WindowResult] = field(default_factory=list)
    rows_by_source: Counter[str] = field(default_factory=Counter)

    @property
    def step(self) -> timedelta:
        return interval_delta(self.interval)

    def units(self) -> Generator[Unit, Committed, None]:
        yield from guarded(self._all_units(), lambda: [r.entry for r in self.results])
        self._raise_for_failures()

    def _all_units(self) -> Generator[Unit, Committed, None]:
        yield from self._close_abandoned()
        # Symbols deferred by an earlier run go first (stable: otherwise in partition order).
        for window in sorted(self.windows, key=lambda w: w.symbol not in self.deferred_before):
            yield from self._window_units(window)

    def _close_abandoned(self) -> Generator[Unit, Committed, None]:
        if self.run_ended is None:
            return
        ended = {r: status for r in self.running_runs if (status := self.run_ended(r))}
        if ended:
            yield Unit(close_runs=ended)
            for run_id, status in ended.items():
                self._info(
                    f"sync_log: closed the fetches left running by run {run_id} ({status})", True
                )

    def _raise_for_failures(self) -> None:
        raise_for_failures(
            [
                Outcome(
                    str(r.window),
                    r.error,
                    r.error.until if isinstance(r.error, SourceDeferred) else None,
                )
                for r in self.results
            ]
        )

    def _window_units(self, window: SymbolWindow) -> Generator[Unit, Committed, None]:
        before = self.read_coverage(window.symbol, self.data_type)
        entry = SyncEntry(
            sync_id=str(uuid.uuid4()),
            run_id=self.run_id,
            symbol=window.symbol,
            data_type=self.data_type,
            source=None,
            started_at=datetime.now(UTC),
            requested_start=window.start,
            requested_end=window.end,
        )
        result = WindowResult(window, entry, before, after=before)
        self.results.append(result)
        requests_before = self.meter.total
        units_before = sum(self.meter.units.values())

        def count_requests() -> None:
            entry.api_requests = self.meter.total - requests_before
            entry.api_units = sum(self.meter.units.values()) - units_before

        try:
            source = self.source_for(window.symbol, self.meter)
            entry.source = source.name
            start, end = self._clamp(window, source)
            segments = plan_segments(
                start, end, before, self.step, self.lookback, self.full_refresh
            )
            self._info(
                f"{window} {self.data_type}: fetching {_describe(segments)} from {source.name}"
            )
            for seg_start, seg_end in segments:
                newest = None
                for page in self._pages(window, source, seg_start, seg_end):
                    newest = page.newest
                    entry.rows_fetched += len(page.rows) + _count(page.rejected)
                    count_requests()
                    self._note_source(window, entry, source)
                    committed = yield self._page_unit(result, page)
                    self._committed(result, committed)
                reaches = min(seg_end, ceil_time(self.now, self.interval))
                final = Page(pd.DataFrame(), seg_start, reaches, newest)
                count_requests()
                committed = yield self._page_unit(result, final)
                self._committed(result, committed)
        except SourceDeferred as exc:
            result.error = exc
            entry.status = SyncStatus.RATE_LIMITED
            entry.error = f"{type(exc).__name__}: {exc}"
            self._info(f"{window} {self.data_type}: deferred: {exc}", warning=True)
        except Exception as exc:
            result.error = exc
            entry.status = (
                SyncStatus.PARTIAL
                if entry.rows_inserted or entry.rows_updated
                else SyncStatus.FAILED
            )
            entry.error = f"{type(exc).__name__}: {exc}"
            self._info(f"{window} {self.data_type}: {entry.error}", warning=True)
        else:
            entry.status = SyncStatus.SUCCESS
        count_requests()
        entry.finished_at = datetime.now(UTC)
        yield self._closing_unit(result)

    def _pages(
        self, window: SymbolWindow, source: PriceSource, seg_start: datetime, seg_end: datetime
    ) -> Iterator[Page]:
        for page in paginate(source, window.symbol, self.interval, seg_start, seg_end, self.now):
            # The watermark covers rejected rows too: they were fetched, not missed.
            newest = page["ts"].iloc[-1].to_pydatetime()
            good, rejected = validate_candles(
                page,
                source_grid(source, self.interval),
                volume_required=volume_required(source),
            )
            if not rejected.empty:
                self._info(
                    f"{window} {self.data_type}: {len(rejected)} row(s) rejected "
                    f"({', '.join(sorted(set(rejected['reason'])))})",
                    warning=True,
                )
            self.rows_by_source.update(good["source"].astype(str).tolist())
            yield Page(
                self._to_rows(window.symbol, good),
                seg_start,
                newest + self.step,
                newest,
                rejected=rejected,
                actions=corporate_actions.from_page(good),
                source=str(page["source"].iloc[-1]),
            )

    def _page_unit(self, result: WindowResult, page: Page) -> Unit:
        entry = result.entry
        fetched_at = datetime.now(UTC)
        writes = [TableWrite(page.rows)]
        if page.rejected is not None and not page.rejected.empty:
            rows = rejected_rows.rows(
                page.rejected,
                symbol=entry.symbol,
                data_type=self.data_type,
                source=page.source,
                fetched_at=fetched_at,
                run_id=self.run_id,
                sync_id=entry.sync_id,
            )
            writes.append(TableWrite(rows, rejected_rows.SPEC, Mode.INSERT_NEW))
        if page.actions is not None and not page.actions.empty:
            rows = corporate_actions.rows(entry.symbol, page.actions, fetched_at)
            writes.append(TableWrite(rows, corporate_actions.SPEC))
        moves = []
        if page.reaches > page.segment_start or page.newest is not None:
            segment = Segment(page.segment_start, page.reaches, page.newest)
            moves.append(SegmentMove(entry.symbol, self.data_type, segment, self.step))
        return Unit(writes=tuple(writes), watermarks=tuple(moves), log=replace(entry))

    def _closing_unit(self, result: WindowResult) -> Unit:
        """The window's last unit: its final status, its deferral recorded or cleared, and when
        its prices last moved."""
        entry, error = result.entry, result.error
        deferral = None
        if isinstance(error, SourceDeferred):
            deferral = deferrals.Deferral(
                entry.symbol, self.data_type, error.source, error.until, result.window.start,
                result.window.end, error.reason, self.run_id,
            )  # fmt: skip
        unit = closing_unit(entry, self.data_type, deferral)
        if result.after != result.before:
            # The tracked symbol says when its prices last moved (once a window, not per page).
            update = tracked.price_update(entry.symbol, datetime.now(UTC))
            unit = replace(
                unit, writes=(*unit.writes, TableWrite(update, tracked.SPEC, Mode.UPDATE_EXISTING))
            )
        return unit

    def _committed(self, result: WindowResult, committed: Committed) -> None:
        count(result.entry, committed, self.data_type)
        after = committed.watermarks.get((result.window.symbol, self.data_type), result.after)
        result.after = after  # type: ignore[assignment]

    def _clamp(self, window: SymbolWindow, source: PriceSource) -> tuple[datetime, datetime]:
        start, end = window.start, min(window.end, self.now)
        earliest = source.earliest(window.symbol, self.interval)
        if earliest is not None and start < earliest:
            self._info(
                f"{window}: {source.name} serves {window.symbol} from {earliest:%Y-%m-%d %H:%M}; "
                "earlier days are left empty"
            )
            start = min(earliest, end)
        return start, end

    def _note_source(self, window: SymbolWindow, entry: SyncEntry, source) -> None:
        """A fallback taking over renames the source mid-window: say so once."""
        if source.name != entry.source:
            self._info(
                f"{window} {self.data_type}: now served by {source.name}"
                + (f" ({source.cause})" if getattr(source, "cause", None) else ""),
                warning=True,
            )
            entry.source = source.name

    def _to_rows(self, symbol: str, page: pd.DataFrame) -> pd.DataFrame:
        frame = page.copy()
        frame.insert(0, "symbol", symbol)
        frame["fetched_at"] = pd.Timestamp(datetime.now(UTC))
        return frame[list(PRICE_TABLE_COLUMNS)]

    def metadata(self) -> dict[str, Any]:
        sources = sorted({r.entry.source for r in self.results if r.entry.source})
        meta: dict[str, Any] = {
            "rows_fetched": sum(r.entry.rows_fetched for r in self.results),
            "api_requests": self.meter.total,
            "api_units": float(sum(self.meter.units.values())),
            "source": ", ".join(sources) or "none",
            "symbols": len({r.window.symbol for r in self.results}),
            "rows_rejected": sum(r.entry.rows_rejected for r in self.results),
        }
        if len(self.rows_by_source) > 1 or any(" → " in s for s in sources):
            meta["rows_by_source"] = dict(sorted(self.rows_by_source.items()))
        if len(self.results) == 1:
            r = self.results[0]
            meta["watermark_before"] = _fmt(r.before)
            meta["watermark_after"] = _fmt(r.after)
        else:
            meta["watermarks"] = "\n".join(
                f"{r.window}: {_fmt(r.before)} → {_fmt(r.after)}" for r in self.results
            )
        return meta

    def _info(self, message: str, warning: bool = False) -> None:
        if self.log is not None:
            (self.log.warning if warning else self.log.info)(message)


def _count(frame: pd.DataFrame | None) -> int:
    return 0 if frame is None else len(frame)


def _fmt(coverage: Coverage | None) -> str:
    if coverage is None:
        return "none"
    return f"{coverage.oldest:%Y-%m-%d %H:%M} .. {coverage.newest:%Y-%m-%d %H:%M}"


def _describe(segments: list[tuple[datetime, datetime]]) -> str:
    if not segments:
        return "nothing (already synced)"
    return ", ".join(f"[{a:%Y-%m-%d %H:%M}, {b:%Y-%m-%d %H:%M})" for a, b in segments)
