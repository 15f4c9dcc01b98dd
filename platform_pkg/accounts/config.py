"""The accounts file: the exchange accounts and wallets a user syncs, read and validated.

Users list accounts as ``[[exchange]]`` and ``[[wallet]]`` tables in a TOML file. The file names
environment variables, never secrets, so nothing parsed here holds a key. Validation never drops
an account silently: each one is either valid or rejected with :class:`AccountError`\\ s naming the
file, line, account and field, and the valid accounts are kept when others are bad.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib
import os
import re
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from urllib.parse import urlsplit

from platform_pkg.market.catalogue import asset_class_of
from platform_pkg.symbols import InvalidSymbolError, canonical_symbol
from platform_pkg.warehouse.connection import PROJECT_ROOT

ACCOUNTS_ENV = "PLATFORM_ACCOUNTS"
DEFAULT_ACCOUNTS = PROJECT_ROOT / "data" / "accounts.toml"
DEBANK_KEY_ENV = "PLATFORM_DEBANK_ACCESS_KEY"
DEMO = "demo"
PAGING_MODES = ("auto", "id", "time")
WALLET_SOURCES = ("debank", DEMO)
EXCHANGE_FIELDS = (
    "name", "exchange", "api_key_env", "secret_env", "password_env", "markets", "api_url",
    "history_from", "paging",
)  # fmt: skip
WALLET_FIELDS = ("name", "address", "chains", "history_from", "source")
KINDS = {"exchange": EXCHANGE_FIELDS, "wallet": WALLET_FIELDS}

# Chain ids as DeBank's API spells them (``/v1/chain/list``).
DEBANK_CHAINS = (
    "eth", "bsc", "xdai", "matic", "ftm", "okt", "heco", "avax", "op", "arb", "celo", "movr",
    "cro", "boba", "metis", "btt", "aurora", "mobm", "sbch", "fuse", "hmy", "klay", "astar", "wan",
    "iotx", "rsk", "kcc", "palm", "nova", "canto", "doge", "kava", "step", "mada", "cfx", "brise",
    "ckb", "tlos", "rose", "evmos", "dfk", "wemix", "oas", "core", "era", "linea", "base", "mnt",
    "opbnb", "zora", "manta", "scrl", "blast", "mode", "merlin", "taiko", "xlayer", "bob", "ron",
    "sonic", "abs", "uni", "ink", "bera", "hyper",
)  # fmt: skip
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
_DECODE_AT = re.compile(r"\s*\(at line (\d+), column (\d+)\)$")
_ANY_HEADER = re.compile(r"""^\s*\[\[?\s*[\w."' -]+\s*\]\]?\s*(#.*)?$""")
_ACCOUNT_HEADER = re.compile(r"""^\s*\[\[\s*["']?(exchange|wallet)["']?\s*\]\]\s*(#.*)?$""")


@dataclass(frozen=True)
class AccountError:
    """Why an account (or the whole file) was rejected; names variables, never their values."""

    path: Path
    line: int | None
    account: str | None
    field: str | None
    message: str
    kind: str | None = None  # "exchange" or "wallet"

    def __str__(self) -> str:
        parts = [_display(self.path)]
        if self.line:
            parts.append(f"line {self.line}")
        if self.kind:
            parts.append(f"{self.kind} account" + (f" {self.account!r}" if self.account else ""))
        if self.field:
            parts.append(f"field {self.field!r}")
        return f"{', '.join(parts)}: {self.message}"


@dataclass(frozen=True)
class ExchangeAccount:
    """An account at a ccxt exchange (or the offline demo exchange) whose trades are synced."""

    name: str
    exchange: str
    api_key_env: str | None = None
    secret_env: str | None = None
    password_env: str | None = None
    markets: tuple[str, ...] | None = None  # None: every held or tracked market
    api_url: str | None = None
    history_from: date | None = None
    paging: str = "auto"
    line: int = 0

    @property
    def is_demo(self) -> bool:
        return self.exchange == DEMO

    def credentials(self, environ: Mapping[str, str]) -> tuple[str | None, str | None, str | None]:
        """``(api key, secret, password)`` read from ``environ`` now; None where none is named."""

        def read(var: str | None) -> str | None:
            return (environ.get(var) or None) if var else None

        return read(self.api_key_env), read(self.secret_env), read(self.password_env)


@dataclass(frozen=True)
class WalletAccount:
    """An on-chain address whose balances and history are read from DeBank (or the demo)."""

    name: str
    address: str  # lower case
    chains: tuple[str, ...] | None = None  # None: every chain DeBank serves
    history_from: date | None = None
    source: str = "debank"
    line: int = 0

    @property
    def is_demo(self) -> bool:
        return self.source == DEMO


@dataclass(frozen=True)
class AccountsFile:
    """The valid accounts of one file plus every error; ``digest`` changes when the file does."""

    path: Path
    digest: str
    exchanges: list[ExchangeAccount] = field(default_factory=list)
    wallets: list[WalletAccount] = field(default_factory=list)
    errors: list[AccountError] = field(default_factory=list)

    def exchange(self, name: str) -> ExchangeAccount | None:
        return next((a for a in self.exchanges if a.name == name), None)

    def wallet(self, name: str) -> WalletAccount | None:
        return next((a for a in self.wallets if a.name == name), None)

    @property
    def names(self) -> tuple[str, ...]:
        """Every valid account's name, exchanges first."""
        return tuple(a.name for a in [*self.exchanges, *self.wallets])


def accounts_path(configured: str | None = None) -> Path:
    """The accounts file: ``configured``, else ``$PLATFORM_ACCOUNTS``, else ``data/accounts.toml``.

    Relative paths are taken from the project root, as for the warehouse.
    """
    raw = configured or os.environ.get(ACCOUNTS_ENV) or str(DEFAULT_ACCOUNTS)
    path = Path(raw).expanduser()
    return path if path.is_absolute() else PROJECT_ROOT / path


def ccxt_exchange_ids() -> tuple[str, ...]:
    """Every exchange id ccxt knows; ccxt is imported here, not with this module (it is slow)."""
    return tuple(importlib.import_module("ccxt").exchanges)


def ccxt_exchange_known(exchange_id: str) -> bool:
    return exchange_id in ccxt_exchange_ids()


def read_accounts(path: Path, **checks) -> AccountsFile | None:
    """Parse the file at ``path`` (keywords as :func:`parse_accounts`); None when it is absent."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        error = AccountError(path, None, None, None, f"cannot read the file: {exc.strerror}")
        return AccountsFile(path, hashlib.sha256(b"").hexdigest(), errors=[error])
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        error = AccountError(path, None, None, None, "the file is not UTF-8 text")
        return AccountsFile(path, hashlib.sha256(data).hexdigest(), errors=[error])
    return parse_accounts(text, path, **checks)


def parse_accounts(
    text: str,
    path: Path,
    *,
    known_exchange: Callable[[str], bool],
    environ: Mapping[str, str],
    known_chain: Callable[[str], bool] | None = None,
    debank_key_set: bool | None = None,
    exchange_ids: Sequence[str] | None = None,
) -> AccountsFile:
    """Validate the TOML ``text`` of the accounts file at ``path``.

    ``environ`` must hold every variable an exchange names; ``known_chain`` defaults to
    membership in :data:`DEBANK_CHAINS`; ``debank_key_set=False`` rejects DeBank wallets (None
    skips that check); ``exchange_ids`` feeds "did you mean" suggestions for exchange ids.
    """
    result = AccountsFile(path, hashlib.sha256(text.encode("utf-8")).hexdigest())
    try:
        # Windows editors may start the file with a byte order mark, which TOML does not allow.
        data = tomllib.loads(text.removeprefix("\ufeff"))
    except tomllib.TOMLDecodeError as exc:
        result.errors.append(_syntax_error(exc, text, path))
        return result
    layout = _Layout(text.splitlines())
    tables: list[_Table] = []
    for key, value in data.items():
        line = layout.key_line(key)
        if key not in KINDS:
            why = f"unknown top-level key {key!r}; accounts go under [[exchange]] or [[wallet]]"
            result.errors.append(AccountError(path, line, None, None, why))
        elif not isinstance(value, list) or not all(isinstance(t, dict) for t in value):
            why = f"{key!r} must be an array of tables: start each account with a [[{key}]] line"
            result.errors.append(AccountError(path, line, None, None, why))
        else:
            starts = layout.headers[key]
            for i, values in enumerate(value):
                start = starts[i] if len(starts) == len(value) else None
                tables.append(_Table(path, key, values, layout, start or line))
    checks = _Checks(known_exchange, environ, known_chain, debank_key_set, exchange_ids)
    owners: dict[str, _Table] = {}
    # In file order, so the account written first keeps a shared name.
    for table in sorted(tables, key=lambda t: t.line or 0):
        table.name = _name(table)
        if table.name is not None:
            first = owners.setdefault(table.name, table)
            if first is not table:
                where = f" on line {first.line}" if first.line else ""
                table.error(
                    "name", f"{table.name!r} is already used by the {first.kind} account{where}"
                )
        account = _exchange(table, checks) if table.kind == "exchange" else _wallet(table, checks)
        if table.errors:
            result.errors.extend(table.errors)
        elif isinstance(account, ExchangeAccount):
            result.exchanges.append(account)
        else:
            result.wallets.append(account)
    result.errors.sort(key=lambda e: e.line or 0)
    return result


@dataclass(frozen=True)
class _Checks:
    known_exchange: Callable[[str], bool]
    environ: Mapping[str, str]
    known_chain: Callable[[str], bool] | None
    debank_key_set: bool | None
    exchange_ids: Sequence[str] | None


class _Layout:
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


class _Table:
    """One ``[[exchange]]`` or ``[[wallet]]`` table being validated, and the errors found in it."""

    def __init__(self, path: Path, kind: str, values: dict, layout: _Layout, line: int | None):
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


def _name(table: _Table) -> str | None:
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


def _exchange(table: _Table, checks: _Checks) -> ExchangeAccount | None:
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
    markets, api_url, history_from = _markets(table), _api_url(table), _history_from(table)
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


def _wallet(table: _Table, checks: _Checks) -> WalletAccount | None:
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


def _unknown_fields(table: _Table) -> None:
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


def _env_name(table: _Table, key: str, environ: Mapping[str, str], *, required: bool) -> str | None:
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


def _markets(table: _Table) -> tuple[str, ...] | None:
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
            table.error(
                "markets", f"market {_show(item)} is not a crypto pair like BTC-USDT (BASE-QUOTE)"
            )
            continue
        keys.append(key)
    return tuple(dict.fromkeys(keys))


def _api_url(table: _Table) -> str | None:
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


def _history_from(table: _Table) -> date | None:
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


def _address(table: _Table) -> str | None:
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


def _chains(table: _Table, checks: _Checks) -> tuple[str, ...] | None:
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


def _syntax_error(exc: tomllib.TOMLDecodeError, text: str, path: Path) -> AccountError:
    message = str(exc)
    if match := _DECODE_AT.search(message):
        line = int(match.group(1))
        message = f"{message[: match.start()]} (column {match.group(2)})"
    else:
        line = max(len(text.splitlines()), 1) if "end of document" in message else None
        message = message.replace(" (at end of document)", " at the end of the file")
    return AccountError(path, line, None, None, f"not valid TOML: {message}")


def _display(path: Path) -> str:
    """The path as a user wrote it: relative to the project root when it lies inside it."""
    try:
        return str(path.relative_to(PROJECT_ROOT)) if path.is_absolute() else str(path)
    except ValueError:
        return str(path)


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
