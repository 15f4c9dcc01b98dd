"""The accounts file: the exchange accounts and wallets a user syncs, read and validated.

Users list accounts as ``[[exchange]]`` and ``[[wallet]]`` tables in a TOML file. The file names
environment variables, never secrets, so nothing parsed here holds a key. Validation never drops
an account silently: each one is either valid or rejected with :class:`AccountError`\\ s naming the
file, line, account and field, and the valid accounts are kept when others are bad.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import re
import tomllib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from platform_pkg.accounts.fields import (
    Checks,
    Layout,
    Table,
    exchange_account,
    name_of,
    wallet_account,
)
from platform_pkg.accounts.model import (
    ACCOUNTS_ENV,
    DEFAULT_ACCOUNTS,
    KINDS,
    AccountError,
    AccountsFile,
    ExchangeAccount,
)
from platform_pkg.warehouse.connection import PROJECT_ROOT

_DECODE_AT = re.compile(r"\s*\(at line (\d+), column (\d+)\)$")


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
    layout = Layout(text.splitlines())
    tables: list[Table] = []
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
                tables.append(Table(path, key, values, layout, start or line))
    checks = Checks(known_exchange, environ, known_chain, debank_key_set, exchange_ids)
    owners: dict[str, Table] = {}
    # In file order, so the account written first keeps a shared name.
    for table in sorted(tables, key=lambda t: t.line or 0):
        table.name = name_of(table)
        if table.name is not None:
            first = owners.setdefault(table.name, table)
            if first is not table:
                where = f" on line {first.line}" if first.line else ""
                table.error(
                    "name", f"{table.name!r} is already used by the {first.kind} account{where}"
                )
        account = (
            exchange_account(table, checks)
            if table.kind == "exchange"
            else wallet_account(table, checks)
        )
        if table.errors:
            result.errors.extend(table.errors)
        elif isinstance(account, ExchangeAccount):
            result.exchanges.append(account)
        else:
            result.wallets.append(account)
    result.errors.sort(key=lambda e: e.line or 0)
    return result


def _syntax_error(exc: tomllib.TOMLDecodeError, text: str, path: Path) -> AccountError:
    message = str(exc)
    if match := _DECODE_AT.search(message):
        line = int(match.group(1))
        message = f"{message[: match.start()]} (column {match.group(2)})"
    else:
        line = max(len(text.splitlines()), 1) if "end of document" in message else None
        message = message.replace(" (at end of document)", " at the end of the file")
    return AccountError(path, line, None, None, f"not valid TOML: {message}")
