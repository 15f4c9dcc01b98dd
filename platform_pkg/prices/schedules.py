"""Keeping tracked symbols fresh: intraday refresh, daily close, weekly reconcile.

Each schedule reads the active symbols from ``tracked_assets`` (maintained by the holdings
sensor) and asks for one ranged run per contiguous block of symbol partitions, usually one run
per tick. A tick that finds an earlier run of the same schedule still queued or running skips,
so a slow refresh never stacks up duplicate runs.
"""

import os
from datetime import date, datetime, timedelta

import dagster as dg
from pydantic import Field

from platform_pkg.market.resources import MarketData
from platform_pkg.partitions import (
    block_range_tags,
    daily_partitions,
    day_start,
    symbols_partitions,
)
from platform_pkg.portfolio import tracked
from platform_pkg.portfolio.refresh import contiguous_blocks, open_symbols
from platform_pkg.prices.jobs import prices_job
from platform_pkg.runs import SCHEDULE_TAG, busy
from platform_pkg.warehouse.resources import Warehouse

DEFAULT_INTRADAY_MINUTES = 15


class RefreshSettings(dg.ConfigurableResource):
    """How the price schedules refresh tracked symbols."""

    reconcile_days: int = Field(
        default=7,
        ge=1,
        le=366,
        description="Days the weekly reconcile re-reads in full (ending yesterday), to catch "
        "corrections older than the incremental lookback.",
    )


def intraday_minutes() -> int:
    """``PLATFORM_INTRADAY_MINUTES`` (a divisor of 60) or 15: the intraday refresh period.

    Read when the definitions are built, since a schedule's cron is part of its definition.
    """
    raw = os.environ.get("PLATFORM_INTRADAY_MINUTES", str(DEFAULT_INTRADAY_MINUTES))
    if not raw.isdigit() or int(raw) not in {1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30, 60}:
        raise ValueError(f"PLATFORM_INTRADAY_MINUTES={raw!r} is not a divisor of 60 (minutes)")
    return int(raw)


def _cron(minutes: int) -> str:
    return "0 * * * *" if minutes == 60 else f"*/{minutes} * * * *"


INTRADAY_MINUTES = intraday_minutes()


@dg.schedule(
    name="intraday_refresh",
    cron_schedule=_cron(INTRADAY_MINUTES),
    execution_timezone="UTC",
    target=prices_job,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description=f"Every {INTRADAY_MINUTES} minutes: today's candles of every active symbol whose "
    "market traded since the last tick (crypto always, stocks only in their session).",
)
def intraday_refresh(
    context: dg.ScheduleEvaluationContext, market: MarketData, warehouse: Warehouse
):
    now = market.clock()()
    if (skip := busy(context, "intraday_refresh")) is not None:
        return skip
    last_key = daily_partitions.get_last_partition_key()
    if last_key is None or date.fromisoformat(last_key) < now.date():
        # Only a partition for today lets a run fetch today's candles.
        return dg.SkipReason(f"there is no date partition for {now.date()} yet (last: {last_key})")
    active = _active(warehouse)
    since = now - timedelta(minutes=INTRADAY_MINUTES)
    wanted = open_symbols(active, since, now, market.source_name)
    return block_requests(context, "intraday_refresh", wanted, now.date(), now.date(), active, now)


@dg.schedule(
    name="daily_close",
    cron_schedule="10 0 * * *",
    execution_timezone="UTC",
    target=prices_job,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="00:10 UTC: yesterday's candles of every active symbol that traded yesterday, "
    "re-read so the last candles of the day are stored final.",
)
def daily_close(context: dg.ScheduleEvaluationContext, market: MarketData, warehouse: Warehouse):
    now = market.clock()()
    if (skip := busy(context, "daily_close")) is not None:
        return skip
    yesterday = now.date() - timedelta(days=1)
    active = _active(warehouse)
    wanted = open_symbols(active, day_start(yesterday), day_start(now.date()), market.source_name)
    return block_requests(context, "daily_close", wanted, yesterday, yesterday, active, now)


@dg.schedule(
    name="weekly_reconcile",
    cron_schedule="30 1 * * 0",
    execution_timezone="UTC",
    target=prices_job,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Sundays 01:30 UTC: re-reads the last reconcile_days days of every active symbol "
    "in full (full_refresh), ignoring the watermarks; each run's metadata reports the rows "
    "that changed (rows_updated) per asset.",
)
def weekly_reconcile(
    context: dg.ScheduleEvaluationContext,
    market: MarketData,
    warehouse: Warehouse,
    refresh: RefreshSettings,
):
    now = market.clock()()
    if (skip := busy(context, "weekly_reconcile")) is not None:
        return skip
    last = now.date() - timedelta(days=1)
    first = last - timedelta(days=refresh.reconcile_days - 1)
    active = _active(warehouse)
    full = {
        "ops": {name: {"config": {"full_refresh": True}} for name in ("prices_1h", "prices_1d")}
    }
    return block_requests(
        context, "weekly_reconcile", sorted(active), first, last, active, now, full
    )


def _active(warehouse: Warehouse) -> dict[str, str]:
    with warehouse.connection() as con:
        return tracked.active_symbols(con)


def block_requests(
    context: dg.ScheduleEvaluationContext,
    name: str,
    wanted: list[str],
    first: date,
    last: date,
    active: dict[str, str],
    now: datetime,
    run_config: dict | None = None,
    partitions: dg.DynamicPartitionsDefinition = symbols_partitions,
    dimension: str = "symbol",
):
    """One ranged run per contiguous block of ``wanted`` partitions (symbols, or wallets) over
    first..last."""
    if not active:
        return dg.SkipReason("no active tracked symbols")
    if not wanted:
        return dg.SkipReason(f"none of the {len(active)} active symbols' markets traded")
    ordered = context.instance.get_dynamic_partitions(partitions.name)
    blocks = contiguous_blocks(ordered, wanted)
    stamp = (context.scheduled_execution_time or now).strftime("%Y-%m-%dT%H:%M")
    return [
        dg.RunRequest(
            run_key=f"{name}:{stamp}:{block.first}..{block.last}",
            tags={
                **block_range_tags(block.first, block.last, first, last, dimension),
                SCHEDULE_TAG: name,
            },
            run_config=run_config or {},
        )
        for block in blocks
    ]
