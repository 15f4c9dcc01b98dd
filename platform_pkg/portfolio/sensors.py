"""The holdings sensor: portfolio changes → symbol partitions → ranged price backfills."""

import os
from datetime import date, datetime, timedelta

import dagster as dg

from platform_pkg.market.resources import MarketData
from platform_pkg.partitions import (
    daily_partitions,
    partition_range_tags,
    range_end_symbols,
    symbols_partitions,
)
from platform_pkg.portfolio import tracked
from platform_pkg.portfolio.assets import holdings, portfolio_transactions, tracked_assets
from platform_pkg.portfolio.positions import positions, symbol_holdings
from platform_pkg.portfolio.resources import MarketChecks, PortfolioFile
from platform_pkg.portfolio.tracking import (
    PRICE_ASSETS,
    Calendar,
    HoldingsCursor,
    PriceRequest,
    history_start,
    plan_repairs,
    plan_tracking,
)
from platform_pkg.portfolio.transactions import parse_portfolio
from platform_pkg.prices.assets import prices_1d, prices_1h
from platform_pkg.warehouse import watermarks
from platform_pkg.warehouse.resources import Warehouse

DEFAULT_INTERVAL_SECONDS = 10
# How often a quiet sensor copies the price watermarks' times into tracked_assets.
PRICE_CHECK_EVERY = timedelta(minutes=5)


def sensor_interval_seconds() -> int:
    """``PLATFORM_HOLDINGS_SENSOR_SECONDS`` (1-3600) or 10: how often the file is looked at.

    Read when the definitions are built (a sensor's interval is part of its definition); a bad
    value fails with a clear message rather than silently using the default.
    """
    raw = os.environ.get("PLATFORM_HOLDINGS_SENSOR_SECONDS", str(DEFAULT_INTERVAL_SECONDS))
    try:
        seconds = int(raw)
    except ValueError:
        seconds = 0
    if not 1 <= seconds <= 3600:
        raise ValueError(
            f"PLATFORM_HOLDINGS_SENSOR_SECONDS={raw!r} is not a number of seconds (1-3600)"
        )
    return seconds


