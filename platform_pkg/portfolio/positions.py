"""What tracking needs to know of a symbol across accounts, as the holdings report it.

A symbol is *held* while some account's position in it is above zero. Its price history starts
a year before its first acquisition (a buy or a transfer in) in any account, ever: selling to zero
and buying again later does not move that start.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from platform_pkg.portfolio.transactions import Transaction


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


def from_transactions(transactions: Iterable[Transaction]) -> dict[str, SymbolHolding]:
    """What validated portfolio-file lines alone say is held (the ledger adds the exchanges'
    and wallets' legs to this)."""
    first: dict[str, date] = {}
    classes: dict[str, str] = {}
    positions: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for txn in transactions:
        positions[(txn.symbol, txn.account)] += txn.signed_quantity
        classes.setdefault(txn.symbol, txn.asset_class)
        if txn.signed_quantity > 0:
            day = txn.executed_at.date()
            first[txn.symbol] = min(day, first.get(txn.symbol, day))
    return {
        symbol: SymbolHolding(
            symbol,
            classes[symbol],
            day,
            tuple(sorted(a for (s, a), held in positions.items() if s == symbol and held > 0)),
        )
        for symbol, day in sorted(first.items())
    }
