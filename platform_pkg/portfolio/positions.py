"""What tracking needs to know of a symbol across accounts, as the holdings report it.

A symbol is *held* while some account's position in it is above zero. Its price history starts
a year before its first acquisition (a buy or a transfer in) in any account, ever: selling to zero
and buying again later does not move that start.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date


@dataclass(frozen=True)
class SymbolHolding:
    """A symbol across accounts: what tracking it needs."""

    symbol: str
    asset_class: str | None
    first_acquired: date
    accounts: tuple[str, ...]  # accounts holding it now

    @property
    def active(self) -> bool:
        return bool(self.accounts)


def from_summary(summary: Mapping[str, Mapping]) -> dict[str, SymbolHolding]:
    """The holdings' per-symbol summary (``first``, ``class``, ``accounts``) as holdings."""
    return {
        symbol: SymbolHolding(
            symbol,
            item.get("class"),
            date.fromisoformat(item["first"]),
            tuple(item.get("accounts", ())),
        )
        for symbol, item in sorted(summary.items())
    }
