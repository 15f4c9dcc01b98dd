"""``portfolio_value``: what the portfolio was worth at the end of every day, per account and in
total, in one base currency.

A position is valued at its symbol's last daily close on or before the day (a weekend or holiday
uses the last session's close), converted from the symbol's quote currency into the base:
the same currency is 1, a stablecoin is its currency (USDT valued at 1 USD), any other goes
through a Yahoo FX pair (``EURUSD=X``, or its inverse) that tracking fetches like a holding
(:mod:`platform_pkg.portfolio.currency`). A position with no close at all by that day, or no FX rate, is not
valued at zero: it is left out of ``value``, counted in ``missing_prices`` and listed in
``portfolio_value_missing``. Tokens the catalogue cannot price (asset class ``token``) are not
valued.

Built incrementally from the earliest day whose balances changed (``daily_balances`` change
numbers) or whose daily closes changed (``prices_1d.fetched_at``): every account from that day
to today is recomputed, rows before it are not read again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import duckdb
import pandas as pd
import pyarrow as pa

from platform_pkg.ledger.build import DUST, _advance, _changes_since
from platform_pkg.portfolio.balances import TABLE as BALANCES
from platform_pkg.portfolio.balances import utc_date
from platform_pkg.portfolio.currency import conversion, conversions_table
from platform_pkg.warehouse.unit import Mode, TableWrite, Unit
from platform_pkg.warehouse.upsert import TableSpec, table_columns
from platform_pkg.warehouse.watermarks import Cursor, CursorMove, Order, read_cursor

TABLE = "portfolio_value"
PRICES = "prices_1d"
TOTAL = "*"  # the account of the row that adds up every account
COLUMNS: dict[str, str] = {
    "date": "DATE",
    "account": "VARCHAR",
    "base_currency": "VARCHAR",
    "value": "DOUBLE",
    "positions": "INTEGER",
    "missing_prices": "INTEGER",
    "computed_at": "TIMESTAMPTZ",
}
KEY = ["date", "account"]
MISSING_COLUMNS: dict[str, str] = {
    "date": "DATE",
    "account": "VARCHAR",
    "symbol": "VARCHAR",
    "quantity": "DOUBLE",
    "reason": "VARCHAR",
    "computed_at": "TIMESTAMPTZ",
}
MISSING = TableSpec(
    "portfolio_value_missing",
    ("date", "account", "symbol"),
    MISSING_COLUMNS,
    audit_columns=("computed_at",),
)

# Price pages are stamped when fetched, a moment before they commit (a writer may wait up to
# 120 s for the lock): the prices mark stays this far behind the build's clock.
PRICES_OVERLAP = timedelta(minutes=10)


@dataclass
class Valuation:
    """The rows of a rebuild from ``since``, the stored rows it replaces, the change marks that
    commit with them, and the whole history for the materialisation's chart and totals."""

    since: date | None = None
    why: list[str] = field(default_factory=list)
    rows: pa.Table | None = None  # portfolio_value rows from ``since``
    gone: pa.Table | None = None  # stored keys from ``since`` no longer produced
    missing: pa.Table | None = None  # portfolio_value_missing rows from ``since``
    missing_gone: pa.Table | None = None
    moves: list[CursorMove] = field(default_factory=list)
    history: pd.DataFrame | None = None  # date, account, value, positions, missing_prices
    missing_summary: pd.DataFrame | None = None  # symbol, reason, first, last, days
    notes: list[str] = field(default_factory=list)  # how quotes became the base: pegs, FX pairs
    tokens: int = 0  # token positions on the last day, not valued

    def unit(self) -> Unit:
        """The stored rows it replaces deleted, its rows written, its marks moved: together."""
        writes = (
            TableWrite(self.gone, mode=Mode.DELETE),
            TableWrite(self.rows),
            TableWrite(self.missing_gone, MISSING, Mode.DELETE),
            TableWrite(self.missing, MISSING),
        )
        return Unit(tuple(w for w in writes if w.rows is not None), tuple(self.moves))


_CONVERSIONS = "__conversions"

