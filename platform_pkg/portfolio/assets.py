"""Portfolio assets: the validated lines of the portfolio file, the lines kept aside, and the
symbols the platform tracks because someone holds them."""

from datetime import UTC, datetime

import dagster as dg
import pandas as pd

from platform_pkg.ledger.assets import holdings
from platform_pkg.ledger.build import symbol_summary
from platform_pkg.market.resources import MarketData
from platform_pkg.portfolio import tracked
from platform_pkg.portfolio.resources import MarketChecks, PortfolioFile, calendar_for
from platform_pkg.portfolio.tables import (
    REJECT_COLUMNS,
    REJECT_KEY,
    TRANSACTION_COLUMNS,
    TRANSACTION_KEY,
    rejects_frame,
    transactions_frame,
)
from platform_pkg.portfolio.tracking import PRICE_ASSETS, history_start
from platform_pkg.portfolio.transactions import parse_portfolio
from platform_pkg.prices.assets import WAREHOUSE_POOL
from platform_pkg.warehouse.io_manager import AUDIT_METADATA, KEY_METADATA, TRACK_CHANGES_METADATA
from platform_pkg.warehouse.resources import Warehouse

GROUP = "portfolio"
MAX_REJECTS_SHOWN = 50
# tracked_assets' data version, the same every time. The price assets depend on tracked_assets so
# the asset graph shows what has them fetched, but no candle changes when the tracked set does: a
# new version each ledger run would mark every stored price partition unsynced.
TRACKING_VERSION = dg.DataVersion("tracked-symbols")


def table_metadata(
    table: str, columns: dict[str, str], key: list[str], audit: list[str], track: bool = False
) -> dict:
    return {
        KEY_METADATA: key,
        AUDIT_METADATA: audit,
        TRACK_CHANGES_METADATA: track,
        "dagster/column_schema": dg.TableSchema(
            columns=[dg.TableColumn(name, typ) for name, typ in columns.items()]
        ),
        "dagster/table_name": f"warehouse.main.{table}",
    }


@dg.multi_asset(
    outs={
        "portfolio_transactions": dg.AssetOut(
            description="The user's own transactions (buys, sells, transfers in and out) from the "
            "portfolio file, validated, keyed by txn_id (the file's own id, else a digest of the "
            "line's content). Lines that left the file are kept with in_file = false.",
            metadata=table_metadata(
                "portfolio_transactions",
                TRANSACTION_COLUMNS,
                TRANSACTION_KEY,
                ["loaded_at"],
                track=True,
            ),
            group_name=GROUP,
            kinds={"duckdb", "csv"},
        ),
        "portfolio_rejects": dg.AssetOut(
            description="Portfolio file lines that failed validation, with their line number, the "
            "field at fault and the reason; kept aside until the line is fixed (then in_file = "
            "false).",
            metadata=table_metadata("portfolio_rejects", REJECT_COLUMNS, REJECT_KEY, ["loaded_at"]),
            group_name=GROUP,
            kinds={"duckdb"},
        ),
    },
    pool=WAREHOUSE_POOL,
)
def portfolio_transactions(
    context: dg.AssetExecutionContext,
    portfolio: PortfolioFile,
    market: MarketData,
    warehouse: Warehouse,
):
    snapshot = portfolio.read()
    if snapshot is None:
        raise dg.Failure(f"there is no portfolio file at {portfolio.resolved_path()}")
    now = market.clock()()
    parsed = parse_portfolio(
        snapshot.text, known_symbol=MarketChecks(market).unknown_reason, now=now
    )
    for reject in parsed.rejects:
        context.log.warning(f"{snapshot.path.name}: {reject}")
    stored_txns = _stored(warehouse, "portfolio_transactions", list(TRANSACTION_COLUMNS))
    stored_rejects = _stored(warehouse, "portfolio_rejects", list(REJECT_COLUMNS))
    yield dg.Output(
        transactions_frame(parsed.transactions, stored_txns, now),
        output_name="portfolio_transactions",
        metadata={
            "file": str(snapshot.path),
            "sha256": snapshot.digest,
            "lines": parsed.data_lines,
            "valid": len(parsed.transactions),
            "rejected": len(parsed.rejects),
        },
    )
    listing = [f"- {r}" for r in parsed.rejects[:MAX_REJECTS_SHOWN]]
    if len(parsed.rejects) > MAX_REJECTS_SHOWN:
        listing.append(f"- … and {len(parsed.rejects) - MAX_REJECTS_SHOWN} more")
    yield dg.Output(
        rejects_frame(parsed.rejects, stored_rejects, now),
        output_name="portfolio_rejects",
        metadata={
            "rejected": len(parsed.rejects),
            "rejects": dg.MetadataValue.md("\n".join(listing) or "none"),
        },
    )


