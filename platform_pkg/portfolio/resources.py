"""The portfolio file as a resource, and the market checks the portfolio needs."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import dagster as dg
from pydantic import Field

from platform_pkg.catalog.lookup import StoredCatalogue
from platform_pkg.market.resources import MarketData
from platform_pkg.market.source import RequestMeter, UnknownSymbolError
from platform_pkg.partitions import daily_partitions
from platform_pkg.portfolio.tracking import HISTORY_DAYS, Calendar
from platform_pkg.warehouse.connection import PROJECT_ROOT

DEFAULT_PORTFOLIO = PROJECT_ROOT / "data" / "portfolio.csv"
DEMO_PORTFOLIO = PROJECT_ROOT / "data" / "demo" / "portfolio.csv"


@dataclass(frozen=True)
class PortfolioSnapshot:
    path: Path
    text: str
    digest: str  # sha256 of the bytes read


class PortfolioFile(dg.ConfigurableResource):
    """The user's portfolio: a CSV file of their own transactions (see data/demo/README.md)."""

    path: str | None = Field(
        default=None,
        description="The CSV file. Default: $PLATFORM_PORTFOLIO, else data/portfolio.csv "
        "(relative paths are taken from the project root; scripts/dev.sh seeds it from "
        "data/demo/portfolio.csv when missing).",
    )
    history_days: int = Field(
        default=HISTORY_DAYS,
        ge=0,
        description="Days of price history before a symbol's first acquisition.",
    )

    def resolved_path(self) -> Path:
        raw = self.path or os.environ.get("PLATFORM_PORTFOLIO") or str(DEFAULT_PORTFOLIO)
        path = Path(raw).expanduser()
        return path if path.is_absolute() else PROJECT_ROOT / path

    def digest(self) -> str | None:
        """The sha256 of the file's bytes, or None when there is no file."""
        snapshot = self.read()
        return snapshot.digest if snapshot is not None else None

    def read(self) -> PortfolioSnapshot | None:
        """The file's content now, or None when there is no file."""
        path = self.resolved_path()
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        return PortfolioSnapshot(path, data.decode("utf-8-sig"), hashlib.sha256(data).hexdigest())


@dataclass
class MarketChecks:
    """What the configured sources serve, asked once per symbol and interval per evaluation. Why a
    symbol is unknown names what the asset catalogue holds close to it (when there is one)."""

    market: MarketData
    catalogue: StoredCatalogue = field(default_factory=StoredCatalogue)
    _earliest: dict[tuple[str, str], datetime | None] = field(default_factory=dict)
    _unknown: dict[str, str] = field(default_factory=dict)

    def unknown_reason(self, symbol: str) -> str | None:
        """Why the market does not serve ``symbol``, or None when it does."""
        if symbol not in self._unknown:
            try:
                self.earliest(symbol, "1d")
                self._unknown[symbol] = ""
            except UnknownSymbolError as exc:
                self._unknown[symbol] = f"{exc}{self.catalogue.hint(symbol)}"
        return self._unknown[symbol] or None

    def earliest(self, symbol: str, interval: str) -> datetime | None:
        key = (symbol, interval)
        if key not in self._earliest:
            source = self.market.source_for(symbol, RequestMeter())
            self._earliest[key] = source.earliest(symbol, interval)
        return self._earliest[key]


def calendar_for(now: datetime, history_days: int) -> Calendar:
    """The days a history request may cover now: the first date partition up to today (or the
    last partition that exists, if the partitions stop before today)."""
    first = date.fromisoformat(daily_partitions.get_first_partition_key())
    last_key = daily_partitions.get_last_partition_key()
    last = min(now.date(), date.fromisoformat(last_key)) if last_key else now.date()
    return Calendar(first_day=first, last_day=last, history_days=history_days)
