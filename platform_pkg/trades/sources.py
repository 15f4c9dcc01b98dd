"""The trade source of an exchange account: the demo exchange, or a ccxt exchange with the
account's own credentials, read from the environment when the run builds it."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from platform_pkg.accounts.model import AccountError, ExchangeAccount
from platform_pkg.accounts.resources import AccountProblem
from platform_pkg.market.ccxt_source import CcxtSource, default_rate_limit
from platform_pkg.market.demo_exchange import DemoExchange
from platform_pkg.market.ratelimit import RateLimit, SharedTokenBucket, bucket_file
from platform_pkg.market.resources import MarketData
from platform_pkg.market.source import RequestMeter
from platform_pkg.trades.ccxt_trades import CcxtTrades
from platform_pkg.trades.source import TradeSource


def trade_source(
    market: MarketData,
    account: ExchangeAccount,
    meter: RequestMeter,
    *,
    path: Path,
    environ: Mapping[str, str] | None = None,
) -> TradeSource:
    """``account``'s trade source; raises :class:`AccountProblem` for an unset variable."""
    if account.is_demo:
        return DemoExchange(account=account.name, clock=market.clock(), meter=meter)
    env = os.environ if environ is None else environ
    key, secret, password = account.credentials(env)
    for field, var, value in (
        ("api_key_env", account.api_key_env, key),
        ("secret_env", account.secret_env, secret),
        ("password_env", account.password_env, password),
    ):
        if var and not value:
            raise AccountProblem(
                AccountError(
                    path,
                    account.line or None,
                    account.name,
                    field,
                    f"environment variable {var} is not set in the run's environment",
                    "exchange",
                )
            )
    settings = market.settings()
    # PLATFORM_CCXT_RATE_LIMIT is the price exchange's; other exchanges keep their own rate.
    configured = settings.ccxt_rate_limit if account.exchange == settings.ccxt_exchange else None
    limit = RateLimit.parse(configured or default_rate_limit(account.exchange))
    name = f"ccxt-{account.exchange}"
    source = CcxtSource(
        account.exchange,
        clock=market.clock(),
        meter=meter,
        bucket=SharedTokenBucket(name, bucket_file(settings.state_dir, name), limit),
        policy=settings.policy,
        timeout=settings.request_timeout,
        state_dir=settings.state_dir,
        api_url=account.api_url,
        api_key=key,
        api_secret=secret,
        api_password=password,
    )
    return CcxtTrades(source, paging=account.paging)
