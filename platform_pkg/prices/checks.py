"""Data quality checks on ``prices_1h`` and ``prices_1d``, shown in each asset's Checks tab.

They run after every materialisation, on the windows that run fetched (its ``sync_log`` rows),
and over the whole table when executed on their own from the UI. A failing check never changes a
candle: keys and OHLC fail as ERROR, gaps, spikes, freshness and the cross-source comparison warn.
"""

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import dagster as dg
import pandas as pd
from pydantic import Field

from platform_pkg.checks import check_result
from platform_pkg.findings import markdown_table, records
from platform_pkg.market.calendars import calendar_for
from platform_pkg.market.candles import interval_delta
from platform_pkg.market.catalogue import CRYPTO_CLASSES, asset_class_of
from platform_pkg.market.resources import MarketData
from platform_pkg.market.source import RequestMeter
from platform_pkg.partitions import SymbolWindow
from platform_pkg.portfolio import tracked
from platform_pkg.prices import anomalies, crosscheck, quality
from platform_pkg.prices.assets import WAREHOUSE_POOL, prices_1d, prices_1h
from platform_pkg.warehouse.resources import Warehouse
from platform_pkg.warehouse.sync_log import SyncEntry, SyncStatus
from platform_pkg.warehouse.unit import Mode, TableWrite, Unit, commit
from platform_pkg.warehouse.upsert import table_columns

ERROR, WARN = dg.AssetCheckSeverity.ERROR, dg.AssetCheckSeverity.WARN


class PriceChecks(dg.ConfigurableResource):
    """Thresholds of the price checks."""

    spike_threshold: float = Field(
        default=0.5,
        gt=0,
        description="A close-to-close move larger than this (0.5 = 50 %) between consecutive "
        "candles is recorded in price_anomalies for review.",
    )
    freshness_grace_candles: int = Field(
        default=2,
        ge=0,
        description="How many candles an active symbol's newest stored one may lag behind the "
        "newest its market's calendar has closed.",
    )
    cross_source_symbols: int = Field(
        default=3,
        ge=0,
        description="Crypto symbols compared with CoinGecko per evaluation (one request each).",
    )
    cross_source_days: int = Field(
        default=5, ge=1, le=60, description="Recent daily closes compared per symbol."
    )
    cross_source_tolerance: float = Field(
        default=0.03,
        gt=0,
        description="Largest relative difference from CoinGecko's close that passes (its daily "
        "close is its last sample of the day, not the exchange's close).",
    )


DESCRIPTIONS = {
    "keys": "No duplicate (symbol, ts), no candle in the future, none off the interval's grid.",
    "ohlc": "Prices > 0, volume ≥ 0, low ≤ min(open, close), max(open, close) ≤ high.",
    "gaps": "Every candle the symbol's market calendar expects between its first and newest "
    "stored candle is stored, or is a known gap (asked for again, still not served).",
    "spikes": "Close-to-close moves over the threshold are recorded in price_anomalies; warns "
    "while any is unreviewed (python -m platform_pkg.cli anomalies).",
    "freshness": "Each active symbol's newest candle is as recent as its market's calendar allows.",
    "cross_source": "Sampled daily closes of crypto symbols agree with CoinGecko's.",
}


def checks_for(asset: dg.AssetsDefinition, interval: str) -> dg.AssetChecksDefinition:
    """The checks of one price asset, evaluated together in one step."""
    table = asset.key.path[-1]
    names = [n for n in DESCRIPTIONS if n != "cross_source" or interval == "1d"]
    specs = [dg.AssetCheckSpec(n, asset=asset, description=DESCRIPTIONS[n]) for n in names]

    @dg.multi_asset_check(
        name=f"{table}_checks",
        specs=specs,
        description=f"Data quality of {table}: {', '.join(names)}.",
        pool=WAREHOUSE_POOL,
    )
    def _checks(
        context: dg.AssetCheckExecutionContext,
        warehouse: Warehouse,
        market: MarketData,
        price_checks: PriceChecks,
    ) -> Iterator[dg.AssetCheckResult]:
        evaluation = Evaluation(
            table, interval, market.clock()(), context.run.run_id, price_checks, context.log
        )
        yield from evaluation.run(warehouse, market, names)

    return _checks


