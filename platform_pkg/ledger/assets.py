"""The ledger and the holdings it drives, both built incrementally from what changed."""

from datetime import UTC, datetime

import dagster as dg

from platform_pkg.ledger.build import holdings_changes, ledger_changes, symbol_summary
from platform_pkg.ledger.legs import INPUTS, LEDGER, LEDGER_COLUMNS, LEDGER_KEY
from platform_pkg.portfolio.tables import HOLDING_COLUMNS, HOLDING_KEY
from platform_pkg.prices.assets import WAREHOUSE_POOL
from platform_pkg.warehouse.io_manager import (
    AUDIT_METADATA,
    HISTORY_METADATA,
    KEY_METADATA,
    TRACK_CHANGES_METADATA,
    VALID_FROM_METADATA,
)
from platform_pkg.warehouse.resources import Warehouse
from platform_pkg.warehouse.unit import Unit
from platform_pkg.warehouse.upsert import table_columns

GROUP = "ledger"
SUMMARY_METADATA = "symbols"  # the holdings sensor reads tracking's inputs from here


def _schema(columns: dict[str, str]) -> dg.TableSchema:
    return dg.TableSchema(columns=[dg.TableColumn(name, typ) for name, typ in columns.items()])


@dg.asset(
    name=LEDGER,
    description="One ledger of every transaction, whatever its origin: the portfolio file's "
    "lines (domain manual) and exchange trades (domain exchange; a fee paid in a third "
    "currency is a leg of its own). Key (domain, source, account, txid, leg). Built "
    "incrementally: only input rows changed since the last build are read. Changed legs keep "
    "their old version in transactions_history; a deleted input deletes its legs (is_deleted).",
    deps=[dg.AssetKey(source.table) for source in INPUTS],
    metadata={
        KEY_METADATA: LEDGER_KEY,
        AUDIT_METADATA: ["updated_at"],
        HISTORY_METADATA: f"{LEDGER}_history",
        VALID_FROM_METADATA: "updated_at",
        TRACK_CHANGES_METADATA: True,
        "dagster/column_schema": _schema(LEDGER_COLUMNS),
        "dagster/table_name": f"warehouse.main.{LEDGER}",
    },
    output_required=False,
    group_name=GROUP,
    kinds={"duckdb"},
    pool=WAREHOUSE_POOL,
)
def transactions(context: dg.AssetExecutionContext, warehouse: Warehouse):
    with warehouse.connection() as con:
        build = ledger_changes(con, datetime.now(UTC))
    if not build.moves:
        # Still an output: the ledger's checks run after every ledger run, not only after one
        # that changed something (Dagster skips a check whose asset yields nothing).
        context.log.info("no input of the ledger changed since its last build")
        yield dg.Output(Unit(), metadata={"changed": 0})
        return
    yield dg.Output(
        Unit.of(build.rows, watermarks=tuple(build.moves)),
        metadata={f"changed_{table}": rows for table, rows in build.changed.items()},
    )


@dg.asset(
    description="Positions per account and symbol (quantity, first acquisition, last "
    "transaction), replayed from the ledger: the portfolio file and exchange trades alike. "
    "Soft-deleted legs do not count. Only the (account, symbol) pairs whose legs changed are "
    "recomputed. Its materialisation lists, per symbol, what tracking needs (metadata "
    "'symbols'), which the holdings sensor acts on.",
    deps=[transactions],
    metadata={
        KEY_METADATA: HOLDING_KEY,
        AUDIT_METADATA: ["computed_at"],
        "dagster/column_schema": _schema(HOLDING_COLUMNS),
        "dagster/table_name": "warehouse.main.holdings",
    },
    output_required=False,
    group_name=GROUP,
    kinds={"duckdb"},
    pool=WAREHOUSE_POOL,
)
def holdings(context: dg.AssetExecutionContext, warehouse: Warehouse):
    with warehouse.connection() as con:
        build = holdings_changes(con, datetime.now(UTC))
        stored = (
            con.execute("SELECT * FROM holdings").df()
            if build.moves and table_columns(con, "holdings")
            else None
        )
    if not build.moves:
        # No output, so nothing downstream (tracked_assets) is rebuilt; the holdings check is
        # skipped, its last evaluation standing: holdings only change when the ledger does.
        context.log.info("no ledger leg changed since holdings were last computed")
        return
    changed = build.rows.to_pandas() if build.rows is not None else None
    summary = symbol_summary(stored, changed)
    open_rows = [r for r in (changed.itertuples() if changed is not None else []) if r.is_open]
    yield dg.Output(
        Unit.of(build.rows, watermarks=tuple(build.moves)),
        metadata={
            "pairs_recomputed": build.changed.get(LEDGER, 0),
            "open_positions_recomputed": len(open_rows),
            "symbols_held": sum(1 for s in summary.values() if s["accounts"]),
            SUMMARY_METADATA: dg.MetadataValue.json(summary),
        },
    )
