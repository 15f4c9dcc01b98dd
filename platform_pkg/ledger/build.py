"""Incremental builds of the ledger and of the holdings it drives: read what changed since the
last build, return the rows and the change marks that must commit with them."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime

import duckdb
import pandas as pd
import pyarrow as pa

from platform_pkg.ledger.legs import INPUTS, LEDGER, LEG_DELTA, LIVE, ORPHANS
from platform_pkg.portfolio.currency import base_currency, fx_needs
from platform_pkg.portfolio.tables import HOLDING_COLUMNS
from platform_pkg.warehouse import watermarks
from platform_pkg.warehouse.upsert import CHANGE_COLUMN, table_columns
from platform_pkg.warehouse.watermarks import Cursor, CursorMove, Order

HOLDINGS = "holdings"
# Below this a position counts as closed (float dust from fees and partial fills).
DUST = 1e-12


@dataclass
class Build:
    """Rows to upsert, the change marks that commit with them, and what was read per input."""

    rows: pa.Table | None = None
    moves: list[CursorMove] = field(default_factory=list)
    changed: dict[str, int] = field(default_factory=dict)  # input → rows read

    @property
    def empty(self) -> bool:
        return self.rows is None or self.rows.num_rows == 0


def _mark(consumer: str, table: str) -> tuple[str, str]:
    return consumer, f"changes:{table}"


@dataclass(frozen=True)
class Changes:
    """What a consumer has read of an input (its mark) and the newest change stored there."""

    mark: Cursor | None
    newest: int

    @property
    def seen(self) -> int:
        return int(self.mark.last_id) if self.mark is not None and self.mark.last_id else 0

    @property
    def pending(self) -> bool:
        return self.newest > self.seen


def _changes_since(con: duckdb.DuckDBPyConnection, consumer: str, table: str) -> Changes | None:
    """None when ``table`` does not exist yet or carries no change numbers."""
    if CHANGE_COLUMN not in table_columns(con, table):
        return None
    mark = watermarks.read_cursor(con, *_mark(consumer, table))
    newest = con.execute(f'SELECT max("{CHANGE_COLUMN}") FROM "{table}"').fetchall()[0][0]
    return Changes(mark, int(newest or 0))


def _advance(consumer: str, table: str, changes: Changes) -> CursorMove:
    """Move the mark to what was read — only if no other build moved it since (guarded)."""
    cursor = Cursor(str(changes.newest), None)
    return CursorMove(
        *_mark(consumer, table), cursor, Order.ID, guarded=True, expected=changes.mark
    )


def ledger_changes(con: duckdb.DuckDBPyConnection, now: datetime) -> Build:
    """The legs of every input row changed since the ledger last read it, plus legs the new
    versions no longer imply (soft-deleted)."""
    build = Build()
    parts: list[pa.Table] = []
    for source in INPUTS:
        changes = _changes_since(con, LEDGER, source.table)
        if changes is None or not changes.pending:
            continue
        legs = source.read(con, changes.seen)
        build.changed[source.table] = legs.num_rows
        parts.append(legs)
        build.moves.append(_advance(LEDGER, source.table, changes))
    if not parts:
        return build
    legs = pa.concat_tables([p.cast(parts[0].schema) for p in parts], promote_options="permissive")
    if table_columns(con, LEDGER):
        con.register("__legs", legs)
        try:
            orphans = con.sql(ORPHANS).to_arrow_table()
        finally:
            con.unregister("__legs")
        if orphans.num_rows:
            legs = pa.concat_tables([legs, orphans.cast(legs.schema)])
    build.rows = legs.append_column(
        "updated_at", pa.array([now] * legs.num_rows, pa.timestamp("us", tz="UTC"))
    )
    return build


# Quantity per (account, symbol): acquisitions in, disposals and fee legs out, and a trade's fee
# when it was paid in the symbol's own base currency (Binance takes a buy's fee from what it buys).
_POSITIONS = f"""
WITH pairs AS (
    SELECT DISTINCT account, symbol FROM {LEDGER} WHERE "{CHANGE_COLUMN}" > ?
),
live AS (
    SELECT l.* FROM {LEDGER} l JOIN pairs USING (account, symbol) WHERE {LIVE}
)
SELECT p.account, p.symbol,
       any_value(l.asset_class) AS asset_class,
       coalesce(sum({LEG_DELTA}), 0.0) AS quantity,
       min(l.ts) FILTER (WHERE l.side IN ('buy', 'transfer_in')) AS first_purchase_at,
       max(l.ts) AS last_transaction_at,
       count(l.ts)::INTEGER AS transactions
