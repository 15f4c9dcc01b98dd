"""Integrity of keyed tables, the ledger and the holdings it drives, read in one SQL statement
each over the whole table: keys unique and complete, soft-delete flags set, no holding replayed
below zero, and holdings equal to the replay of the live legs.

Nothing here writes. Each function returns a :class:`Finding` — what was looked at, what failed
(counts) and the first :data:`SAMPLE` failures — or, when a table does not exist yet, a passed
finding that says so.
"""

from __future__ import annotations

from collections.abc import Sequence

import duckdb

from platform_pkg.findings import SAMPLE, Finding
from platform_pkg.ledger.build import DUST, HOLDINGS
from platform_pkg.ledger.legs import LEDGER, LEG_DELTA, LIVE
from platform_pkg.warehouse.upsert import DELETED, q, table_columns

# Float sums of fills and fees leave residue around 1e-16 of the quantity moved; a balance is
# negative (or a holding differs) only beyond EPSILON x the quantity the pair has moved so far
# (the sum of |leg|), and never closer than DUST, below which the holdings store zero.
EPSILON = 1e-9


def nothing_yet(*tables: str) -> Finding:
    return Finding(note=f"nothing to check yet: no table {', '.join(tables)}")


def _missing(con: duckdb.DuckDBPyConnection, *tables: str) -> list[str]:
    return [t for t in tables if not table_columns(con, t)]


def unique_key(con: duckdb.DuckDBPyConnection, table: str, key: Sequence[str]) -> Finding:
    """Every row of ``table`` has its whole ``key``, and no two rows share one (the tables have no
    index: the write path keeps keys unique)."""
    if _missing(con, table):
        return nothing_yet(table)
    cols = ", ".join(q(k) for k in key)
    row = ", ".join(f"'{k}': {q(k)}" for k in key)
    null_key = " OR ".join(f"{q(k)} IS NULL" for k in key)
    ((rows, keys, duplicated, extra, null_rows, sample),) = con.execute(
        f"""
        WITH keys AS (SELECT {cols}, count(*) AS copies FROM {q(table)} GROUP BY {cols})
        SELECT coalesce(sum(copies), 0), count(*),
               count(*) FILTER (copies > 1), coalesce(sum(copies - 1) FILTER (copies > 1), 0),
               coalesce(sum(copies) FILTER ({null_key}), 0),
               arg_min({{{row}, 'copies': copies}}, (-copies, {cols}), {SAMPLE})
                   FILTER (copies > 1 OR {null_key})
        FROM keys
        """  # noqa: S608 - identifiers from code
    ).fetchall()
    return Finding(
        looked_at={"rows_checked": rows, "keys_checked": keys},
        failures={
            "duplicate_keys": duplicated,
            "duplicate_rows": extra,
            "null_key_rows": null_rows,
        },
        sample=sample or [],
    )


def flag_set(
    con: duckdb.DuckDBPyConnection, table: str, key: Sequence[str], flag: str = DELETED
) -> Finding:
    """No row of ``table`` has a NULL ``flag`` (a soft-delete flag is true or false)."""
    if _missing(con, table):
        return nothing_yet(table)
    if flag not in table_columns(con, table):
        return Finding(note=f"table {table} has no {flag} column")
    row = ", ".join(f"'{k}': {q(k)}" for k in key)
    ((rows, unset, sample),) = con.execute(
        f"""
        SELECT count(*), count(*) FILTER ({q(flag)} IS NULL),
               arg_min({{{row}}}, ({", ".join(q(k) for k in key)}), {SAMPLE})
                   FILTER ({q(flag)} IS NULL)
        FROM {q(table)}
        """  # noqa: S608 - identifiers from code
    ).fetchall()
    return Finding(
        looked_at={"rows_checked": rows},
        failures={f"null_{flag}_rows": unset},
        sample=sample or [],
    )


