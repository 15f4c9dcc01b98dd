"""``platform_status``: how the platform is doing, as one materialisation with plotted figures."""

from datetime import UTC, datetime

import dagster as dg
import duckdb

from platform_pkg.market.resources import MarketData
from platform_pkg.status import render
from platform_pkg.status.build import build
from platform_pkg.status.instance import instance_facts
from platform_pkg.status.model import Status
from platform_pkg.warehouse import query
from platform_pkg.warehouse.resources import Warehouse

GROUP = "platform"


@dg.asset(
    name="platform_status",
    description="How the platform is doing, from what it already records: tracked symbols and "
    "accounts, each price table's freshness per source against the market calendars, deferred "
    "and budget-blocked fetches with when they retry, failed runs of the last 24 h and why, API "
    "requests / units / 429s (and the fetches they deferred) per source over 24 h and 7 days with the units incremental "
    "syncs saved against full re-exports, known gaps, unreviewed anomalies, and the warehouse's "
    "and the instance's sizes. Every figure is numeric metadata, so its history plots; 'summary' "
    "shows them all. Stores nothing. Same as: python -m platform_pkg.cli status.",
    group_name=GROUP,
    kinds={"duckdb"},
    # No deps: it reads everything, and a dependency on the price assets' partitions would mark
    # it stale after every run. No pool: it reads between the writers' transactions.
)
def platform_status(
    context: dg.AssetExecutionContext, warehouse: Warehouse, market: MarketData
) -> dg.MaterializeResult:
    now = datetime.now(UTC)
    facts = instance_facts(context.instance, now)
    market_now = market.clock()()
    path = warehouse.resolved_path()
    try:
        with query.open_read_only(path, wait_seconds=warehouse.lock_timeout_seconds) as con:
            status = build(con, now, market_now=market_now, instance=facts)
    except query.WarehouseMissingError as exc:
        with duckdb.connect() as con:
            status = build(con, now, market_now=market_now, instance=facts, notes=(str(exc),))
    context.log.info(render.headline(status))
    return dg.MaterializeResult(metadata=metadata(status))


def metadata(status: Status) -> dict[str, dg.MetadataValue]:
    """The figures as numeric metadata (plotted by the UI) and the whole status in Markdown."""
    out: dict[str, dg.MetadataValue] = {
        name: dg.MetadataValue.float(value)
        if isinstance(value, float)
        else dg.MetadataValue.int(value)
        for name, value in render.figures(status).items()
    }
    out["summary"] = dg.MetadataValue.md(render.markdown(status))
    return out
