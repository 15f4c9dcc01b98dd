"""The one canonical form of a symbol key, and the one place that validates it.

A symbol key becomes a Dagster dynamic partition and half of every multi-partition key
(``2024-03-01|BTC-USDT``), so it must never contain what Dagster uses as separators (``|`` between
dimensions, ``,`` between keys, ``...`` in ranges) nor anything a person cannot see or type.
"""

from __future__ import annotations

import re

MAX_SYMBOL_LENGTH = 32

# Letters, digits and the punctuation real tickers use: BTC-USDT, BRK.B, EURUSD=X, GC=F, ^GSPC.
_ALLOWED = re.compile(r"^[A-Z0-9^][A-Z0-9.\-=^_]*$")


class InvalidSymbolError(ValueError):
    """A symbol key that cannot become a partition key."""


def canonical_symbol(raw: object) -> str:
    """Return the canonical key for ``raw`` or raise :class:`InvalidSymbolError` saying why.

    Canonical means upper case, with an exchange-style pair ``btc/usdt`` written ``BTC-USDT``.
    Nothing else is rewritten: a key with whitespace or a separator is refused, not repaired,
    because a silently repaired key would name a different partition than the one asked for.
    """
    if not isinstance(raw, str):
        raise InvalidSymbolError(f"symbol must be a string, got {type(raw).__name__}")
    if raw == "":
        raise InvalidSymbolError("symbol is empty")
    if any(ch.isspace() for ch in raw):
        raise InvalidSymbolError(f"symbol {raw!r} contains whitespace")
    for forbidden, why in (
        ("|", "separates partition dimensions"),
        (",", "separates partition keys"),
    ):
        if forbidden in raw:
            raise InvalidSymbolError(
                f"symbol {raw!r} contains {forbidden!r}, which {why} in Dagster"
            )
    if ".." in raw:
        raise InvalidSymbolError(
            f"symbol {raw!r} contains '..'; '...' marks partition ranges in Dagster"
        )
    if len(raw) > MAX_SYMBOL_LENGTH:
        raise InvalidSymbolError(
            f"symbol {raw[:40]!r}... is {len(raw)} characters long; the limit is {MAX_SYMBOL_LENGTH}"
        )
    key = raw.upper().replace("/", "-")
    if not _ALLOWED.match(key):
        bad = sorted({ch for ch in key if not re.match(r"[A-Z0-9.\-=^_]", ch)})
        detail = f"characters {''.join(bad)!r}" if bad else "a leading punctuation mark"
        raise InvalidSymbolError(
            f"symbol {raw!r} has {detail}; allowed are A-Z, 0-9 and . - = ^ _ "
            "(and / between the two halves of a pair)"
        )
    return key


def canonical_symbols(raw: list[str] | tuple[str, ...]) -> list[str]:
    """Validate several keys; the error names every bad one, not just the first."""
    keys, errors = [], []
    for item in raw:
        try:
            keys.append(canonical_symbol(item))
        except InvalidSymbolError as exc:
            errors.append(str(exc))
    if errors:
        raise InvalidSymbolError("; ".join(errors))
    return list(dict.fromkeys(keys))