FROM pairs p LEFT JOIN live l USING (account, symbol)
GROUP BY p.account, p.symbol
ORDER BY p.account, p.symbol
"""


def holdings_changes(con: duckdb.DuckDBPyConnection, now: datetime) -> Build:
    """Positions of every (account, symbol) whose legs changed since holdings last read them."""
    build = Build()
    changes = _changes_since(con, HOLDINGS, LEDGER)
    if changes is None or not changes.pending:
        return build
    frame = con.execute(_POSITIONS, [changes.seen]).df()
    frame["quantity"] = frame["quantity"].astype(float).where(frame["quantity"].abs() > DUST, 0.0)
    frame["is_open"] = frame["quantity"] > DUST
    frame["computed_at"] = pd.Timestamp(now)
    build.rows = pa.Table.from_pandas(frame[list(HOLDING_COLUMNS)], preserve_index=False)
    build.changed[LEDGER] = len(frame)
    build.moves.append(_advance(HOLDINGS, LEDGER, changes))
    return build


def symbol_summary(
    stored: pd.DataFrame, changed: pd.DataFrame | None, base: str | None = None
) -> dict[str, dict]:
    """Per symbol, what tracking needs — first acquisition in any account, the asset class, the
    accounts holding it now — from the stored holdings with ``changed`` rows taking precedence;
    plus the FX pairs valuing them in the ``base`` currency (default: the configured one) needs."""
    frames = [f for f in (changed, stored) if f is not None and not f.empty]
    if not frames:
        return {}
    book = pd.concat(frames, ignore_index=True).drop_duplicates(["account", "symbol"], keep="first")
    out: dict[str, dict] = {}
    for symbol, rows in book.groupby("symbol", sort=True):
        if (rows["asset_class"] == "token").all():
            continue  # a token the catalogue cannot price: in the holdings, not tracked
        firsts = pd.to_datetime(rows["first_purchase_at"], utc=True).dropna()
        if firsts.empty:
            continue  # never acquired (only disposals or fees): nothing to track
        out[str(symbol)] = {
            "first": firsts.min().date().isoformat(),
            "class": str(rows["asset_class"].dropna().iloc[0])
            if rows["asset_class"].notna().any()
            else None,
            "accounts": sorted(str(a) for a in rows.loc[rows["is_open"].astype(bool), "account"]),
        }
    return _with_fx_pairs(out, base or base_currency())


def _with_fx_pairs(summary: dict[str, dict], base: str) -> dict[str, dict]:
    """Each FX pair the valuation needs, as a holding: first needed when the first symbol
    needing it was acquired, held by the accounts holding one of them (``for``)."""
    for pair, symbols in fx_needs(summary, base).items():
        needing = [s for s in symbols if s != pair]
        if not needing:
            continue
        item = summary.setdefault(
            pair, {"first": summary[needing[0]]["first"], "class": "fx", "accounts": []}
        )
        item["first"] = min(item["first"], *(summary[s]["first"] for s in needing))
        item["accounts"] = sorted(
            set(item["accounts"]).union(*(summary[s]["accounts"] for s in needing))
        )
        item["for"] = needing
    return summary


def summary_json(summary: dict[str, dict]) -> str:
    return json.dumps(summary, sort_keys=True, separators=(",", ":"))
