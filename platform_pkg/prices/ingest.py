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

import numpy as np
import pandas as pd

from platform_pkg.fetches import closing_unit, count, guarded
from platform_pkg.market.calendars import MarketCalendar, calendar_for
from platform_pkg.market.candles import (
    PRICE_TABLE_COLUMNS,
    ceil_time,
    floor_time,
    interval_delta,
)
from platform_pkg.market.catalogue import asset_class_of
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
from platform_pkg.prices import corporate_actions, gaps
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
    gaps: pd.DataFrame | None = None  # known_gaps rows found in the segment


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
    # The open times stored for a symbol in a range and its known gaps; None skips the gap pass.
    read_stored: Callable[[str, datetime, datetime], tuple[Any, list[gaps.Span]]] | None = None
    calendar_of: Callable[[str, str | None, str | None], MarketCalendar] = calendar_for
    max_gap_refetches: int = 5  # gap ranges a window asks the source for again, per segment
    meter: RequestMeter = field(default_factory=RequestMeter)
    results: list[WindowResult] = field(default_factory=list)
    gap_counts: Counter[str] = field(default_factory=Counter)
    _stopped: dict[str, datetime] = field(default_factory=dict)
    _rejected: dict[str, np.ndarray] = field(default_factory=dict)  # open times, epoch ms
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
        # Every window has a result before its first request; an error that stops the stream
        # itself never gets here, and fails the whole output.
        raise_for_failures(
            [
                Outcome(
                    str(r.window),
                    r.error,
                    r.error.until if isinstance(r.error, SourceDeferred) else None,
                    group=r.window.symbol,
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
        throttled_before = self.meter.throttled.total()

        def count_requests() -> None:
            entry.api_requests = self.meter.total - requests_before
            entry.api_units = sum(self.meter.units.values()) - units_before
            entry.api_throttled = self.meter.throttled.total() - throttled_before

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
                pages = self._pages(window, source, seg_start, seg_end)
                while (page := next(pages, None)) is not None:
                    newest = page.newest
                    entry.rows_fetched += len(page.rows) + _count(page.rejected)
                    count_requests()
                    self._note_source(window, entry, source)
                    committed = yield self._page_unit(result, page)
                    self._committed(result, committed)
                reaches = min(seg_end, ceil_time(self.now, self.interval))
                known = yield from self._gap_pass(
                    result, source, seg_start, reaches, self._stopped.pop(window.symbol, None)
                )
                final = Page(pd.DataFrame(), seg_start, reaches, newest, gaps=known)
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
        walk = paginate(source, window.symbol, self.interval, seg_start, seg_end, self.now)
        while True:
            try:
                page = next(walk)
            except StopIteration as done:
                if done.value is not None:  # the source stopped answering before the end
                    self._stopped[window.symbol] = done.value
                return
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
            if not rejected.empty:
                self._rejected[window.symbol] = np.union1d(
                    self._rejected.get(window.symbol, np.empty(0, dtype="int64")),
                    gaps.stored_times(rejected),
                )
            yield Page(
                self._to_rows(window.symbol, good),
                seg_start,
                newest + self.step,
                newest,
                rejected=rejected,
                actions=corporate_actions.from_page(good),
                source=str(page["source"].iloc[-1]),
            )

    def _gap_pass(
        self,
        result: WindowResult,
        source: PriceSource,
        start: datetime,
        reaches: datetime,
        stopped: datetime | None,
    ) -> Generator[Unit, Committed, pd.DataFrame | None]:
        """Expected candles missing in the segment just fetched: each run of them is asked for
        once more (at most ``max_gap_refetches`` per segment); the ``known_gaps`` rows for what
        the source still does not serve, committed with the segment's watermark."""
        if self.read_stored is None:
            return None
        symbol = result.window.symbol
        calendar = self.calendar_of(symbol, asset_class_of(symbol), source.name)
        closed_by = floor_time(self.now, self.interval)
        stored, known = self.read_stored(symbol, start - gaps.CONTEXT, reaches + gaps.CONTEXT)
        # A candle rejected as malformed was served: it is in rejected_rows, not missing.
        stored = np.union1d(stored, self._rejected.get(symbol, np.empty(0, dtype="int64")))
        span = gaps.bounds(stored, start, reaches, self.step, closed_by)
        if stopped is not None:  # the range the fetch claims but never received counts in full
            span = (span[0] if span else start, min(reaches, closed_by))
        if span is None or span[0] >= span[1]:
            return None
        expected = calendar.expected_opens(self.interval, *span)
        found = gaps.find(symbol, expected, stored, self.step, known)
        if not found:
            return None
        early = [g for g in found if stopped is not None and g.start >= stopped]
        retry = [g for g in found if g not in early][: self.max_gap_refetches]
        left = len(found) - len(early) - len(retry)
        still: list[gaps.Gap] = []
        for gap in retry:
            got = [stored]
            for page in self._pages(result.window, source, gap.start, gap.end):
                result.entry.rows_fetched += len(page.rows) + _count(page.rejected)
                got.append(gaps.stored_times(page.rows))
                unit = self._page_unit(result, replace(page, reaches=gap.start, newest=None))
                self._committed(result, (yield unit))
            window_expected = expected[(expected >= gap.start) & (expected < gap.end)]
            still += gaps.find(symbol, window_expected, np.sort(np.concatenate(got)), self.step)
        self._stopped.pop(symbol, None)  # a re-read's own early stop is part of its gap
        counts = {
            "gap_candles_found": sum(g.candles for g in found),
            "gap_candles_refetched": sum(g.candles for g in retry) - sum(g.candles for g in still),
            "gap_candles_recorded": sum(g.candles for g in [*still, *early]),
        }
        self.gap_counts.update(counts)
        self._info(
            f"{result.window} {self.data_type}: {counts['gap_candles_found']} expected candle(s) "
            f"missing in {len(found)} gap(s) ({calendar.name} calendar); asked {source.name} again "
            f"for {len(retry)}, got {counts['gap_candles_refetched']}; "
            f"{counts['gap_candles_recorded']} recorded in known_gaps"
            + (f"; {left} gap(s) left for a later run" if left else ""),
            warning=True,
        )
        recorded = [
            gaps.rows(
                found_gaps,
                data_type=self.data_type,
                reason=reason,
                detail=detail,
                source=source.name,
                calendar=calendar.name,
                now=datetime.now(UTC),
                run_id=self.run_id,
            )  # fmt: skip
            for found_gaps, reason, detail in (
                (still, gaps.GapReason.NO_CANDLE, "asked again: the source serves no candle"),
                (early, gaps.GapReason.STOPPED_EARLY, "the source stopped answering before it"),
            )
            if found_gaps
        ]
        return pd.concat(recorded, ignore_index=True) if recorded else None

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
        if page.gaps is not None and not page.gaps.empty:
            writes.append(TableWrite(page.gaps, gaps.SPEC, Mode.INSERT_NEW))
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


def closes_query(table: str, windows: list[SymbolWindow]) -> tuple[str, list[Any]]:
    """One query for the stored closes of ``table`` (an identifier from code) inside
    ``windows``: columns ``symbol, ts, close``, by symbol and time."""
    from platform_pkg.warehouse.upsert import q

    where = " OR ".join("(symbol = ? AND ts >= ? AND ts < ?)" for _ in windows) or "false"
    params = [value for w in windows for value in (w.symbol, w.start, w.end)]
    return f"SELECT symbol, ts, close FROM {q(table)} WHERE {where} ORDER BY symbol, ts", params
