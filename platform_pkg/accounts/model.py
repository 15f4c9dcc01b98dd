"""The accounts a user syncs, as the platform holds them once the accounts file is validated.

The file names environment variables, never secrets, so nothing here holds a key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

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
        parts = [display(self.path)]
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


def display(path: Path) -> str:
    """The path as a user wrote it: relative to the project root when it lies inside it."""
    try:
        return str(path.relative_to(PROJECT_ROOT)) if path.is_absolute() else str(path)
    except ValueError:
        return str(path)