@dg.asset(
    description="The symbols the platform fetches prices for: one row per symbol ever held in "
    "any account (portfolio file or exchange), with tracking_users (accounts holding it now), "
    "is_active, first/last tracked, the first acquisition, where its history starts and the "
    "last price update (moved by each price run with its watermark).",
    deps=[holdings],
    metadata=table_metadata(
        tracked.TABLE,
        tracked.COLUMNS,
        ["asset_id"],
        ["updated_at", "last_tracked_at"],
    ),
    group_name=GROUP,
    kinds={"duckdb"},
    pool=WAREHOUSE_POOL,
)
def tracked_assets(
    context: dg.AssetExecutionContext,
    portfolio: PortfolioFile,
    market: MarketData,
    warehouse: Warehouse,
) -> dg.Output[pd.DataFrame]:
    now = market.clock()()
    held = _stored(warehouse, "holdings", list(tracked.HOLDINGS_READ))
    stored = _stored(warehouse, tracked.TABLE, list(tracked.COLUMNS))
    summary = symbol_summary(held, None)
    checks = MarketChecks(market)
    calendar = calendar_for(now, portfolio.history_days)
    starts = {}
    for symbol, item in summary.items():
        data_type, interval = PRICE_ASSETS[0]
        try:
            first = datetime.fromisoformat(item["first"]).date()
            starts[symbol] = history_start(
                first, symbol, data_type, interval, checks.earliest, calendar
            )
        except Exception as exc:  # noqa: BLE001 - the source: the others are still recorded
            context.log.warning(
                f"{symbol}: could not ask the source where its history starts: {exc}"
            )
    frame = tracked.tracked_rows(summary, stored, starts, datetime.now(UTC))
    active = int(frame["is_active"].sum()) if not frame.empty else 0
    return dg.Output(
        frame,
        metadata={"active_symbols": active, "inactive_symbols": len(frame) - active},
        data_version=TRACKING_VERSION,
    )


def rejects_summary(metadata: dict, shown: int = 3, width: int = 100) -> str | None:
    """What a ``portfolio_rejects`` materialisation says was rejected, in one line: the count and
    the first ``shown`` lines with their reasons (each cut at ``width``); None when nothing was."""
    count = getattr(metadata.get("rejected"), "value", 0)
    if not count:
        return None
    listing = str(getattr(metadata.get("rejects"), "value", "")).splitlines()
    first = [_cut(line.removeprefix("- "), width) for line in listing[:shown]]
    more = "; …" if count > len(first) else ""
    return f"{count} line(s) rejected — see portfolio_rejects ({'; '.join(first)}{more})"


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _stored(warehouse: Warehouse, table: str, columns: list[str]) -> pd.DataFrame | None:
    """The stored rows of ``table`` (only ``columns``), or None before its first write."""
    with warehouse.connection() as con:
        exists = con.execute(
            "SELECT count(*) FROM information_schema.tables "
            "WHERE table_schema = current_schema() AND table_name = ?",
            [table],
        ).fetchall()[0][0]
        if not exists:
            return None
        cols = ", ".join(f'"{c}"' for c in columns)
        return con.execute(f'SELECT {cols} FROM "{table}"').df()  # noqa: S608 - identifiers from code