_VALUE = """
CREATE OR REPLACE TEMP TABLE __valued AS
WITH closes AS (
    SELECT symbol, {day} AS day, arg_max(close, ts) AS close FROM {prices}
    WHERE close IS NOT NULL
      AND symbol IN (SELECT symbol FROM {conv} UNION SELECT fx_pair FROM {conv})
    GROUP BY ALL
),
held AS (
    SELECT b."date", b.account, b.symbol, b.quantity, c.fx_pair, c.invert, c.unsupported
    FROM {balances} b JOIN {conv} c USING (symbol)
    WHERE NOT b.is_deleted AND b."date" >= $since AND b.asset_class IS DISTINCT FROM 'token'
),
priced AS (
    SELECT h.*, p.close, fx.close AS fx_close
    FROM held h
    ASOF LEFT JOIN closes p ON p.symbol = h.symbol AND h."date" >= p.day
    ASOF LEFT JOIN closes fx ON fx.symbol = h.fx_pair AND h."date" >= fx.day
)
SELECT *,
       CASE WHEN abs(quantity) <= $dust THEN NULL
            WHEN unsupported IS NOT NULL THEN unsupported
            WHEN close IS NULL THEN 'no close of ' || symbol || ' on or before this day'
            WHEN fx_pair IS NOT NULL AND fx_close IS NULL
                THEN 'no ' || fx_pair || ' rate on or before this day'
       END AS reason,
       CASE WHEN abs(quantity) <= $dust THEN 0.0
            WHEN reason IS NULL
                THEN quantity * close * CASE WHEN fx_pair IS NULL THEN 1.0
                                             WHEN invert THEN 1.0 / fx_close
                                             ELSE fx_close END
       END AS value
FROM priced
"""

# Sums in a fixed order: the same positions give the same bits, so an unchanged day stays
# unchanged for the upsert.
_ROWS = """
SELECT "date", account, $base AS base_currency, sum(value ORDER BY symbol) AS value,
       count(*) FILTER (abs(quantity) > $dust AND reason IS NULL)::INTEGER AS positions,
       count(reason)::INTEGER AS missing_prices
FROM __valued GROUP BY "date", account
UNION ALL
SELECT "date", $total, $base, sum(value ORDER BY account, symbol),
       count(*) FILTER (abs(quantity) > $dust AND reason IS NULL)::INTEGER, count(reason)::INTEGER
FROM __valued GROUP BY "date"
ORDER BY ALL
"""

_MISSING = """
SELECT "date", account, symbol, quantity, reason FROM __valued WHERE reason IS NOT NULL ORDER BY ALL
"""

# Stored rows from ``since`` on that the rebuild does not produce again.
_GONE = """
SELECT {keys} FROM {table} t WHERE t."date" >= $since
  AND NOT EXISTS (SELECT 1 FROM __new n WHERE {match})
"""


def value_changes(con: duckdb.DuckDBPyConnection, base: str, now: datetime) -> Valuation:
    """Rebuild the values from the earliest day whose balances or closes changed since the last
    build (every day when the base currency changed, or on the first build)."""
    build = Valuation()
    balances = _changes_since(con, TABLE, BALANCES)
    if balances is None:
        return build
    if balances.pending:
        build.moves.append(_advance(TABLE, BALANCES, balances))
    symbols = [s for (s,) in con.execute(f"SELECT DISTINCT symbol FROM {BALANCES}").fetchall()]
    con.register(_CONVERSIONS, conversions_table(symbols, base))
    try:
        build.since = _since(con, build, base, balances.seen, now)
        if build.since is not None:
            _rebuild(con, build, base, build.since, now)
    finally:
        con.unregister(_CONVERSIONS)
        con.execute("DROP TABLE IF EXISTS __valued")
    build.notes = sorted({note for s in symbols for note in conversion(s, base).notes(base)})
    return build


