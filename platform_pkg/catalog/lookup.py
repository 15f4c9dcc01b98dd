"""Reading the asset catalogue: search, close matches for an unknown symbol, CoinGecko coin ids.

Nothing here writes or needs Dagster. Where there is no warehouse, no catalogue yet, or a writer
keeps the file locked, readers get nothing and their callers do what they did before the
catalogue existed.
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TypeVar

import duckdb

from platform_pkg.catalog.model import COINGECKO, DATA_TYPE, TABLE, Entry
from platform_pkg.catalog.sources import COIN_QUOTE
from platform_pkg.warehouse import query
from platform_pkg.warehouse.connection import warehouse_path
from platform_pkg.warehouse.upsert import table_columns

T = TypeVar("T")
MATCHES = 3
CUTOFF = 0.7  # difflib similarity a suggestion needs (BTCUSDT ~ BTC-USDT: 0.93)
SPREAD = 0.15  # and at most this far behind the closest
NOT_BUILT = (
    "the asset catalogue has not been built yet: materialise asset_catalog (the weekly "
    "catalog_refresh schedule does), e.g. dagster asset materialize -m platform_pkg.definitions "
    "--select asset_catalog"
)
# When a source last answered a refresh: for an entry it still lists, when it was last seen.
_SEEN = (
    "SELECT symbol AS source, max(finished_at) AS seen FROM sync_log "
    "WHERE data_type = $data_type AND status = 'success' GROUP BY ALL"
)


def exists(con: duckdb.DuckDBPyConnection) -> bool:
    return bool(table_columns(con, TABLE))


def read_entries(con: duckdb.DuckDBPyConnection) -> dict[str, Entry]:
    if not exists(con):
        return {}
    rows = con.sql(f"SELECT * FROM {TABLE}").to_arrow_table().to_pylist()
    return {row["asset_id"]: Entry.from_row(row) for row in rows}


def last_successes(con: duckdb.DuckDBPyConnection) -> dict[str, datetime]:
    """Per source, when it last answered a catalogue refresh."""
    if not table_columns(con, "sync_log"):
        return {}
    return dict(con.execute(_SEEN, {"data_type": DATA_TYPE}).fetchall())


def delisted(con: duckdb.DuckDBPyConnection, symbols: Sequence[str]) -> dict[str, str]:
    """Of ``symbols``, those the catalogue marks delisted, with why (when, and who listed it)."""
    if not symbols or not exists(con):
        return {}
    rows = con.execute(
        f"SELECT asset_id, delisted_at, source FROM {TABLE} "  # noqa: S608 - a constant
        "WHERE NOT is_active AND list_contains($symbols, asset_id)",
        {"symbols": list(symbols)},
    ).fetchall()
    return {
        symbol: f"delisted on {when:%Y-%m-%d} ({source} no longer lists it)"
        if when is not None
        else f"delisted ({source} no longer lists it)"
        for symbol, when, source in rows
    }


def search(con: duckdb.DuckDBPyConnection, text: str, limit: int) -> query.QueryResult:
    """Listings whose key, name or source id contains ``text`` (any case): exact key first,
    then keys starting with it, active before delisted. ``last_seen`` of an active listing is
    its source's last successful refresh."""
    params = {"t": text.strip().lower()}
    seen, join = "c.last_seen", ""
    if table_columns(con, "sync_log"):
        join = f" LEFT JOIN ({_SEEN}) s ON s.source = c.source"
        seen = "CASE WHEN c.is_active THEN greatest(c.last_seen, s.seen) ELSE c.last_seen END"
        params["data_type"] = DATA_TYPE
    cursor = con.execute(
        "SELECT c.asset_id, c.name, c.asset_class AS class, c.exchange, c.source, c.source_id, "
        f"c.is_active AS active, {seen} AS last_seen, c.delisted_at FROM {TABLE} c{join} "
        "WHERE contains(lower(c.asset_id), $t) OR contains(lower(coalesce(c.name, '')), $t) "
        "OR contains(lower(c.source_id), $t) "
        "ORDER BY lower(c.asset_id) = $t DESC, starts_with(lower(c.asset_id), $t) DESC, "
        "c.is_active DESC, c.asset_id",
        params,
    )
    columns = tuple(d[0] for d in cursor.description)
    rows = tuple(cursor.fetchmany(limit)) if limit > 0 else ()
    omitted = 0
    while chunk := cursor.fetchmany(10_000):
        omitted += len(chunk)
    return query.QueryResult(columns, rows, omitted)


def coingecko_id(con: duckdb.DuckDBPyConnection, ticker: str) -> str | None:
    """The CoinGecko coin the catalogue lists for ``ticker`` (the best market-cap rank among
    the coins sharing it, chosen when it was refreshed), or None."""
    if not exists(con):
        return None
    found = con.execute(
        f"SELECT source_id FROM {TABLE} WHERE asset_id = ? AND source = ? "
        "ORDER BY is_active DESC LIMIT 1",
        [f"{ticker.upper()}-{COIN_QUOTE}", COINGECKO],
    ).fetchall()
    return found[0][0] if found else None


