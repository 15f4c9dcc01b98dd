"""The holdings sensor: the ledger's inputs change → the ledger is rebuilt → holdings change →
symbol partitions and ranged price backfills. A symbol the portfolio file starts to hold gets its
partition and its history in the tick that asks for the ledger run, not one ledger run later
(the file's lines are parsed as the ledger run parses them); what only the ledger knows (an
older acquisition on an exchange, a currency to convert) follows from the holdings it writes.

The sensor only decides. It writes nothing to the warehouse (DuckDB has one writer, and the
daemon would take it from the runs): what it must record is written by the runs it requests, and
its own state is its cursor. It reads the portfolio file's digest, Dagster's event log (new
exchange trades, the holdings' latest materialisation, which lists what tracking needs per
symbol, and the lines the ledger run rejected) and, for the repairs, the price watermarks.

Rejected lines are said once, by the tick after the ledger run: in its skip reason (the summary
the UI shows for a tick that requests nothing) and in its log (for a tick that requests runs,
which cannot carry a skip reason).
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

import dagster as dg

from platform_pkg.catalog import lookup
from platform_pkg.ledger.assets import SUMMARY_METADATA, holdings, transactions
from platform_pkg.ledger.legs import INPUTS
from platform_pkg.market.resources import MarketData
from platform_pkg.partitions import block_range_tags, range_symbols, symbols_partitions
from platform_pkg.portfolio.assets import portfolio_transactions, rejects_summary, tracked_assets
from platform_pkg.portfolio.batches import PriceBlock, blocks, new_partition_order
from platform_pkg.portfolio.positions import SymbolHolding, from_summary, from_transactions
from platform_pkg.portfolio.resources import MarketChecks, PortfolioFile, calendar_for
from platform_pkg.portfolio.tracking import (
    PRICE_ASSETS,
    Calendar,
    HoldingsCursor,
    PriceRequest,
    TrackedSymbol,
    plan_repairs,
    plan_tracking,
)
from platform_pkg.portfolio.transactions import parse_portfolio
from platform_pkg.portfolio.valuation import daily_balances, portfolio_value
from platform_pkg.prices.assets import prices_1d, prices_1h
from platform_pkg.runs import (
    IN_FLIGHT,
    LEDGER_TAG,
    REASON_TAG,
    TRIGGER_TAG,
    in_flight,
    seconds_from_env,
)
from platform_pkg.warehouse import watermarks
from platform_pkg.warehouse.io_manager import run_metadata
from platform_pkg.warehouse.resources import Warehouse

DEFAULT_INTERVAL_SECONDS = 5
# How often a quiet sensor looks for history that never arrived.
PRICE_CHECK_EVERY = timedelta(minutes=5)
# Exchange trades and wallet history feed the ledger; the portfolio file is watched by digest.
RECORDED_INPUTS = [dg.AssetKey(i.table) for i in INPUTS if i.table != "portfolio_transactions"]
# Counted in a materialisation's metadata when its run changed the table.
_CHANGE_COUNTS = ("rows_inserted", "rows_updated", "rows_soft_deleted")
_SCAN = 200
# The ledger run's rejected portfolio lines: said in the summary of the tick after it.
REJECTS = "portfolio_rejects"


def sensor_interval_seconds() -> int:
    """``PLATFORM_HOLDINGS_SENSOR_SECONDS`` (1-3600) or 10: how often the inputs are looked at."""
    return seconds_from_env("PLATFORM_HOLDINGS_SENSOR_SECONDS", DEFAULT_INTERVAL_SECONDS)


@dg.sensor(
    name="holdings_sensor",
    description="Keeps the ledger and tracking in step with what the user holds. When the "
    "portfolio file or the exchange trades change, it requests a ledger run (portfolio tables, "
    "transactions, holdings, tracked_assets), and a symbol new in the file gets its history in "
    "the same tick. When the holdings change, a symbol new to tracking "
    "gets its partition and its price history (a year before its first acquisition, to today); "
    "symbols wanting the same days share ranged runs (both price assets, up to two runs per "
    "batch of new symbols); an earlier acquisition backfills only the older range; "
    "a symbol sold to zero in every account goes inactive and, bought again, gets the gap since.",
    asset_selection=[
        prices_1h,
        prices_1d,
        portfolio_transactions,
        transactions,
        holdings,
        tracked_assets,
        daily_balances,
        portfolio_value,
    ],
    minimum_interval_seconds=sensor_interval_seconds(),
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def holdings_sensor(
    context: dg.SensorEvaluationContext,
    portfolio: PortfolioFile,
    market: MarketData,
    warehouse: Warehouse,
):
    cursor = HoldingsCursor.parse(context.cursor)
    now = market.clock()()
    instance = context.instance
    requests: list[dg.RunRequest] = []
    partitions: list[str] = []
    checks = MarketChecks(market)
    track = _Tracking(warehouse, portfolio, now)
    order = _Order(instance)

    digest = portfolio.digest()
    recorded = {
        str(k.path[-1]): _input_changes(
            instance, k, cursor.seen.get(k.path[-1]), set(cursor.acted.get(k.path[-1], ()))
        )
        for k in RECORDED_INPUTS
    }
    changed = [name for name, (_, moved, _) in recorded.items() if moved]
    if digest != cursor.digest or changed:
        if in_flight(instance, {LEDGER_TAG: "1"}):
            context.log.info("a ledger run is still in flight: its inputs are looked at after it")
        else:
            why = (["the portfolio file changed"] if digest != cursor.digest else []) + [
                f"{name} changed" for name in changed
            ]
            context.log.info(f"requesting a ledger run: {', '.join(why)}")
            requests.append(_ledger_run(digest, recorded))
            if digest != cursor.digest and digest is not None:
                # Symbols the file starts to hold get their history now, alongside the ledger
                # run rather than after it; what the ledger adds (older acquisitions on an
                # exchange, currencies) follows from the holdings it writes.
                early = _new_in_file(context, portfolio, checks, cursor, now)
                if early:
                    runs, added, symbols = _tracking_runs(context, {}, early, checks, track, order)
                    requests += runs
                    partitions += added
                    cursor.symbols.update(symbols)
            cursor.digest = digest
            cursor.seen = {name: newest for name, (newest, _, _) in recorded.items()} | {
                REJECTS: cursor.seen.get(REJECTS)
            }
            cursor.remember_runs({name: runs for name, (_, _, runs) in recorded.items()})

    rejected = _new_rejects(instance, cursor, portfolio.resolved_path().name)
    if rejected:
        context.log.warning(rejected)

    latest = _latest_holdings(instance)
    if latest is not None and latest[0] != cursor.holdings_seen:
        storage_id, summary = latest
        runs, added, symbols = _tracking_runs(
            context, cursor.symbols, from_summary(summary), checks, track, order
        )
        requests += runs
        partitions += added
        cursor.symbols = symbols
        cursor.holdings_seen = storage_id
    elif not requests:
        repairs = _repairs(context, cursor, warehouse, market, portfolio, now)
        if repairs is not None:
            requests += repairs

    skip = None
    if not requests and not partitions:
        skip = "nothing changed in the portfolio file, the trades or the holdings"
        if digest is None and not cursor.symbols:
            skip = (
                f"no portfolio file at {portfolio.resolved_path()} and no exchange trades yet "
                "(set PLATFORM_PORTFOLIO, or copy data/demo/portfolio.csv there)"
            )
        if rejected:
            skip = f"{rejected}; {skip}"
        if context.cursor == cursor.dump():
            return dg.SkipReason(skip)
    return dg.SensorResult(
        run_requests=requests,
        dynamic_partitions_requests=(
            [symbols_partitions.build_add_request(partitions)] if partitions else []
        ),
        cursor=cursor.dump(),
        skip_reason=skip,
    )


@dataclass(frozen=True)
class _Tracking:
    """What a tracking plan reads besides the holdings: the warehouse's watermarks and the days a
    request may cover (worked out only by a tick that plans)."""

    warehouse: Warehouse
    portfolio: PortfolioFile
    now: datetime

    def calendar(self) -> Calendar:
        return calendar_for(self.now, self.portfolio.history_days)


class _Order:
    """The symbol partitions in the order they were added (read once, when first needed), and
    the ones a tick adds after them."""

    def __init__(self, instance: dg.DagsterInstance):
        self._instance = instance
        self._keys: list[str] | None = None

    @property
    def keys(self) -> list[str]:
        if self._keys is None:
            self._keys = list(self._instance.get_dynamic_partitions(symbols_partitions.name))
        return self._keys


def _tracking_runs(
    context: dg.SensorEvaluationContext,
    previous: dict[str, TrackedSymbol],
    held: dict[str, SymbolHolding],
    checks: MarketChecks,
    track: _Tracking,
    order: _Order,
) -> tuple[list[dg.RunRequest], list[str], dict[str, TrackedSymbol]]:
    """The price runs and new partitions that bring tracking from ``previous`` to ``held``, and
    the symbols' new tracking state."""
    with track.warehouse.connection() as con:
        coverage = watermarks.read_coverages(con, list(held), [dt for dt, _ in PRICE_ASSETS])
        gone = lookup.delisted(con, [s for s, h in held.items() if h.active])
    plan = plan_tracking(
        previous,
        held,
        coverage=lambda s, dt: coverage.get((s, dt)),
        earliest=checks.earliest,
        calendar=track.calendar(),
        known_partitions=set(order.keys),
    )
    for note in plan.notes:
        context.log.info(note)
    # New partitions go after the known ones, those wanting the same days side by side, so that
    # a block of them is one run.
    added = new_partition_order(plan.new_partitions, plan.requests)
    order.keys.extend(added)
    requests = _listed(context, plan.requests, gone)
    return [_price_run(block) for block in blocks(requests, order.keys)], added, plan.symbols


