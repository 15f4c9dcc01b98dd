"""``daily_balances``: what each account held of each symbol at the end of every UTC day, replayed
from the ledger.

A pair ``(account, symbol)`` has a row for every day from its first live leg to today while its
position is not zero, and one row (quantity 0) for the day it went to zero; a position opened
again gets rows again. Soft-deleted legs and legs of failed or scam transactions do not count,
as in the holdings. A leg's day is the UTC date of its ``ts``.

Built incrementally: a build reads the ledger legs changed since its change mark, takes per pair
the earliest day any version of a changed leg touched (its new date, and its old one when it
moved), and recomputes those pairs from that day with one window sum over a generated date
series; rows before it are not read again. Rows a recomputation no longer produces are marked
``is_deleted`` (never removed, so ``portfolio_value`` sees them change); every build also
carries the open positions of untouched pairs forward to today.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from platform_pkg.ledger.build import DUST, _advance, _changes_since
from platform_pkg.ledger.legs import LEDGER, LEDGER_KEY, LEG_DELTA, LIVE
from platform_pkg.warehouse.upsert import CHANGE_COLUMN, table_columns
from platform_pkg.warehouse.watermarks import CursorMove

TABLE = "daily_balances"
COLUMNS: dict[str, str] = {
    "date": "DATE",
    "account": "VARCHAR",
    "symbol": "VARCHAR",
    "asset_class": "VARCHAR",
    "quantity": "DOUBLE",
    "is_deleted": "BOOLEAN",
    "deleted_at": "TIMESTAMPTZ",
    "computed_at": "TIMESTAMPTZ",
}
KEY = ["date", "account", "symbol"]


def utc_date(column: str) -> str:
    return f"(({column}) AT TIME ZONE 'UTC')::DATE"


@dataclass
class Rebuild:
    """The rows to upsert, the change mark that commits with them, and what the build did."""

    rows: pa.Table | None = None
    moves: list[CursorMove] = field(default_factory=list)
    pairs: int = 0  # (account, symbol) pairs recomputed
    earliest: date | None = None  # the earliest day recomputed
    recomputed: int = 0  # rows produced for the recomputed pairs
    extended: int = 0  # rows carrying an untouched open position forward to today
    removed: int = 0  # stored rows a recomputation no longer produces (marked deleted)

    @property
    def empty(self) -> bool:
        return self.rows is None or self.rows.num_rows == 0


_STARTS = "__balance_starts"
# Per pair whose legs changed: the earliest day any version of a changed leg touched.
_FIND_STARTS = """
CREATE OR REPLACE TEMP TABLE {starts} AS
WITH changed AS MATERIALIZED (
    SELECT {key}, symbol, ts FROM {ledger} WHERE "{change}" > $seen
),
touched AS (
    SELECT account, symbol, ts FROM changed
    UNION ALL
    SELECT h.account, h.symbol, h.ts FROM {history} h SEMI JOIN changed c USING ({key})
)
SELECT account, symbol, min({day}) AS from_date FROM touched GROUP BY account, symbol
"""

_BUILD = """
WITH starts AS (SELECT * FROM {starts}),
live AS (
    SELECT l.*, s.from_date
    FROM (
        SELECT account, symbol, asset_class, {day} AS date, {delta} AS delta
        FROM {ledger} WHERE {live}
    ) l JOIN starts s USING (account, symbol)
),
pairs AS (
    SELECT account, symbol, max(asset_class) AS asset_class, min(date) AS first_date,
           any_value(from_date) AS from_date,
           coalesce(sum(delta) FILTER (date < from_date), 0.0) AS opening
    FROM live GROUP BY account, symbol
),
moves AS (
    SELECT account, symbol, date, sum(delta) AS delta
    FROM live WHERE date >= from_date GROUP BY account, symbol, date
),
days AS (
    SELECT account, symbol, asset_class, first_date, opening,
           unnest(generate_series(greatest(from_date, first_date), $today, INTERVAL 1 DAY))::DATE
               AS date
    FROM pairs WHERE greatest(from_date, first_date) <= $today
),
running AS (
    SELECT d.*, d.opening + sum(coalesce(m.delta, 0.0)) OVER (
               PARTITION BY d.account, d.symbol ORDER BY d.date ROWS UNBOUNDED PRECEDING
           ) AS quantity
    FROM days d LEFT JOIN moves m USING (account, symbol, date)
),
fresh AS MATERIALIZED (
    SELECT date, account, symbol, asset_class,
           CASE WHEN abs(quantity) > $dust THEN quantity ELSE 0.0 END AS quantity
    FROM (
        SELECT *, lag(quantity) OVER (PARTITION BY account, symbol ORDER BY date) AS before
        FROM running
    )
    -- held that day, or the day it went to zero (or the pair's first day)
    WHERE abs(quantity) > $dust OR date = first_date OR abs(coalesce(before, opening)) > $dust
),
stale AS (
    SELECT b.date, b.account, b.symbol, b.asset_class, b.quantity
    FROM {stored} b JOIN starts s USING (account, symbol)
    WHERE b.date >= s.from_date AND NOT b.is_deleted
      AND NOT EXISTS (SELECT 1 FROM fresh f
                      WHERE f.date = b.date AND f.account = b.account AND f.symbol = b.symbol)
),
latest AS (
    SELECT account, symbol, max(date) AS date, arg_max(quantity, date) AS quantity,
           arg_max(asset_class, date) AS asset_class
    FROM {stored} WHERE NOT is_deleted GROUP BY account, symbol
),
carried AS (
    SELECT unnest(generate_series(l.date + 1, $today, INTERVAL 1 DAY))::DATE AS date,
           l.account, l.symbol, l.asset_class, l.quantity
    FROM latest l ANTI JOIN starts s USING (account, symbol)
    WHERE abs(l.quantity) > $dust AND l.date < $today
)
SELECT *, false AS is_deleted, NULL::TIMESTAMPTZ AS deleted_at, 'recomputed' AS kind FROM fresh
UNION ALL
SELECT *, true, $now, 'removed' FROM stale
UNION ALL
SELECT *, false, NULL, 'extended' FROM carried
ORDER BY account, symbol, date
"""


def _relation(con: duckdb.DuckDBPyConnection, table: str, columns: dict[str, str]) -> str:
    """``table``, or an empty relation of ``columns`` before the table is first written."""
    if table_columns(con, table):
        return f'"{table}"'
    typed = ", ".join(f'NULL::{typ} AS "{name}"' for name, typ in columns.items())
    return f"(SELECT {typed} WHERE false)"


def balance_changes(con: duckdb.DuckDBPyConnection, today: date, now: datetime) -> Rebuild:
    """The rows of every pair whose legs changed since the last build, from the earliest day a
    changed leg touched to ``today``; rows no longer produced, marked deleted; and the open
    positions of untouched pairs carried forward to ``today``."""
    changes = _changes_since(con, TABLE, LEDGER)
    if changes is None:
        return Rebuild()
    ledger_columns = table_columns(con, LEDGER)
    history_columns = {c: ledger_columns[c] for c in (*LEDGER_KEY, "symbol", "ts")}
    seen = changes.seen if changes.pending else changes.newest
    con.execute(
        _FIND_STARTS.format(
            starts=_STARTS,
            key=", ".join(LEDGER_KEY),
            ledger=LEDGER,
            change=CHANGE_COLUMN,
            history=_relation(con, f"{LEDGER}_history", history_columns),
            day=utc_date("ts"),
        ),
        {"seen": seen},
    )
    try:
        sql = _BUILD.format(
            starts=_STARTS,
            ledger=LEDGER,
            stored=_relation(con, TABLE, COLUMNS),
            day=utc_date("ts"),
            delta=LEG_DELTA,
            live=LIVE,
        )
        params = {"today": today, "dust": DUST, "now": now}
        table = con.sql(sql, params=params).to_arrow_table()
        pairs, earliest = con.execute(
            f"SELECT count(*)::INTEGER, min(from_date) FROM {_STARTS}"
        ).fetchall()[0]
    finally:
        con.execute(f"DROP TABLE IF EXISTS {_STARTS}")
    kinds = table.column("kind")
    build = Rebuild(
        pairs=pairs,
        earliest=earliest,
        recomputed=_count(kinds, "recomputed"),
        removed=_count(kinds, "removed"),
        extended=_count(kinds, "extended"),
    )
    if changes.pending:
        build.moves.append(_advance(TABLE, LEDGER, changes))
    rows = table.drop_columns(["kind"])
    build.rows = rows.append_column(
        "computed_at", pa.array([now] * rows.num_rows, pa.timestamp("us", tz="UTC"))
    )
    return build


def _count(kinds: pa.ChunkedArray, kind: str) -> int:
    return pc.sum(pc.equal(kinds, kind)).as_py() or 0