@dg.sensor(
    name="holdings_sensor",
    description="Watches the portfolio file. A symbol new to tracking gets its partition and its "
    "price history (a year before its first acquisition, to today) as one ranged run per price "
    "asset; an earlier purchase backfills only the older range; a symbol sold to zero in every "
    "account goes inactive and, bought again, gets the gap since. Also re-materialises the "
    "portfolio tables.",
    asset_selection=[prices_1h, prices_1d, portfolio_transactions, holdings],
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
    snapshot = portfolio.read()
    if snapshot is None:
        return dg.SkipReason(
            f"no portfolio file at {portfolio.resolved_path()} (set PLATFORM_PORTFOLIO, or copy "
            "data/demo/portfolio.csv there)"
        )
    now = market.clock()()
    if snapshot.digest == cursor.digest:
        return _quiet_tick(context, cursor, warehouse, market, portfolio, now)

    checks = MarketChecks(market)
    parsed = parse_portfolio(snapshot.text, known_symbol=checks.unknown_reason, now=now)
    appended = parsed.data_lines - cursor.lines
    context.log.info(
        f"{snapshot.path}: {parsed.data_lines} lines "
        + (f"({appended:+d} since the last change seen)" if cursor.digest else "(first read)")
        + f", {len(parsed.transactions)} valid, {len(parsed.rejects)} rejected"
    )
    for reject in parsed.rejects:
        context.log.warning(f"{snapshot.path.name}: {reject}")

    held = symbol_holdings(positions(parsed.transactions))
    calendar = _calendar(now, portfolio.history_days)
    coverage = _coverage(warehouse, list(held))
    plan = plan_tracking(
        cursor.symbols,
        held,
        coverage=lambda s, dt: coverage.get((s, dt)),
        earliest=checks.earliest,
        calendar=calendar,
        known_partitions=set(context.instance.get_dynamic_partitions(symbols_partitions.name)),
    )
    for note in plan.notes:
        context.log.info(note)

    starts = {
        s: history_start(h.first_acquired, s, *PRICE_ASSETS[0], checks.earliest, calendar)
        for s, h in held.items()
    }
    gone = [s for s in plan.symbols if s not in held]
    with warehouse.transaction() as con:
        tracked.write(con, tracked.tracked_frame(held, gone, starts, now))

    run_requests = [_price_run(request) for request in plan.requests]
    run_requests.append(
        dg.RunRequest(
            run_key=f"portfolio:{snapshot.digest}",
            asset_selection=[
                dg.AssetKey("portfolio_transactions"),
                dg.AssetKey("portfolio_rejects"),
                holdings.key,
            ],
            tags={"platform/trigger": "holdings_sensor"},
        )
    )
    active = sum(1 for s in plan.symbols.values() if s.active)
    return dg.SensorResult(
        run_requests=run_requests,
        dynamic_partitions_requests=(
            [symbols_partitions.build_add_request(plan.new_partitions)]
            if plan.new_partitions
            else []
        ),
        cursor=HoldingsCursor(
            snapshot.digest, parsed.data_lines, plan.symbols, now.isoformat()
        ).dump(),
        asset_events=[
            dg.AssetMaterialization(
                tracked_assets.key,
                description="Tracking updated from the portfolio file.",
                metadata={
                    "active_symbols": active,
                    "inactive_symbols": len(plan.symbols) - active,
                    "new_partitions": ", ".join(plan.new_partitions) or "none",
                    "backfill_runs": len(plan.requests),
                    "changes": dg.MetadataValue.md(
                        "\n".join(f"- {n}" for n in plan.notes) or "none"
                    ),
                },
            )
        ],
    )


def _quiet_tick(
    context: dg.SensorEvaluationContext,
    cursor: HoldingsCursor,
    warehouse: Warehouse,
    market: MarketData,
    portfolio: PortfolioFile,
    now: datetime,
):
    """Every few minutes with the file unchanged: last_price_update, and history repairs."""
    checked = datetime.fromisoformat(cursor.prices_checked_at) if cursor.prices_checked_at else None
    if not cursor.symbols or (checked is not None and now - checked < PRICE_CHECK_EVERY):
        return dg.SkipReason("the portfolio file has not changed")
    active = [s for s, held in cursor.symbols.items() if held.active]
    with warehouse.transaction() as con:
        changed = tracked.refresh_price_updates(con)
        coverage = watermarks.read_coverages(con, active, [dt for dt, _ in PRICE_ASSETS])
    cursor.prices_checked_at = now.isoformat()
    repairs = plan_repairs(
        cursor.symbols,
        cursor.repairs,
        coverage=lambda s, dt: coverage.get((s, dt)),
        earliest=MarketChecks(market).earliest,
        calendar=_calendar(now, portfolio.history_days),
        in_flight=_in_flight(context.instance),
        now=now,
    )
    for note in repairs.notes:
        context.log.warning(note)
    cursor.repairs = repairs.repairs
    skip = f"the portfolio file has not changed; last_price_update moved for {changed} symbol(s)"
    return dg.SensorResult(
        run_requests=[_price_run(request) for request in repairs.requests],
        skip_reason=None if repairs.requests else skip,
        cursor=cursor.dump(),
    )


def _price_run(request: PriceRequest) -> dg.RunRequest:
    return dg.RunRequest(
        run_key=request.run_key,
        asset_selection=[dg.AssetKey(request.data_type)],
        tags={
            **partition_range_tags(request.window),
            "platform/trigger": "holdings_sensor",
            "platform/reason": request.reason[:200],
        },
    )


IN_FLIGHT = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


def _in_flight(instance: dg.DagsterInstance) -> set[tuple[str, str]]:
    """(symbol, asset) pairs that a queued or running ranged run will write.

    The symbols are those of the range's two ends: a schedule's run over several symbols also
    covers those between, but only for recent days, never a history.
    """
    pairs = set()
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=IN_FLIGHT), limit=1000):
        for symbol in range_end_symbols(run.tags):
            pairs |= {(symbol, key.path[-1]) for key in run.asset_selection or ()}
    return pairs


def _calendar(now: datetime, history_days: int) -> Calendar:
    first = date.fromisoformat(daily_partitions.get_first_partition_key())
    last_key = daily_partitions.get_last_partition_key()
    # The partitions may end before today (a clock frozen ahead, or no partition for today yet).
    last = min(now.date(), date.fromisoformat(last_key)) if last_key else now.date()
    return Calendar(first_day=first, last_day=last, history_days=history_days)


def _coverage(warehouse: Warehouse, symbols: list[str]) -> dict:
    """Every held symbol's coverage per price asset, in one query."""
    with warehouse.connection() as con:
        return watermarks.read_coverages(con, symbols, [dt for dt, _ in PRICE_ASSETS])