def _listed(
    context: dg.SensorEvaluationContext, requests: list[PriceRequest], gone: dict[str, str]
) -> list[PriceRequest]:
    """``requests`` without those of symbols the asset catalogue says are delisted (their
    history is kept; the schedules stop refreshing them too), saying so for each."""
    for symbol, why in sorted(gone.items()):
        context.log.info(f"{symbol}: {why}; its history is kept and no longer refreshed")
    return [r for r in requests if r.window.symbol not in gone]


def _new_in_file(
    context: dg.SensorEvaluationContext,
    portfolio: PortfolioFile,
    checks: MarketChecks,
    cursor: HoldingsCursor,
    now: datetime,
) -> dict[str, SymbolHolding]:
    """The symbols the portfolio file's valid lines hold that tracking has never seen, parsed
    as the ledger run parses them (only the new symbols are asked of the market)."""
    snapshot = portfolio.read()
    if snapshot is None:
        return {}
    try:
        parsed = parse_portfolio(
            snapshot.text,
            known_symbol=lambda s: None if s in cursor.symbols else checks.unknown_reason(s),
            now=now,
        )
    except Exception as exc:  # a file the ledger run will reject as a whole, a source down
        context.log.info(f"new symbols wait for the ledger run: {type(exc).__name__}: {exc}")
        return {}
    held = from_transactions(parsed.transactions)
    return {s: h for s, h in held.items() if h.active and s not in cursor.symbols}


