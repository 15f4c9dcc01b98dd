"""What the portfolio held and was worth, day by day: daily balances from the ledger, and their
value in the base currency from the daily closes — both rebuilt only from the earliest day that
changed."""

from datetime import UTC, datetime

import dagster as dg

from platform_pkg.charts import value_chart
from platform_pkg.ledger.assets import transactions
from platform_pkg.market.resources import MarketData
from platform_pkg.portfolio import balances, value
from platform_pkg.portfolio.assets import GROUP, table_metadata
from platform_pkg.portfolio.currency import base_currency
from platform_pkg.prices.assets import WAREHOUSE_POOL, prices_1d
from platform_pkg.warehouse.resources import Warehouse
from platform_pkg.warehouse.unit import Unit


@dg.asset(
    name=balances.TABLE,
    description="Quantity per day, account and symbol, replayed from the ledger (soft-deleted, "
    "failed and scam legs excluded): a row for every UTC day from a pair's first transaction to "
    "today while it is held, days without transactions included, and one zero row for the day "
    "it was sold to zero. Rebuilt per pair only from the earliest day a changed leg touched; "
    "rows a rebuild no longer produces are marked is_deleted.",
    deps=[transactions],
    metadata=table_metadata(
        balances.TABLE, balances.COLUMNS, balances.KEY, ["computed_at"], track=True
    ),
    group_name=GROUP,
    kinds={"duckdb"},
    pool=WAREHOUSE_POOL,
)
def daily_balances(context: dg.AssetExecutionContext, market: MarketData, warehouse: Warehouse):
    today = market.clock()().date()
    with warehouse.connection() as con:
        rebuild = balances.balance_changes(con, today, datetime.now(UTC))
    if rebuild.empty and not rebuild.moves:
        # Still an output: portfolio_value, downstream in the same run, would be skipped.
        context.log.info(f"no ledger leg changed and every open position reaches {today}")
    return dg.Output(
        Unit.of(rebuild.rows, watermarks=tuple(rebuild.moves)),
        metadata={
            "pairs_recomputed": rebuild.pairs,
            "recomputed_from": str(rebuild.earliest) if rebuild.earliest else "-",
            "rows_recomputed": rebuild.recomputed,
            "rows_carried_to_today": rebuild.extended,
            "rows_removed": rebuild.removed,
        },
    )


@dg.asset(
    name=value.TABLE,
    description="The portfolio's value at the end of each UTC day, per account and in total "
    "(account '*'), in the base currency ($PLATFORM_BASE_CURRENCY, default USD): each balance "
    "at its symbol's last daily close on or before the day, converted at par (same currency, "
    "or a stablecoin's peg) or through a tracked FX pair. A position without a close or FX rate "
    "is not valued at zero: value leaves it out, missing_prices counts it and "
    "portfolio_value_missing lists it. Rebuilt from the earliest day whose balances or closes "
    "changed.",
    deps=[daily_balances, prices_1d],
    metadata=table_metadata(value.TABLE, value.COLUMNS, value.KEY, ["computed_at"]),
    output_required=False,
    group_name=GROUP,
    kinds={"duckdb"},
    pool=WAREHOUSE_POOL,
)
def portfolio_value(context: dg.AssetExecutionContext, warehouse: Warehouse):
    base = base_currency()
    with warehouse.connection() as con:
        built = value.value_changes(con, base, datetime.now(UTC))
    if built.since is None:
        context.log.info("no balance or daily close changed since the last valuation")
        if built.moves:
            yield dg.Output(built.unit(), metadata={"base_currency": base})
        return
    missing = value.missing_lines(built.missing_summary)
    for line in missing:
        context.log.warning(f"not valued: {line}")
    # A day not fully valued is a gap in the chart, not a dip.
    chart = built.history.assign(
        value=built.history["value"].where(built.history["missing_prices"] == 0)
    )
    yield dg.Output(
        built.unit(),
        metadata={
            "base_currency": base,
            "recomputed_from": str(built.since),
            "why": ", ".join(built.why),
            **value.totals(built.history),
            "not_valued": dg.MetadataValue.md("\n".join(f"- {m}" for m in missing) or "none"),
            "conversions": dg.MetadataValue.md("\n".join(f"- {n}" for n in built.notes) or "none"),
            "token_positions_not_valued": built.tokens,
            "chart": dg.MetadataValue.md(value_chart(chart, base)),
        },
    )
