"""DeBank as a resource: where it is, its access key and the daily units budget, read when a run
builds its source — never at import, never logged."""

from __future__ import annotations

import os

import dagster as dg
from pydantic import Field

from platform_pkg.accounts.model import DEBANK_KEY_ENV, WalletAccount
from platform_pkg.market.demo_wallet import DemoWallet
from platform_pkg.market.ratelimit import RateLimit, SharedTokenBucket, bucket_file
from platform_pkg.market.resources import MarketData
from platform_pkg.market.source import RequestMeter
from platform_pkg.wallets.budget import UnitsBudget
from platform_pkg.wallets.debank import DEFAULT_URL, DebankSource
from platform_pkg.wallets.source import WalletSource

URL_ENV = "PLATFORM_DEBANK_API_URL"
BUDGET_ENV = "PLATFORM_DEBANK_UNITS_BUDGET"
RATE_ENV = "PLATFORM_DEBANK_RATE_LIMIT"
DEFAULT_RATE = "100/1"  # DeBank's published limit: 100 requests a second


class MissingAccessKey(ValueError):
    """A DeBank wallet is synced but no access key is set."""


class Debank(dg.ConfigurableResource):
    """DeBank Cloud's OpenAPI, which serves the wallets' on-chain history for units."""

    api_url: str | None = Field(
        default=None, description=f"Base URL. Default: ${URL_ENV}, else {DEFAULT_URL}."
    )
    access_key: str | None = Field(
        default=None,
        repr=False,
        description=f"The access key, sent only in the AccessKey header. Default: ${DEBANK_KEY_ENV}.",
    )
    units_budget: float | None = Field(
        default=None,
        description=f"Units a UTC day at most; a sync that would pass it stops before the call. "
        f"Default: ${BUDGET_ENV}, else no cap.",
    )
    rate_limit: str | None = Field(
        default=None, description=f"Requests/SECONDS. Default: ${RATE_ENV}, else {DEFAULT_RATE}."
    )
    finality_minutes: int = Field(
        default=60,
        ge=0,
        description="How far behind the newest stored transaction each sync re-reads: a "
        "transaction there may still flip status, arrive late or vanish in a reorganisation.",
    )

    def budget(self, market: MarketData) -> UnitsBudget:
        raw = self.units_budget if self.units_budget is not None else os.environ.get(BUDGET_ENV)
        per_day = None
        if raw not in (None, ""):
            try:
                per_day = float(raw)
            except ValueError:
                raise ValueError(f"{BUDGET_ENV}={raw!r} is not a number of units") from None
            if per_day < 0:
                raise ValueError(f"{BUDGET_ENV}={raw!r} is negative")
        return UnitsBudget(market.settings().state_dir / "debank-units.json", per_day)

    def source(
        self, market: MarketData, wallet: WalletAccount, meter: RequestMeter
    ) -> WalletSource:
        """``wallet``'s history source: the demo, or DeBank with the key read now."""
        if wallet.is_demo:
            return DemoWallet(clock=market.clock(), meter=meter)
        key = self.access_key or os.environ.get(DEBANK_KEY_ENV)
        if not key:
            raise MissingAccessKey(
                f"wallet {wallet.name!r}: {DEBANK_KEY_ENV} is not set (DeBank wallets need it)"
            )
        settings = market.settings()
        limit = RateLimit.parse(self.rate_limit or os.environ.get(RATE_ENV) or DEFAULT_RATE)
        return DebankSource(
            base_url=self.api_url or os.environ.get(URL_ENV) or DEFAULT_URL,
            access_key=key,
            meter=meter,
            bucket=SharedTokenBucket("debank", bucket_file(settings.state_dir, "debank"), limit),
            policy=settings.policy,
            timeout=settings.request_timeout,
        )