def _input_changes(
    instance: dg.DagsterInstance, key: dg.AssetKey, after: int | None, acted: set[str]
) -> tuple[int | None, bool, set[str]]:
    """(the newest materialisation's storage id, whether a run since ``after`` changed rows, the
    runs that did).

    Each run is judged by the one of its events that carries the run's figures (a ranged run's
    newest partition; its other partitions carry only their own rows), and a run already acted on
    (``acted``: its events can land across several ticks) is not judged again; more than
    :data:`_SCAN` new events count as a change without looking."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=key, after_storage_id=after), limit=_SCAN
    ).records
    if not records:
        return after, False, set()
    newest = records[0].storage_id
    changed: set[str] = set()
    judged: set[str] = set(acted)
    for record in records:
        if record.run_id in judged:
            continue
        meta = record.asset_materialization.metadata if record.asset_materialization else {}
        figures = run_metadata(meta)
        if figures is None:
            continue
        judged.add(record.run_id)
        if any(getattr(figures.get(name), "value", 0) for name in _CHANGE_COUNTS):
            changed.add(record.run_id)
    fresh = {r.run_id for r in records} - set(acted)
    return newest, bool(changed) or (len(records) == _SCAN and bool(fresh)), changed


def _latest_holdings(instance: dg.DagsterInstance) -> tuple[int, dict] | None:
    records = instance.fetch_materializations(holdings.key, limit=1).records
    if not records or records[0].asset_materialization is None:
        return None
    summary = records[0].asset_materialization.metadata.get(SUMMARY_METADATA)
    return records[0].storage_id, dict(summary.value) if summary is not None else {}


def _new_rejects(
    instance: dg.DagsterInstance, cursor: HoldingsCursor, file_name: str
) -> str | None:
    """What a ledger run finished since the last tick rejected of the portfolio file, for the
    tick summary (once: its storage id is kept in the cursor); None if nothing was."""
    records = instance.fetch_materializations(dg.AssetKey(REJECTS), limit=1).records
    if not records or records[0].storage_id == cursor.seen.get(REJECTS):
        return None
    cursor.seen[REJECTS] = records[0].storage_id
    materialization = records[0].asset_materialization
    summary = rejects_summary(dict(materialization.metadata)) if materialization else None
    return f"{file_name}: {summary}" if summary else None


def _ledger_run(digest: str | None, recorded: dict[str, tuple]) -> dg.RunRequest:
    """One run over the ledger's chain; the portfolio tables only when there is a file."""
    keys = [transactions.key, holdings.key, tracked_assets.key]
    keys += [daily_balances.key, portfolio_value.key]
    if digest is not None:
        keys = [dg.AssetKey("portfolio_transactions"), dg.AssetKey("portfolio_rejects"), *keys]
    marks = ":".join(f"{name}={newest}" for name, (newest, *_) in sorted(recorded.items()))
    return dg.RunRequest(
        run_key=f"ledger:{digest or 'no-file'}:{marks}",
        asset_selection=keys,
        tags={TRIGGER_TAG: "holdings_sensor", LEDGER_TAG: "1"},
    )