def _since(
    con: duckdb.DuckDBPyConnection, build: Valuation, base: str, seen: int, now: datetime
) -> date | None:
    """The earliest day to recompute, with why; moves the prices mark."""
    stored = table_columns(con, TABLE)
    bases = con.execute(f"SELECT DISTINCT base_currency FROM {TABLE}").fetchall() if stored else []
    prices = _prices_changed(con, build, now)
    if not stored or bases != [(base,)]:
        build.why.append("first build" if not bases else f"base currency now {base}")
        earliest = [f'(SELECT min("date") FROM {BALANCES} WHERE NOT is_deleted)']
        if stored:  # a stored day before the first balance holds the old currency too
            earliest.append(f'(SELECT min("date") FROM {TABLE})')
        (first,) = con.execute(f"SELECT least({', '.join(earliest)})").fetchall()[0]
        return first
    (balances,) = con.execute(
        f'SELECT min("date") FROM {BALANCES} WHERE _change_seq > ?',  # noqa: S608
        [seen],
    ).fetchall()[0]
    if balances is not None:
        build.why.append(f"balances changed from {balances}")
    if prices is not None:
        build.why.append(f"closes changed from {prices}")
    return min((d for d in (balances, prices) if d is not None), default=None)


# The earliest day a changed close can move a value: not before the symbol (or a symbol the FX
# pair converts) was first held.
_PRICES_CHANGED = """
WITH firsts AS (
    SELECT c.symbol AS priced, min(b."date") AS first
    FROM {balances} b JOIN {conv} c USING (symbol) WHERE NOT b.is_deleted GROUP BY ALL
    UNION ALL
    SELECT c.fx_pair, min(b."date")
    FROM {balances} b JOIN {conv} c USING (symbol)
    WHERE NOT b.is_deleted AND c.fx_pair IS NOT NULL GROUP BY ALL
)
SELECT min(greatest({day}, f.first))
FROM {prices} p JOIN firsts f ON f.priced = p.symbol
WHERE $after IS NULL OR p.fetched_at > $after
"""


def _prices_changed(con: duckdb.DuckDBPyConnection, build: Valuation, now: datetime) -> date | None:
    """The earliest day a close fetched since the prices mark changes a value; the mark moves to
    :data:`PRICES_OVERLAP` before ``now``."""
    if not table_columns(con, PRICES):
        return None
    data_type = f"changes:{PRICES}"
    mark = read_cursor(con, TABLE, data_type)
    after = mark.last_timestamp if mark is not None else None
    sql = _PRICES_CHANGED.format(
        balances=BALANCES, conv=_CONVERSIONS, day=utc_date("p.ts"), prices=PRICES
    )
    (earliest,) = con.execute(sql, {"after": after}).fetchall()[0]
    moved = now - PRICES_OVERLAP
    if after is None or moved > after:
        cursor = Cursor(moved.isoformat(), moved)
        build.moves.append(
            CursorMove(TABLE, data_type, cursor, Order.TIME, guarded=True, expected=mark)
        )
    return earliest


def _rebuild(
    con: duckdb.DuckDBPyConnection, build: Valuation, base: str, since: date, now: datetime
) -> None:
    params = {"since": since, "dust": DUST}
    con.execute(
        _VALUE.format(
            day=utc_date("ts"), prices=_relation(con, PRICES), conv=_CONVERSIONS, balances=BALANCES
        ),
        params,
    )
    rows = con.sql(_ROWS, params={"base": base, "dust": DUST, "total": TOTAL}).to_arrow_table()
    missing = con.sql(_MISSING).to_arrow_table()
    build.rows = _stamped(rows, now)
    build.missing = _stamped(missing, now)
    build.gone = _gone(con, TABLE, KEY, rows, since)
    build.missing_gone = _gone(con, MISSING.name, list(MISSING.keys), missing, since)
    build.history = _history(con, rows, since)
    build.missing_summary = _missing_summary(con, missing, since)
    (build.tokens,) = con.execute(
        f"SELECT count(*) FROM {BALANCES} WHERE NOT is_deleted AND asset_class = 'token' "  # noqa: S608
        f'AND abs(quantity) > ? AND "date" = (SELECT max("date") FROM {BALANCES})',
        [DUST],
    ).fetchall()[0]