@dataclass(frozen=True)
class Brief:
    """What a suggestion shows of a listing."""

    asset_id: str
    name: str | None
    source: str
    exchange: str | None
    is_active: bool
    delisted_at: datetime | None

    def __str__(self) -> str:
        shown = self.name if self.name and self.name != self.asset_id else None
        return f"{self.asset_id!r} ({shown}, {self.source})" if shown else repr(self.asset_id)


def briefs(con: duckdb.DuckDBPyConnection, source: str | None = None) -> list[Brief]:
    """Every listing (of ``source`` only, if given), as suggestions show them."""
    if not exists(con):
        return []
    where, params = (" WHERE source = ?", [source]) if source else ("", [])
    rows = con.execute(
        f"SELECT asset_id, name, source, exchange, is_active, delisted_at FROM {TABLE}{where} "
        "ORDER BY asset_id",
        params,
    ).fetchall()
    return [Brief(*row) for row in rows]


def close_matches(text: str, among: Sequence[Brief], n: int = MATCHES) -> list[Brief]:
    """The ``n`` active listings closest to ``text``: the same coin under other quotes (``BTC`` →
    ``BTC-USDT``), keys spelled alike (``BTCUSDT``), names spelled alike (``bitcoin``); the
    closest spelling first."""
    active = [b for b in among if b.is_active]
    wanted = text.strip().upper()
    base = wanted.rpartition("-")[0] or wanted
    by_id = {b.asset_id: b for b in active}
    by_name: dict[str, str] = {}
    for b in active:
        if b.name:
            by_name.setdefault(b.name.upper(), b.asset_id)
    same_coin = {b.asset_id for b in active if b.asset_id.rpartition("-")[0] == base}
    alike = set(difflib.get_close_matches(wanted, list(by_id), n=2 * n, cutoff=CUTOFF))
    alike |= {
        by_name[m] for m in difflib.get_close_matches(wanted, list(by_name), n=n, cutoff=CUTOFF)
    }

    def closeness(key: str) -> float:
        names = [key, (by_id[key].name or "").upper()]
        return max(difflib.SequenceMatcher(None, wanted, x).ratio() for x in names)

    scores = {key: closeness(key) for key in (same_coin | alike) - {wanted}}
    best = max(scores.values(), default=0.0)
    # Spelled alike but far behind the closest is noise (BTCX-USDT is not ETH-USDT).
    kept = [k for k, v in scores.items() if k in same_coin or v >= best - SPREAD]
    return [by_id[k] for k in sorted(kept, key=lambda k: (-scores[k], k))[:n]]


def hint(symbol: str, among: Sequence[Brief]) -> str:
    """What the catalogue adds to "unknown symbol": it was delisted, or what was meant."""
    stored = next((b for b in among if b.asset_id == symbol), None)
    note = ""
    if stored is not None and not stored.is_active:
        when = f" on {stored.delisted_at:%Y-%m-%d}" if stored.delisted_at else ""
        note = f"; {stored.source} stopped listing it{when} (asset catalogue)"
    matches = close_matches(symbol, among)
    if matches:
        note += f"; did you mean {_either([str(m) for m in matches])}?"
    return note


class StoredCatalogue:
    """The catalogue in the warehouse file, read (never written) when first asked.

    ``wait_seconds`` bounds the wait for a writer to let go; past it, and without a warehouse or
    a catalogue, every answer is "nothing known" and callers keep their old behaviour.
    """

    def __init__(self, path: Path | None = None, wait_seconds: float = 2.0):
        self.path = path or warehouse_path()
        self.wait_seconds = wait_seconds
        self._markets: dict[str, list[Brief]] = {}

    def _read(self, read: Callable[[duckdb.DuckDBPyConnection], T]) -> T | None:
        try:
            with query.open_read_only(self.path, wait_seconds=self.wait_seconds) as con:
                return read(con)
        except (query.WarehouseMissingError, query.WarehouseBusyError, duckdb.Error):
            return None

    @functools.cached_property
    def briefs(self) -> list[Brief]:
        return self._read(briefs) or []

    def hint(self, symbol: str) -> str:
        return hint(symbol, self.briefs) if self.briefs else ""

    def unlisted_market(self, exchange: str, symbol: str) -> str | None:
        """Why the catalogue says the ccxt exchange ``exchange`` does not list ``symbol``; None
        when it does, or when the catalogue holds no markets of that exchange."""
        source = f"ccxt:{exchange}"
        if source not in self._markets:
            self._markets[source] = self._read(lambda con: briefs(con, source)) or []
        markets = self._markets[source]
        if not markets or any(b.asset_id == symbol and b.is_active for b in markets):
            return None
        return f"{exchange} does not list {symbol} (asset catalogue){hint(symbol, markets)}"

    def coingecko_id(self, ticker: str) -> str | None:
        return self._read(lambda con: coingecko_id(con, ticker))


def _either(options: Sequence[str]) -> str:
    return options[0] if len(options) == 1 else f"{', '.join(options[:-1])} or {options[-1]}"