def negative_balances(con: duckdb.DuckDBPyConnection) -> Finding:
    """Replays each (account, symbol)'s live legs in time order and finds the pairs whose running
    balance goes below zero, with the first leg where it does. Legs at one instant count their
    inflows first, so a buy and a sale stamped alike do not read as a short."""
    if _missing(con, LEDGER):
        return nothing_yet(LEDGER)
    ((legs, pairs, negative_legs, negative_pairs, sample),) = con.execute(
        f"""
        WITH legs AS (
            SELECT domain, source, account, txid, leg, symbol, ts, {LEG_DELTA} AS delta
            FROM {LEDGER} WHERE {LIVE}
        ),
        replayed AS (
            SELECT account, symbol, ts, txid, leg,
                   sum(delta) OVER w AS balance, sum(abs(delta)) OVER w AS moved,
                   row_number() OVER w AS nth
            FROM legs
            WINDOW w AS (PARTITION BY account, symbol
                         ORDER BY ts, delta DESC, domain, source, txid, leg
                         ROWS UNBOUNDED PRECEDING)
        ),
        pairs AS (
            SELECT account, symbol, count(*) AS legs,
                   count(*) FILTER (short) AS short_legs,
                   arg_min({{'account': account, 'symbol': symbol, 'ts': ts, 'txid': txid,
                             'leg': leg, 'balance': balance}}, nth) FILTER (short) AS first
            FROM (SELECT *, balance < -greatest(? * moved, ?) AS short FROM replayed)
            GROUP BY account, symbol
        )
        SELECT coalesce(sum(legs), 0), count(*), coalesce(sum(short_legs), 0),
               count(*) FILTER (short_legs > 0),
               arg_min(first, (first.ts, account, symbol), {SAMPLE}) FILTER (short_legs > 0)
        FROM pairs
        """,  # noqa: S608 - identifiers from code
        [EPSILON, DUST],
    ).fetchall()
    return Finding(
        looked_at={"live_legs_checked": legs, "pairs_checked": pairs},
        failures={"negative_pairs": negative_pairs, "negative_legs": negative_legs},
        sample=sample or [],
    )


def holdings_mismatches(con: duckdb.DuckDBPyConnection) -> Finding:
    """Every stored holding equals the replay of its pair's live legs — quantity and legs
    counted — and every pair with live legs has a holding. A deleted leg still counted, or a
    holding that only deleted legs hold up, shows as a difference."""
    if missing := _missing(con, LEDGER, HOLDINGS):
        return nothing_yet(*missing)
    ((pairs, holdings, differing, missing_rows, sample),) = con.execute(
        f"""
        WITH replayed AS (
            SELECT account, symbol, sum(delta) AS expected, sum(abs(delta)) AS moved,
                   count(ts) AS live_legs
            FROM (SELECT account, symbol, ts, {LEG_DELTA} AS delta FROM {LEDGER} WHERE {LIVE})
            GROUP BY account, symbol
        ),
        compared AS (
            SELECT account, symbol, h.quantity AS stored, h.transactions AS stored_legs,
                   coalesce(r.expected, 0.0) AS expected, coalesce(r.live_legs, 0) AS live_legs,
                   h.held IS NOT NULL AS held,
                   CASE
                       WHEN h.held IS NULL THEN 'no holding'
                       WHEN r.live_legs IS NULL AND (abs(h.quantity) > ? OR h.transactions > 0)
                           THEN 'only deleted legs'
                       WHEN abs(h.quantity - coalesce(r.expected, 0.0))
                            > greatest(? * coalesce(r.moved, 0.0), ?) THEN 'quantity differs'
                       WHEN h.transactions IS DISTINCT FROM coalesce(r.live_legs, 0)
                           THEN 'legs counted differ'
                   END AS problem
            FROM (SELECT *, true AS held FROM {HOLDINGS}) h
            FULL OUTER JOIN replayed r USING (account, symbol)
        )
        SELECT count(*), count(*) FILTER (held), count(*) FILTER (problem IS NOT NULL),
               count(*) FILTER (NOT held),
               arg_min({{'account': account, 'symbol': symbol, 'problem': problem,
                         'stored': stored, 'expected': expected, 'stored_legs': stored_legs,
                         'live_legs': live_legs}}, (account, symbol), {SAMPLE})
                   FILTER (problem IS NOT NULL)
        FROM compared
        """,  # noqa: S608 - identifiers from code
        [DUST, EPSILON, DUST],
    ).fetchall()
    return Finding(
        looked_at={"pairs_checked": pairs, "holdings_checked": holdings},
        failures={"pairs_differing": differing, "holdings_missing": missing_rows},
        sample=sample or [],
    )
