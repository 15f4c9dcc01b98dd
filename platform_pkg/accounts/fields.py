"""Validating the fields of one ``[[exchange]]`` or ``[[wallet]]`` table of the accounts file.

Every problem becomes an :class:`~platform_pkg.accounts.model.AccountError` naming the file, line,
account and field; a value that may be a secret (a misplaced key, a private key) is never shown.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from urllib.parse import urlsplit

from platform_pkg.accounts.model import (
    DEBANK_CHAINS,
    DEBANK_KEY_ENV,
    DEMO,
    KINDS,
    PAGING_MODES,
    WALLET_SOURCES,
    AccountError,
    ExchangeAccount,
    WalletAccount,
)
from platform_pkg.catalog.lookup import StoredCatalogue
from platform_pkg.market.catalogue import asset_class_of
from platform_pkg.symbols import InvalidSymbolError, canonical_symbol

# Common chain names people write instead of DeBank's ids; used only to suggest, never to accept.
_CHAIN_NAMES = {
    "ethereum": "eth", "mainnet": "eth", "bnb": "bsc", "binance": "bsc", "gnosis": "xdai",
    "polygon": "matic", "fantom": "ftm", "avalanche": "avax", "optimism": "op",
    "arbitrum": "arb", "cronos": "cro", "moonriver": "movr", "harmony": "hmy", "klaytn": "klay",
    "zksync": "era", "scroll": "scrl", "mantle": "mnt", "ronin": "ron", "unichain": "uni",
    "berachain": "bera", "abstract": "abs",
}  # fmt: skip

# Names become Dagster partition keys and the first half of "<account>:<symbol>" ids.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")

_PRIVATE_KEY = re.compile(r"^(0x)?[0-9a-fA-F]{64}$")

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True)
class Checks:
    known_exchange: Callable[[str], bool]
    environ: Mapping[str, str]
    known_chain: Callable[[str], bool] | None
    debank_key_set: bool | None
    exchange_ids: Sequence[str] | None
    # The warehouse's asset catalogue, read only if a market needs it and only if no writer holds
    # the file (a sensor tick must not wait): a market it does not list for the account's
    # exchange is refused with close matches; without it, markets are checked for form only.
    catalogue: StoredCatalogue = field(default_factory=lambda: StoredCatalogue(wait_seconds=0))


_ANY_HEADER = re.compile(r"""^\s*\[\[?\s*[\w."' -]+\s*\]\]?\s*(#.*)?$""")
_ACCOUNT_HEADER = re.compile(r"""^\s*\[\[\s*["']?(exchange|wallet)["']?\s*\]\]\s*(#.*)?$""")


class Layout:
    """Where tables and keys sit in the text; tomllib keeps no positions, so the lines are scanned."""

    def __init__(self, lines: list[str]):
        self.lines = lines
        self.table_starts = [n for n, text in enumerate(lines, 1) if _ANY_HEADER.match(text)]
        self.headers: dict[str, list[int]] = {kind: [] for kind in KINDS}
        for n, text in enumerate(lines, 1):
            if match := _ACCOUNT_HEADER.match(text):
                self.headers[match.group(1)].append(n)

    def key_line(self, key: str) -> int | None:
        """The first line that assigns ``key`` or opens a table named by it."""
        quoted = rf"""(?:{re.escape(key)}|"{re.escape(key)}"|'{re.escape(key)}')"""
        pattern = re.compile(rf"^\s*(?:{quoted}\s*[=.]|\[\[?\s*{quoted}\s*[\].])")
        return next((n for n, t in enumerate(self.lines, 1) if pattern.match(t)), None)

    def field_line(self, start: int, key: str) -> int | None:
        """The line of ``key = ...`` inside the table whose header is on line ``start``."""
        end = next((n for n in self.table_starts if n > start), len(self.lines) + 1)
        quoted = rf"""(?:{re.escape(key)}|"{re.escape(key)}"|'{re.escape(key)}')"""
        pattern = re.compile(rf"^\s*{quoted}\s*=")
        return next((n for n in range(start + 1, end) if pattern.match(self.lines[n - 1])), None)


class Table:
    """One ``[[exchange]]`` or ``[[wallet]]`` table being validated, and the errors found in it."""

    def __init__(self, path: Path, kind: str, values: dict, layout: Layout, line: int | None):
        self.path, self.kind, self.values, self.layout, self.line = path, kind, values, layout, line
        self.name: str | None = None
        self.errors: list[AccountError] = []
        self.header = line is not None and line in layout.headers[kind]

    def error(self, key: str, message: str) -> None:
        line = self.layout.field_line(self.line, key) if self.header else None
        self.errors.append(
            AccountError(self.path, line or self.line, self.name, key, message, self.kind)
        )

    def string(self, key: str, *, required: bool = False) -> str | None:
        value = self.values.get(key)
        if value is None:
            if required:
                self.error(key, "is required")
            return None
        if not isinstance(value, str):
            self.error(key, f"must be a string, got {_type_name(value)}")
            return None
        if not value.strip():
            self.error(key, "is empty" + ("" if required else "; remove the field instead"))
            return None
        return value

    def strings(self, key: str, example: str) -> list[str] | None:
        value = self.values.get(key)
        if value is None:
            return None
        if not isinstance(value, list):
            self.error(key, f"must be an array of strings like {example}, got {_type_name(value)}")
            return None
        wrong = [
            f"item {i} is {_type_name(v)}" for i, v in enumerate(value, 1) if not isinstance(v, str)
        ]
        if wrong:
            self.error(key, f"must be an array of strings like {example}; {', '.join(wrong)}")
            return None
        return value


def name_of(table: Table) -> str | None:
    name = table.string("name", required=True)
    if name is None:
        return None
    if not _NAME.match(name):
        table.error(
            "name",
            f"{_show(name)} is not an account name: 1-64 letters, digits or _ . @ -, starting "
            "with a letter or digit (it becomes a Dagster partition key)",
        )
        return None
    if ".." in name:
        table.error("name", f"{name!r} contains '..', which marks partition ranges in Dagster")
        return None
    return name


def exchange_account(table: Table, checks: Checks) -> ExchangeAccount | None:
    _unknown_fields(table)
    exchange = table.string("exchange", required=True)
    if exchange is not None and exchange != DEMO and not checks.known_exchange(exchange):
        close = difflib.get_close_matches(exchange.lower(), checks.exchange_ids or (), n=3)
        hint = f"; did you mean {_either(close)}?" if close else ""
        table.error("exchange", f"unknown ccxt exchange id {_show(exchange)}{hint}")
    demo = exchange == DEMO
    api_key_env = _env_name(table, "api_key_env", checks.environ, required=not demo)
    secret_env = _env_name(table, "secret_env", checks.environ, required=not demo)
    password_env = _env_name(table, "password_env", checks.environ, required=False)
    paging = table.string("paging") or "auto"
    if paging not in PAGING_MODES:
        table.error("paging", f"{_show(paging)} is not one of {_either(PAGING_MODES)}")
    markets = _markets(table, checks, None if demo else exchange)
    api_url, history_from = _api_url(table), _history_from(table)
    if table.errors or exchange is None or table.name is None:
        return None
    return ExchangeAccount(
        name=table.name,
        exchange=exchange,
        api_key_env=api_key_env,
        secret_env=secret_env,
        password_env=password_env,
        markets=markets,
        api_url=api_url,
        history_from=history_from,
        paging=paging,
        line=table.line or 0,
    )


def wallet_account(table: Table, checks: Checks) -> WalletAccount | None:
    _unknown_fields(table)
    address = _address(table)
    chains, history_from = _chains(table, checks), _history_from(table)
    source = table.string("source") or "debank"
    if source not in WALLET_SOURCES:
        table.error("source", f"{_show(source)} is not one of {_either(WALLET_SOURCES)}")
    elif source == "debank" and checks.debank_key_set is False:
        table.error("access key", f"{DEBANK_KEY_ENV} is not set (DeBank wallets need it)")
    if table.errors or address is None or table.name is None:
        return None
    return WalletAccount(
        name=table.name,
        address=address,
        chains=chains,
        history_from=history_from,
        source=source,
        line=table.line or 0,
    )


def _unknown_fields(table: Table) -> None:
    allowed = KINDS[table.kind]
    for key in table.values:
        if key in allowed:
            continue
        # Never echo the value: a misnamed field may hold the secret itself (api_key = "...").
        close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.5)
        if table.kind == "exchange" and not close and re.search("key|secret|pass", key, re.I):
            close = ["api_key_env", "secret_env", "password_env"]
        hint = f"; did you mean {_either(close)}?" if close else f"; known: {', '.join(allowed)}"
        table.error(key, f"unknown field {key!r}{hint}")


def _env_name(table: Table, key: str, environ: Mapping[str, str], *, required: bool) -> str | None:
    var = table.string(key, required=required)
    if var is None:
        return None
    # A value that is not a variable name is likely the secret itself, so it is never shown.
    if not _ENV_NAME.match(var) or _looks_like_secret(var):
        table.error(
            key,
            "must be the NAME of an environment variable that holds the secret (letters, digits "
            "and _), not the secret itself",
        )
        return None
    value = environ.get(var)
    if value is None:
        table.error(key, f"environment variable {var} is not set")
    elif not value.strip():
        table.error(key, f"environment variable {var} is empty")
    return var


def _looks_like_secret(var: str) -> bool:
    """API keys are long digit-bearing runs without underscores; variable names rarely are."""
    return len(var) >= 20 and "_" not in var and any(ch.isdigit() for ch in var)


def _markets(table: Table, checks: Checks, exchange: str | None) -> tuple[str, ...] | None:
    items = table.strings("markets", '["BTC-USDT"]')
    if items is None:
        return None
    if not items:
        table.error("markets", "is empty; remove the field to sync every held or tracked market")
        return None
    keys = []
    for item in items:
        try:
            key = canonical_symbol(item)
        except InvalidSymbolError as exc:
            table.error("markets", f"market {_show(item)}: {exc}")
            continue
        if asset_class_of(key) != "crypto":
            hint = checks.catalogue.hint(key)
            table.error(
                "markets",
                f"market {_show(item)} is not a crypto pair like BTC-USDT (BASE-QUOTE){hint}",
            )
            continue
        unlisted = checks.catalogue.unlisted_market(exchange, key) if exchange else None
        if unlisted:
            table.error("markets", f"market {_show(item)}: {unlisted}")
            continue
        keys.append(key)
    return tuple(dict.fromkeys(keys))


def _api_url(table: Table) -> str | None:
    raw = table.string("api_url")
    if raw is None:
        return None
    try:
        parts = urlsplit(raw)
        host = parts.hostname
    except ValueError:
        parts, host = None, None
    if parts is not None and "@" in parts.netloc:
        # Checked first and never shown: the user part may be a password.
        table.error("api_url", "must not contain a user or password; name variables instead")
        return None
    if parts is None or parts.scheme not in ("http", "https") or not host or " " in raw.strip():
        table.error("api_url", f"{_show(raw)} is not an http:// or https:// URL with a host")
        return None
    return raw.strip().rstrip("/")


def _history_from(table: Table) -> date | None:
    value = table.values.get("history_from")
    if value is None:
        return None
    if isinstance(value, datetime):
        table.error("history_from", "must be a date like 2021-01-01, not a date and time")
        return None
    if isinstance(value, date):
        return value
    if isinstance(value, str) and _DATE.match(value.strip()):
        try:
            return date.fromisoformat(value.strip())
        except ValueError as exc:
            table.error("history_from", f"{_show(value)} is not a valid date: {exc}")
            return None
    got = _show(value) if isinstance(value, str) else _type_name(value)
    table.error("history_from", f"must be a date like 2021-01-01, got {got}")
    return None


def _address(table: Table) -> str | None:
    raw = table.string("address", required=True)
    if raw is None:
        return None
    value = raw.strip()
    if _ADDRESS.match(value):
        return value.lower()
    if _PRIVATE_KEY.match(value):
        table.error(
            "address",
            "looks like a private key (64 hex digits), not an address; never put keys in this "
            "file, and treat this key as exposed",
        )
    elif len(value) > 50 or len(value.split()) > 1:
        table.error(
            "address", f"is not an address (0x and 40 hex digits); it is {len(value)} characters"
        )
    else:
        table.error("address", f"{value!r} is not an address: 0x followed by 40 hex digits")
    return None


def _chains(table: Table, checks: Checks) -> tuple[str, ...] | None:
    items = table.strings("chains", '["eth", "arb"]')
    if items is None:
        return None
    if not items:
        table.error("chains", "is empty; remove the field to use every chain DeBank serves")
        return None
    known = checks.known_chain or DEBANK_CHAINS.__contains__
    chains = []
    for item in items:
        chain = item.strip().lower()
        if not known(chain):
            close = [_CHAIN_NAMES[chain]] if chain in _CHAIN_NAMES else []
            close += difflib.get_close_matches(chain, DEBANK_CHAINS, n=3)
            close = list(dict.fromkeys(close))[:3]
            hint = (
                f"; did you mean {_either(close)}?"
                if close
                else "; DeBank ids are short names such as eth, bsc, arb, op, base, matic"
            )
            table.error("chains", f"unknown DeBank chain id {_show(item)}{hint}")
            continue
        chains.append(chain)
    return tuple(dict.fromkeys(chains))


def _type_name(value: object) -> str:
    for kind, name in (
        (bool, "a boolean"),
        (int, "an integer"),
        (float, "a float"),
        (str, "a string"),
        (list, "an array"),
        (dict, "a table"),
        (datetime, "a date and time"),
        (date, "a date"),
        (time, "a time"),
    ):
        if isinstance(value, kind):
            return name
    return type(value).__name__


def _show(value: str) -> str:
    return repr(value) if len(value) <= 60 else repr(value[:57] + "...")


def _either(options: Sequence[str]) -> str:
    quoted = [repr(o) for o in options]
    return quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"
