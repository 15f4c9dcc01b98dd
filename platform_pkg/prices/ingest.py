"""Incremental price ingestion: plan what to fetch from the watermarks, then stream it in pages.

No Dagster here: the asset builds a :class:`PriceIngestion` and the IO manager commits its batches.
Each page is validated first: rows unfit to store go to ``rejected_rows`` in the page's own
transaction. A source that asks for a longer cooldown than the run waits (429/418) defers that
window: ``sync_log`` says ``rate_limited``, the symbol is recorded in ``deferred_fetches`` and
served first by the next run, the other symbols go on. A run with deferred windows fails with
:class:`RateLimitedError` — so Dagster does not mark those partitions materialised and a backfill
or schedule retries them — while everything fetched is kept, with exact watermarks.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
import pandas as pd

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
from platform_pkg.partitions import SymbolWindow
from platform_pkg.prices import corporate_actions, deferrals, rejected_rows
from platform_pkg.warehouse import sync_log, watermarks
from platform_pkg.warehouse.batches import Batch, BatchStream
from platform_pkg.warehouse.upsert import UpsertStats
from platform_pkg.warehouse.watermarks import Coverage, Segment


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
    entry: sync_log.SyncEntry
    before: Coverage | None
    after: Coverage | None = None
    error: BaseException | None = None

    @property
    def deferred(self) -> bool:
        return isinstance(self.error, SourceDeferred)


class IngestionError(RuntimeError):
    """Some symbols of a run could not be fetched; the others were committed."""


class RateLimitedError(IngestionError):
    """Only rate limits stood in the way: the deferred windows are retried by a later run."""


@dataclass(eq=False)
class _Tag:
    result: WindowResult
    segment_start: datetime
    reaches: datetime
    newest: datetime | None
    rows: int
    final: bool = False
    rejected: pd.DataFrame | None = None
    actions: pd.DataFrame | None = None
    source: str | None = None
    rejected_saved: int = 0  # set in the transaction, added to the log entry once committed


class _Plan:
    """Tags the run's first, empty batch: its transaction reads which symbols were deferred."""


