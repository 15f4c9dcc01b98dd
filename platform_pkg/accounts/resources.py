"""The accounts file as a resource: read and validated when a run or a sensor asks for it."""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from pathlib import Path

import dagster as dg
from pydantic import Field

from platform_pkg.accounts.config import (
    accounts_path,
    ccxt_exchange_ids,
    ccxt_exchange_known,
    read_accounts,
)
from platform_pkg.accounts.model import DEBANK_KEY_ENV, AccountError, AccountsFile


class AccountProblem(Exception):
    """An account cannot be synced as configured (found at run time: a variable unset since the
    file was read, a market the exchange does not list)."""

    def __init__(self, error: AccountError):
        super().__init__(str(error))
        self.error = error


class Accounts(dg.ConfigurableResource):
    """The user's exchange accounts and wallets: a TOML file (see data/demo/README.md)."""

    path: str | None = Field(
        default=None,
        description="The accounts file. Default: $PLATFORM_ACCOUNTS, else data/accounts.toml "
        "(relative paths are taken from the project root; scripts/dev.sh seeds it from "
        "data/demo/accounts.toml when missing).",
    )

    def resolved_path(self) -> Path:
        return accounts_path(self.path)

    def load(self) -> AccountsFile | None:
        """The file's valid accounts and its errors now, or None when there is no file."""
        return read_accounts(
            self.resolved_path(),
            known_exchange=ccxt_exchange_known,
            exchange_ids=_ExchangeIds(),
            environ=os.environ,
            debank_key_set=bool(os.environ.get(DEBANK_KEY_ENV)),
        )


class _ExchangeIds(Sequence[str]):
    """ccxt's exchange ids, imported only if a suggestion is needed (ccxt takes ~0.4 s)."""

    @functools.cached_property
    def _ids(self) -> tuple[str, ...]:
        return ccxt_exchange_ids()

    def __getitem__(self, index):  # type: ignore[override]
        return self._ids[index]

    def __len__(self) -> int:
        return len(self._ids)
