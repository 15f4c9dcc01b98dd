"""Positions: what each account holds of each symbol, and what the platform must track.

A symbol is *held* while some account's position in it is above zero. Its price history starts
a year before its first acquisition (a buy or a transfer in) in any account, ever: selling to zero
and buying again later does not move that start.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from platform_pkg.portfolio.transactions import ACQUIRE, Transaction

_ZERO = Decimal("1e-12")


@dataclass
class Position:
    """One account's position in one symbol after every transaction so far."""

    account: str
    symbol: str
    asset_class: str
    quantity: Decimal
    first_acquired_at: datetime | None
    last_transaction_at: datetime
    transactions: int

    @property
    def is_open(self) -> bool:
        return self.quantity > _ZERO


@dataclass(frozen=True)
class SymbolHolding:
    """A symbol across accounts: what tracking it needs."""

    symbol: str
    asset_class: str
    first_acquired: date
    quantity: Decimal
    accounts: tuple[str, ...]  # accounts holding it now

    @property
    def active(self) -> bool:
        return bool(self.accounts)


def positions(transactions: Iterable[Transaction]) -> list[Position]:
    """Positions per (account, symbol), replaying transactions in time order."""
    book: dict[tuple[str, str], Position] = {}
    for txn in sorted(transactions, key=lambda t: (t.executed_at, t.line)):
        key = (txn.account, txn.symbol)
        pos = book.get(key)
        if pos is None:
            pos = book[key] = Position(
                txn.account, txn.symbol, txn.asset_class, Decimal(0), None, txn.executed_at, 0
            )
        pos.quantity += txn.signed_quantity
        pos.transactions += 1
        pos.last_transaction_at = txn.executed_at
        if txn.side in ACQUIRE and pos.first_acquired_at is None:
            pos.first_acquired_at = txn.executed_at
    return sorted(book.values(), key=lambda p: (p.symbol, p.account))


def symbol_holdings(book: Iterable[Position]) -> dict[str, SymbolHolding]:
    """Per symbol: first acquisition in any account, total held, and the accounts holding it.

    Symbols that were never acquired (only disposals, which validation refuses) are left out.
    """
    by_symbol: dict[str, list[Position]] = {}
    for pos in book:
        by_symbol.setdefault(pos.symbol, []).append(pos)
    result = {}
    for symbol, items in sorted(by_symbol.items()):
        firsts = [p.first_acquired_at for p in items if p.first_acquired_at is not None]
        if not firsts:
            continue
        result[symbol] = SymbolHolding(
            symbol=symbol,
            asset_class=items[0].asset_class,
            first_acquired=min(firsts).date(),
            quantity=sum((p.quantity for p in items), Decimal(0)),
            accounts=tuple(sorted(p.account for p in items if p.is_open)),
        )
    return result
