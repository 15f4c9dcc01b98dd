"""The portfolio file: the user's own transactions, read and validated line by line.

The format is documented in ``data/demo/README.md``. Validation never drops a line silently: a
line is either a :class:`Transaction` or a :class:`Reject` naming its line number, field and
reason. Good lines are used even when others are bad. Only a file that cannot be read as a
portfolio at all (no header, a required column missing) raises :class:`PortfolioFormatError`.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from platform_pkg.market.catalogue import ASSET_CLASSES, CRYPTO_CLASSES, asset_class_of
from platform_pkg.symbols import InvalidSymbolError, canonical_symbol

REQUIRED_COLUMNS = (
    "date",
    "account",
    "symbol",
    "asset_class",
    "side",
    "quantity",
    "price",
    "currency",
    "fee",
)
OPTIONAL_COLUMNS = ("txn_id", "note")
ACQUIRE = ("buy", "transfer_in")
DISPOSE = ("sell", "transfer_out")
SIDES = ACQUIRE + DISPOSE
_SIDE_ALIASES = {"transfer in": "transfer_in", "transfer out": "transfer_out"}
_CURRENCY = re.compile(r"^[A-Z]{3,5}$")
_ACCOUNT = re.compile(r"^[\w.\- @]{1,64}$")
_TOLERANCE = Decimal("1e-12")

# Why a symbol is unknown, or None when the market serves it.
SymbolCheck = Callable[[str], str | None]


class PortfolioFormatError(ValueError):
    """The file is not a portfolio at all (no header, a required column missing)."""


@dataclass(frozen=True)
class Transaction:
    """One validated line: an acquisition or a disposal of ``quantity`` units of ``symbol``."""

    txn_id: str
    line: int
    executed_at: datetime
    account: str
    symbol: str
    asset_class: str
    side: str
    quantity: Decimal
    price: Decimal | None
    currency: str
    fee: Decimal
    note: str = ""

    @property
    def signed_quantity(self) -> Decimal:
        return self.quantity if self.side in ACQUIRE else -self.quantity


@dataclass(frozen=True)
class Reject:
    """A line kept aside: where it is, which field is wrong, and why."""

    line: int
    field: str
    reason: str
    raw: str

    def __str__(self) -> str:
        return f"line {self.line}, {self.field}: {self.reason}"


@dataclass
class ParsedPortfolio:
    transactions: list[Transaction] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)
    data_lines: int = 0  # non-blank, non-comment lines after the header


class _LineError(Exception):
    def __init__(self, field_name: str, reason: str):
        super().__init__(reason)
        self.field = field_name
        self.reason = reason


def parse_portfolio(
    text: str, *, known_symbol: SymbolCheck | None = None, now: datetime | None = None
) -> ParsedPortfolio:
    """Validate the CSV ``text`` of a portfolio file.

    ``known_symbol`` asks the market whether it serves a symbol; ``now`` refuses future dates.
    Disposals are checked against what the account holds at that moment, so a sell of more than
    is held is rejected (and not applied) while the lines around it still count.
    """
    result = ParsedPortfolio()
    rows = _read_rows(text)
    candidates: list[Transaction] = []
    seen_ids: dict[str, int] = {}
    occurrences: Counter[str] = Counter()
    for line, raw, values in rows:
        result.data_lines += 1
        try:
            txn = _parse_line(line, values, known_symbol, now)
        except _LineError as err:
            result.rejects.append(Reject(line, err.field, err.reason, raw))
            continue
        if not txn.txn_id:
            digest = _content_digest(txn)
            occurrences[digest] += 1
            suffix = f"-{occurrences[digest]}" if occurrences[digest] > 1 else ""
            txn = _replace_id(txn, f"L{digest}{suffix}")
        elif txn.txn_id in seen_ids:
            reason = f"duplicate txn_id {txn.txn_id!r} (first on line {seen_ids[txn.txn_id]})"
            result.rejects.append(Reject(line, "txn_id", reason, raw))
            continue
        seen_ids[txn.txn_id] = line
        candidates.append(txn)
    raw_by_line = {line: raw for line, raw, _ in rows}
    result.transactions, oversold = _apply_in_order(candidates)
    for txn, held in oversold:
        reason = (
            f"{txn.side} of {_fmt(txn.quantity)} {txn.symbol} on {txn.executed_at:%Y-%m-%d} but "
            f"account {txn.account!r} holds {_fmt(held)} then"
        )
        result.rejects.append(Reject(txn.line, "quantity", reason, raw_by_line[txn.line]))
    result.rejects.sort(key=lambda r: r.line)
    return result


def _read_rows(text: str) -> list[tuple[int, str, dict[str, str]]]:
    """``(line number, raw text, values by column)`` of every data line; line 1 is the header."""
    lines = text.splitlines()
    reader = csv.reader(io.StringIO(text))
    header: list[str] | None = None
    rows: list[tuple[int, str, dict[str, str]]] = []
    previous_end = 0
    for record in reader:
        first, previous_end = previous_end + 1, reader.line_num
        raw = "\n".join(lines[first - 1 : reader.line_num])
        if not record or all(not cell.strip() for cell in record) or raw.lstrip().startswith("#"):
            continue
        if header is None:
            header = [cell.strip().lower() for cell in record]
            missing = [c for c in REQUIRED_COLUMNS if c not in header]
            if missing:
                raise PortfolioFormatError(
                    f"the header (line {first}) lacks column(s) {', '.join(missing)}; expected "
                    f"{','.join(REQUIRED_COLUMNS)} (optional: {', '.join(OPTIONAL_COLUMNS)})"
                )
            continue
        if len(record) != len(header):
            values = {"__width__": f"{len(record)} fields where the header has {len(header)}"}
        else:
            values = {name: cell.strip() for name, cell in zip(header, record, strict=True)}
        rows.append((first, raw, values))
    if header is None:
        raise PortfolioFormatError("the file has no header line")
    return rows


def _parse_line(
    line: int, values: dict[str, str], known_symbol: SymbolCheck | None, now: datetime | None
) -> Transaction:
    if "__width__" in values:
        raise _LineError("line", values["__width__"])
    executed_at = parse_timestamp(values["date"])
    if now is not None and executed_at > now:
        raise _LineError("date", f"{values['date']!r} is in the future")
    account = values["account"]
    if not _ACCOUNT.match(account):
        raise _LineError(
            "account", f"{account!r} is not an account name (1-64 letters, digits, ._-@ or spaces)"
        )
    try:
        symbol = canonical_symbol(values["symbol"])
    except InvalidSymbolError as exc:
        raise _LineError("symbol", str(exc)) from None
    if known_symbol is not None:
        why = known_symbol(symbol)
        if why:
            raise _LineError("symbol", f"unknown symbol {symbol!r}: {why}")
    asset_class = values["asset_class"].lower()
    if asset_class not in ASSET_CLASSES:
        raise _LineError(
            "asset_class",
            f"unknown asset class {values['asset_class']!r}; known: {', '.join(ASSET_CLASSES)}",
        )
    expected = asset_class_of(symbol)
    if (asset_class in CRYPTO_CLASSES) != (expected in CRYPTO_CLASSES):
        raise _LineError("asset_class", f"{symbol} is {expected}, not {asset_class}")
    side = _SIDE_ALIASES.get(values["side"].lower(), values["side"].lower())
    if side not in SIDES:
        raise _LineError("side", f"unknown side {values['side']!r}; known: {', '.join(SIDES)}")
    quantity = _decimal(values, "quantity", required=True)
    if quantity <= 0:
        raise _LineError(
            "quantity", f"{values['quantity']} is not positive; the side gives the direction"
        )
    price = _decimal(values, "price", required=side in ("buy", "sell"))
    if price is not None and price < 0:
        raise _LineError("price", f"{values['price']} is negative")
    fee = _decimal(values, "fee", required=False) or Decimal(0)
    if fee < 0:
        raise _LineError("fee", f"{values['fee']} is negative")
    currency = values["currency"].upper()
    if not _CURRENCY.match(currency):
        raise _LineError("currency", f"{values['currency']!r} is not a currency code such as USD")
    return Transaction(
        txn_id=values.get("txn_id", ""),
        line=line,
        executed_at=executed_at,
        account=account,
        symbol=symbol,
        asset_class=asset_class,
        side=side,
        quantity=quantity,
        price=price,
        currency=currency,
        fee=fee,
        note=values.get("note", ""),
    )


def parse_timestamp(raw: str) -> datetime:
    """``YYYY-MM-DD`` (midnight UTC) or an ISO 8601 date-time; without an offset it is UTC."""
    text = raw.strip()
    if not re.match(
        r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?$", text
    ):
        raise _LineError("date", f"{raw!r} is not a date (YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS][Z])")
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise _LineError("date", f"{raw!r} is not a valid date: {exc}") from None
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def _decimal(values: dict[str, str], name: str, *, required: bool) -> Decimal | None:
    raw = values.get(name, "")
    if raw == "":
        if required:
            raise _LineError(name, "is empty")
        return None
    try:
        number = Decimal(raw)
    except InvalidOperation:
        raise _LineError(name, f"{raw!r} is not a number") from None
    if not number.is_finite():
        raise _LineError(name, f"{raw!r} is not a finite number")
    return number


def _content_digest(txn: Transaction) -> str:
    """A key that survives lines being inserted or reordered: the transaction's own content."""
    parts = [
        txn.executed_at.isoformat(),
        txn.account,
        txn.symbol,
        txn.side,
        _fmt(txn.quantity),
        _fmt(txn.price) if txn.price is not None else "",
        txn.currency,
        _fmt(txn.fee),
    ]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def _replace_id(txn: Transaction, txn_id: str) -> Transaction:
    return Transaction(**{**txn.__dict__, "txn_id": txn_id})


def _apply_in_order(
    candidates: list[Transaction],
) -> tuple[list[Transaction], list[tuple[Transaction, Decimal]]]:
    """Replay each account's lines in time order; disposals beyond the holding are refused."""
    held: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    accepted, oversold = [], []
    for txn in sorted(candidates, key=lambda t: (t.executed_at, t.line)):
        key = (txn.account, txn.symbol)
        if txn.side in DISPOSE and txn.quantity > held[key] + _TOLERANCE:
            oversold.append((txn, held[key]))
            continue
        held[key] += txn.signed_quantity
        accepted.append(txn)
    return accepted, oversold


def _fmt(number: Decimal) -> str:
    text = format(number.normalize(), "f")
    return text if text != "-0" else "0"
