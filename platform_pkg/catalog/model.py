"""The asset catalogue's rows: a listing as one source gives it, and the stored entry that says
since when the catalogue has seen it and whether any source still lists it."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

TABLE = "asset_catalog"
KEY = ["asset_id"]
DATA_TYPE = "asset_catalog"  # sync_log.data_type of one source's refresh (symbol: the source)

# Source names, as rows and sync_log carry them; an exchange's is its price source's, "ccxt:<id>".
DEMO = "demo"
LISTINGS = "listings"
COINGECKO = "coingecko"

COLUMNS: dict[str, str] = {
    "asset_id": "VARCHAR",
    "name": "VARCHAR",
    "asset_class": "VARCHAR",
    "exchange": "VARCHAR",
    "currency": "VARCHAR",
    "source": "VARCHAR",
    "source_id": "VARCHAR",
    "listed_at": "TIMESTAMPTZ",
    "is_active": "BOOLEAN",
    "first_seen": "TIMESTAMPTZ",
    "last_seen": "TIMESTAMPTZ",
    "delisted_at": "TIMESTAMPTZ",
}
_TS = pa.timestamp("us", tz="UTC")
SCHEMA = pa.schema(
    [
        (name, _TS if typ == "TIMESTAMPTZ" else pa.bool_() if typ == "BOOLEAN" else pa.string())
        for name, typ in COLUMNS.items()
    ]
)


@dataclass(frozen=True)
class Listing:
    """A tradable thing as one source lists it, under the platform's symbol key."""

    asset_id: str
    name: str | None
    asset_class: str
    exchange: str | None
    currency: str | None
    source: str
    source_id: str
    listed_at: datetime | None = None


@dataclass(frozen=True)
class Entry:
    """A stored row: the listing of the source that lists it (or last did), and its life."""

    listing: Listing
    is_active: bool
    first_seen: datetime
    last_seen: datetime | None
    delisted_at: datetime | None = None

    @property
    def asset_id(self) -> str:
        return self.listing.asset_id

    def row(self) -> dict[str, Any]:
        return asdict(self.listing) | {
            "is_active": self.is_active,
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
            "delisted_at": self.delisted_at,
        }

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Entry:
        listing = Listing(**{f.name: _utc(row[f.name]) for f in fields(Listing)})
        return cls(
            listing,
            bool(row["is_active"]),
            _utc(row["first_seen"]),
            _utc(row["last_seen"]),
            _utc(row["delisted_at"]),
        )


@dataclass
class SourceResult:
    """What one source listed in a refresh; ``listings`` None when it failed (its entries are
    then left as they were). ``skipped`` counts what it listed that the catalogue cannot hold."""

    source: str
    listings: list[Listing] | None
    started_at: datetime
    finished_at: datetime | None = None
    error: str | None = None
    requests: int = 0
    units: float = 0.0
    skipped: Counter[str] = field(default_factory=Counter)

    @property
    def failed(self) -> bool:
        return self.listings is None


def entries_table(entries: list[Entry]) -> pa.Table:
    """The rows of ``entries`` as the table stores them."""
    return pa.Table.from_pylist([e.row() for e in entries], schema=SCHEMA)


def _utc(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    return value