def _relation(con: duckdb.DuckDBPyConnection, table: str) -> str:
    if table_columns(con, table):
        return table
    return "(SELECT NULL::VARCHAR AS symbol, NULL::TIMESTAMPTZ AS ts, NULL::DOUBLE AS close WHERE false)"


def _stamped(rows: pa.Table, now: datetime) -> pa.Table:
    stamp = pa.array([now] * rows.num_rows, pa.timestamp("us", tz="UTC"))
    return rows.append_column("computed_at", stamp)


def _gone(
    con: duckdb.DuckDBPyConnection, table: str, keys: list[str], new: pa.Table, since: date
) -> pa.Table | None:
    if not table_columns(con, table):
        return None
    match = " AND ".join(f'n."{k}" = t."{k}"' for k in keys)
    sql = _GONE.format(keys=", ".join(f't."{k}"' for k in keys), table=table, match=match)
    con.register("__new", new)
    try:
        return con.sql(sql, params={"since": since}).to_arrow_table()
    finally:
        con.unregister("__new")


def _history(con: duckdb.DuckDBPyConnection, rows: pa.Table, since: date) -> pd.DataFrame:
    """Every day's values: the stored ones before ``since`` and the rebuilt ones."""
    columns = ["date", "account", "value", "positions", "missing_prices"]
    history = rows.select(columns)
    if table_columns(con, TABLE):
        old = con.sql(
            f'SELECT {", ".join(columns)} FROM {TABLE} WHERE "date" < $since',  # noqa: S608
            params={"since": since},
        ).to_arrow_table()
        history = pa.concat_tables([old.cast(history.schema), history])
    return history.to_pandas().sort_values(["date", "account"], ignore_index=True)


def _missing_summary(
    con: duckdb.DuckDBPyConnection, missing: pa.Table, since: date
) -> pd.DataFrame:
    """Per symbol and reason: the first and last day it left a value incomplete, and how many."""
    columns = ["date", "symbol", "reason"]
    listed = missing.select(columns)
    if table_columns(con, MISSING.name):
        old = con.sql(
            f'SELECT "date", symbol, reason FROM {MISSING.name} WHERE "date" < $since',  # noqa: S608
            params={"since": since},
        ).to_arrow_table()
        listed = pa.concat_tables([old.cast(listed.schema), listed])
    con.register("__missing", listed)
    try:
        return (
            con.sql(
                "SELECT symbol, regexp_replace(reason, ' on or before this day', '') AS reason, "
                'min("date") AS first, max("date") AS last, count(DISTINCT "date") AS days '
                "FROM __missing GROUP BY ALL ORDER BY symbol, reason"
            )
            .to_arrow_table()
            .to_pandas()
        )
    finally:
        con.unregister("__missing")


def totals(history: pd.DataFrame) -> dict[str, object]:
    """The latest total, its change over 30 days, and how many positions it values or lacks."""
    total = history[history["account"] == TOTAL].sort_values("date")
    if total.empty:
        return {}
    last = total.iloc[-1]
    before = total[pd.to_datetime(total["date"]) <= pd.Timestamp(last["date"]) - timedelta(days=30)]
    out: dict[str, object] = {
        "latest_date": str(last["date"]),
        "latest_value": _number(last["value"]),
        "positions_valued": int(last["positions"]),
        "missing_prices": int(last["missing_prices"]),
    }
    then = _number(before.iloc[-1]["value"]) if not before.empty else None
    if then is not None and out["latest_value"] is not None:
        out["change_30d"] = round(out["latest_value"] - then, 2)
        out["change_30d_pct"] = round(100 * (out["latest_value"] / then - 1), 2) if then else None
    return out


def missing_lines(summary: pd.DataFrame | None) -> list[str]:
    """One line per symbol and reason that left values incomplete, with the days affected."""
    if summary is None or summary.empty:
        return []
    return [
        f"{r.symbol}: {r.reason} ({r.first} → {r.last}, {r.days} day{'s' if r.days != 1 else ''})"
        for r in summary.itertuples()
    ]


def _number(value) -> float | None:
    return None if value is None or pd.isna(value) else round(float(value), 2)