@dataclass
class PriceIngestion(BatchStream):
    """Fetches each symbol window's missing candles page by page and commits them as it goes."""

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
    # A run's final status, or None while it may still run: closes rows of killed runs.
    run_ended: Callable[[str], str | None] | None = None
    meter: RequestMeter = field(default_factory=RequestMeter)
    results: list[WindowResult] = field(default_factory=list)
    deferred_before: dict[str, datetime | None] = field(default_factory=dict)
    rows_by_source: Counter[str] = field(default_factory=Counter)

    @property
    def step(self) -> timedelta:
        return interval_delta(self.interval)

    def batches(self) -> Iterator[Batch]:
        yield Batch(pd.DataFrame(), _Plan())
        # Symbols deferred by an earlier run go first (stable: otherwise in partition order).
        for window in sorted(self.windows, key=lambda w: w.symbol not in self.deferred_before):
            yield from self._window_batches(window)
        failed = [r for r in self.results if r.error is not None and not r.deferred]
        deferred = [r for r in self.results if r.deferred]
        later = ""
        if deferred:
            until = max(r.error.until for r in deferred)
            later = (
                f"{len(deferred)} of {len(self.results)} fetches deferred (rate_limited) until "
                f"{until:%Y-%m-%d %H:%M:%S} UTC, to be served first by the next run: "
                + ", ".join(str(r.window) for r in deferred)
            )
        if failed:
            detail = "; ".join(f"{r.window}: {r.error}" for r in failed)
            message = f"{len(failed)} of {len(self.results)} fetches failed: {detail}"
            raise IngestionError(message + (f"; {later}" if later else ""))
        if deferred:
            raise RateLimitedError(later)

    def _window_batches(self, window: SymbolWindow) -> Iterator[Batch]:
        before = self.read_coverage(window.symbol, self.data_type)
        entry = sync_log.SyncEntry(
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
                for page in paginate(
                    source, window.symbol, self.interval, seg_start, seg_end, self.now
                ):
                    # The watermark covers rejected rows too: they were fetched, not missed.
                    newest = page["ts"].iloc[-1].to_pydatetime()
                    entry.rows_fetched += len(page)
                    entry.api_requests = self.meter.total - requests_before
                    entry.api_units = sum(self.meter.units.values()) - units_before
                    self._note_source(window, entry, source)
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
                    tag = _Tag(
                        result,
                        seg_start,
                        newest + self.step,
                        newest,
                        len(page),
                        rejected=rejected,
                        actions=corporate_actions.from_page(good),
                        source=str(page["source"].iloc[-1]),
                    )
                    yield Batch(self._to_rows(window.symbol, good), tag)
                reaches = min(seg_end, ceil_time(self.now, self.interval))
                yield Batch(pd.DataFrame(), _Tag(result, seg_start, reaches, newest, 0, final=True))
        except SourceDeferred as exc:
            result.error = exc
            entry.status = "rate_limited"
            entry.error = f"{type(exc).__name__}: {exc}"
            self._info(f"{window} {self.data_type}: deferred: {exc}", warning=True)
            yield _closing(result)
        except Exception as exc:
            result.error = exc
            entry.status = "partial" if entry.rows_inserted or entry.rows_updated else "failed"
            entry.error = f"{type(exc).__name__}: {exc}"
            self._info(f"{window} {self.data_type}: {entry.error}", warning=True)
            yield _closing(result)
        else:
            entry.status = "success"
            yield _closing(result)
        finally:
            entry.api_requests = self.meter.total - requests_before
            entry.api_units = sum(self.meter.units.values()) - units_before

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

    def _note_source(self, window: SymbolWindow, entry: sync_log.SyncEntry, source) -> None:
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

    def in_transaction(
        self, con: duckdb.DuckDBPyConnection, batch: Batch, stats: UpsertStats
    ) -> None:
        if isinstance(batch.tag, _Plan):
            self.deferred_before = deferrals.pending(con, self.data_type)
            if self.run_ended is not None:
                for run_id, status in sync_log.close_abandoned(
                    con, self.run_ended, datetime.now(UTC)
                ).items():
                    self._info(
                        f"sync_log: closed the fetches left running by run {run_id} ({status})",
                        warning=True,
                    )
            return
        tag: _Tag = batch.tag
        entry = tag.result.entry
        fetched_at = datetime.now(UTC)
        rejected = 0
        if tag.rejected is not None and not tag.rejected.empty:
            rejected = rejected_rows.save(
                con,
                tag.rejected,
                symbol=entry.symbol,
                data_type=self.data_type,
                source=tag.source,
                fetched_at=fetched_at,
                run_id=self.run_id,
                sync_id=entry.sync_id,
            )
        if tag.actions is not None and not tag.actions.empty:
            corporate_actions.save(con, entry.symbol, tag.actions, fetched_at)
        tag.rejected_saved = rejected
        if tag.final and entry.status == "rate_limited":
            error: SourceDeferred = tag.result.error  # type: ignore[assignment]
            deferrals.record(
                con,
                deferrals.Deferral(
                    entry.symbol,
                    self.data_type,
                    error.source,
                    error.until,
                    tag.result.window.start,
                    tag.result.window.end,
                    error.reason,
                    self.run_id,
                ),
                fetched_at,
            )
        elif tag.final and entry.status == "success":
            deferrals.clear(con, entry.symbol, self.data_type)
        if tag.newest is not None or tag.final:
            segment = Segment(tag.segment_start, tag.reaches, tag.newest)
            if tag.reaches > tag.segment_start or tag.newest is not None:
                tag.result.after = watermarks.commit_segment(
                    con, entry.symbol, self.data_type, segment, self.step, datetime.now(UTC)
                )
        # The log row shows what is committed once this transaction is.
        pending = replace(entry)
        pending.rows_inserted += stats.inserted
        pending.rows_updated += stats.updated
        pending.rows_rejected += rejected
        if tag.final and entry.status != "running":
            pending.finished_at = datetime.now(UTC)
        sync_log.save(con, pending)

    def committed(self, batch: Batch, stats: UpsertStats) -> None:
        if isinstance(batch.tag, _Plan):
            return
        entry = batch.tag.result.entry
        entry.rows_inserted += stats.inserted
        entry.rows_updated += stats.updated
        entry.rows_rejected += batch.tag.rejected_saved

    def finish(self, con: duckdb.DuckDBPyConnection, error: BaseException | None) -> None:
        if error is None or isinstance(error, IngestionError):
            return
        # An error outside a window's own handling (e.g. the process being interrupted).
        for result in self.results:
            if result.entry.status == "running":
                result.entry.status = "partial" if result.entry.rows_inserted else "failed"
                result.entry.error = f"{type(error).__name__}: {error}"
                result.entry.finished_at = datetime.now(UTC)
                sync_log.save(con, result.entry)

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


def _closing(result: WindowResult) -> Batch:
    """The window's last, empty batch: its transaction records the window's final status."""
    start = result.window.start
    return Batch(pd.DataFrame(), _Tag(result, start, start, None, 0, final=True))


def _fmt(coverage: Coverage | None) -> str:
    if coverage is None:
        return "none"
    return f"{coverage.oldest:%Y-%m-%d %H:%M} .. {coverage.newest:%Y-%m-%d %H:%M}"


def _describe(segments: list[tuple[datetime, datetime]]) -> str:
    if not segments:
        return "nothing (already synced)"
    return ", ".join(f"[{a:%Y-%m-%d %H:%M}, {b:%Y-%m-%d %H:%M})" for a, b in segments)