def _repairs(
    context: dg.SensorEvaluationContext,
    cursor: HoldingsCursor,
    warehouse: Warehouse,
    market: MarketData,
    portfolio: PortfolioFile,
    now: datetime,
) -> list[dg.RunRequest] | None:
    """Every few minutes with nothing changed: history that never arrived is asked for again."""
    checked = datetime.fromisoformat(cursor.prices_checked_at) if cursor.prices_checked_at else None
    if not cursor.symbols or (checked is not None and now - checked < PRICE_CHECK_EVERY):
        return None
    active = [s for s, held in cursor.symbols.items() if held.active]
    with warehouse.connection() as con:
        coverage = watermarks.read_coverages(con, active, [dt for dt, _ in PRICE_ASSETS])
        gone = lookup.delisted(con, active)
    cursor.prices_checked_at = now.isoformat()
    order = list(context.instance.get_dynamic_partitions(symbols_partitions.name))
    repairs = plan_repairs(
        cursor.symbols,
        cursor.repairs,
        coverage=lambda s, dt: coverage.get((s, dt)),
        earliest=MarketChecks(market).earliest,
        calendar=calendar_for(now, portfolio.history_days),
        in_flight=_in_flight(context.instance, order),
        now=now,
    )
    for note in repairs.notes:
        context.log.warning(note)
    cursor.repairs = repairs.repairs
    listed = [r for r in repairs.requests if r.window.symbol not in gone]
    return [_price_run(block) for block in blocks(listed, order)]


def _price_run(block: PriceBlock) -> dg.RunRequest:
    return dg.RunRequest(
        run_key=block.run_key,
        asset_selection=[dg.AssetKey(data_type) for data_type in block.data_types],
        tags={
            **block_range_tags(
                block.symbols[0], block.symbols[-1], block.first_day, block.last_day
            ),
            TRIGGER_TAG: "holdings_sensor",
            REASON_TAG: block.reason[:200],
        },
    )


def _in_flight(instance: dg.DagsterInstance, order: list[str]) -> set[tuple[str, str]]:
    """(symbol, asset) pairs that a queued or running ranged run will write: every symbol of its
    range (a schedule's run over several symbols covers only recent days, never a history, but
    is counted all the same)."""
    pairs = set()
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=IN_FLIGHT), limit=1000):
        for symbol in range_symbols(run.tags, order):
            pairs |= {(symbol, key.path[-1]) for key in run.asset_selection or ()}
    return pairs