class Evaluation:
    """One evaluation of a price table's checks."""

    def __init__(self, table, interval, now, run_id, settings: PriceChecks, log=None):
        self.table, self.interval, self.now, self.run_id = table, interval, now, run_id
        self.settings, self.log = settings, log

    def run(
        self, warehouse: Warehouse, market: MarketData, names: list[str]
    ) -> Iterator[dg.AssetCheckResult]:
        with warehouse.connection() as con:
            if not table_columns(con, self.table):
                for name in names:
                    yield _nothing_yet(name, self.table)
                return
            part = quality.Slice(tuple(_run_windows(con, self.table, self.run_id)))
            table, interval, now = self.table, self.interval, self.now
            grace = interval_delta(interval) * self.settings.freshness_grace_candles

            def calendar_of(symbol: str, asset_class: str | None):
                return calendar_for(symbol, asset_class, market.source_name(symbol, asset_class))

            findings = [
                ("keys", ERROR, quality.keys(con, table, interval, part, now)),
                ("ohlc", ERROR, quality.ohlc(con, table, part)),
                (
                    "gaps",
                    WARN,
                    quality.gap_report(
                        con, table, interval, part, calendar_for, asset_class_of, now
                    ),
                ),
                (
                    "freshness",
                    WARN,
                    quality.freshness(
                        con, table, interval, tracked.active_symbols(con), calendar_of, now, grace
                    ),
                ),
            ]
            spikes = quality.spikes(con, table, part, self.settings.spike_threshold)
        for name, severity, finding in findings:
            yield check_result(name, finding, severity)
        yield self._spikes(warehouse, spikes, part)
        if "cross_source" in names:
            yield self._cross_source(warehouse, market)

    def _spikes(
        self, warehouse: Warehouse, spikes: pd.DataFrame, part: quality.Slice
    ) -> dg.AssetCheckResult:
        threshold = self.settings.spike_threshold
        found = anomalies.rows(
            spikes, data_type=self.table, threshold=threshold, now=self.now, run_id=self.run_id
        )
        inserted = 0
        if found.empty:
            with warehouse.connection() as con:
                open_rows = anomalies.unreviewed(con, self.table)
        else:
            with warehouse.transaction() as con:
                unit = Unit(writes=(TableWrite(found, anomalies.SPEC, Mode.INSERT_NEW),))
                committed = commit(con, None, unit, run_id=self.run_id, now=datetime.now(UTC))
                inserted = committed.of(anomalies.SPEC.name).inserted
                open_rows = anomalies.unreviewed(con, self.table)
        sample = open_rows[["anomaly_id", "symbol", "ts", "prev_close", "close", "change"]]
        return dg.AssetCheckResult(
            check_name="spikes",
            passed=open_rows.empty,
            severity=WARN,
            description=None
            if open_rows.empty
            else f"{len(open_rows)} move(s) over {threshold:.0%} await review: "
            "python -m platform_pkg.cli anomalies review ID",
            metadata={
                "scope": part.describe(),
                "threshold": threshold,
                "moves_in_scope": len(spikes),
                "new_anomalies": inserted,
                "unreviewed": len(open_rows),
                **_sample(sample),
            },
        )

    def _cross_source(self, warehouse: Warehouse, market: MarketData) -> dg.AssetCheckResult:
        meter = RequestMeter()
        reference, why_not = market.reference_source(meter)
        with warehouse.connection() as con:
            crypto = [
                s
                for s, cls in tracked.active_symbols(con).items()
                if (cls or asset_class_of(s)) in CRYPTO_CLASSES
            ]
        if reference is None or not crypto or self.settings.cross_source_symbols == 0:
            reason = why_not or (
                "no active crypto symbol to compare"
                if not crypto
                else "cross_source_symbols is 0 (switched off)"
            )
            return dg.AssetCheckResult(
                check_name="cross_source",
                passed=True,
                description=f"skipped: {reason}",
                metadata={"skipped": reason, "api_requests": 0},
            )
        picked = crosscheck.pick_symbols(
            crypto, self.settings.cross_source_symbols, self.now.date()
        )
        frames, failures, entries = [], [], []
        for symbol in picked:
            entry, frame, error = self._compare_one(warehouse, reference, meter, symbol)
            entries.append(entry)
            if frame is not None:
                frames.append(frame)
            if error:
                failures.append(f"{symbol}: {error}")
        with warehouse.transaction() as con:
            for entry in entries:
                commit(con, None, Unit(log=entry), run_id=self.run_id, now=datetime.now(UTC))
        compared = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
        off = compared[compared["within"].eq(False)] if not compared.empty else compared
        return dg.AssetCheckResult(
            check_name="cross_source",
            passed=off.empty,
            severity=WARN,
            description=(
                f"{len(off)} close(s) differ from CoinGecko by more than "
                f"{self.settings.cross_source_tolerance:.1%}"
                if not off.empty
                else None
            ),
            metadata={
                "symbols": ", ".join(picked),
                "closes_compared": int(compared["within"].notna().sum()) if frames else 0,
                "outside_tolerance": len(off),
                "tolerance": self.settings.cross_source_tolerance,
                "api_requests": meter.total,
                **({"reference_errors": "\n".join(failures)} if failures else {}),
                **_sample(off if not off.empty else compared),
            },
        )

    def _compare_one(self, warehouse, reference, meter: RequestMeter, symbol: str):
        started, before = datetime.now(UTC), meter.total
        with warehouse.connection() as con:
            stored = crosscheck.stored_closes(
                con, self.table, symbol, self.settings.cross_source_days, self.now
            )
        entry = SyncEntry(
            sync_id=str(uuid.uuid4()),
            run_id=self.run_id,
            symbol=symbol,
            data_type=f"{self.table}_crosscheck",
            source=reference.name,
            started_at=started,
        )
        frame, error = None, None
        if not stored.empty:
            first = pd.Timestamp(stored["ts"].iloc[0]).to_pydatetime()
            last = pd.Timestamp(stored["ts"].iloc[-1]).to_pydatetime() + timedelta(days=1)
            entry.requested_start, entry.requested_end = first, last
            try:
                ref = reference.fetch_page(symbol, "1d", first, last)
                frame = crosscheck.compare(
                    symbol, stored, ref, self.settings.cross_source_tolerance
                )
                entry.rows_fetched = len(ref)
            except Exception as exc:  # the reference being down is not a finding about the data
                error = f"{type(exc).__name__}: {exc}"
        entry.api_requests = meter.total - before
        entry.status = SyncStatus.FAILED if error else SyncStatus.SUCCESS
        entry.error, entry.finished_at = error, datetime.now(UTC)
        return entry, frame, error


def _run_windows(con, table: str, run_id: str | None) -> list[SymbolWindow]:
    """The windows this run fetched for ``table`` (none: the checks run on their own)."""
    if run_id is None or not table_columns(con, "sync_log"):
        return []
    rows = con.execute(
        "SELECT DISTINCT symbol, requested_start, requested_end FROM sync_log"
        " WHERE run_id = ? AND data_type = ? AND requested_start IS NOT NULL ORDER BY ALL",
        [run_id, table],
    ).fetchall()
    return [SymbolWindow(symbol, start, end) for symbol, start, end in rows]


def _nothing_yet(name: str, table: str) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        check_name=name,
        passed=True,
        description=f"{table} has not been materialised yet: nothing to check",
        metadata={"rows": 0},
    )


def _sample(frame: pd.DataFrame) -> dict:
    rows = records(frame)
    return {"sample": dg.MetadataValue.md(markdown_table(rows))} if rows else {}


prices_1h_checks = checks_for(prices_1h, "1h")
prices_1d_checks = checks_for(prices_1d, "1d")
