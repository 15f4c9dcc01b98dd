"""Market settings: resource field, else environment variable, else default; bad values named."""

from __future__ import annotations

import pytest

from platform_pkg.market.ratelimit import RateLimit
from platform_pkg.market.settings import ENV, resolve
from platform_pkg.warehouse.connection import PROJECT_ROOT


def test_defaults_with_nothing_set():
    s = resolve({}, {})
    assert (s.crypto_source, s.stock_source, s.crypto_fallback) == ("demo", "demo", "coingecko")
    assert s.ccxt_exchange == "binance" and s.ccxt_rate_limit is None  # Binance's own
    assert s.coingecko_rate_limit == RateLimit(30, 60)
    assert s.yahoo_rate_limit == RateLimit(2000, 3600)
    assert s.state_dir == PROJECT_ROOT / "data" / "ratelimit"
    assert s.policy.attempts == 5 and s.policy.max_cooldown == 120 and s.request_timeout == 30


def test_environment_then_field():
    env = {
        "PLATFORM_CRYPTO_SOURCE": "CCXT",
        "PLATFORM_CCXT_EXCHANGE": "kraken",
        "PLATFORM_RATE_LIMIT_DIR": "/tmp/rl",
        "PLATFORM_MAX_COOLDOWN": "5",
        "PLATFORM_CCXT_API_SECRET": "s3cr3t",
    }
    s = resolve({"ccxt_exchange": "bybit"}, env)
    assert s.crypto_source == "ccxt" and s.ccxt_exchange == "bybit"
    assert str(s.state_dir) == "/tmp/rl" and s.policy.max_cooldown == 5
    assert s.ccxt_api_secret == "s3cr3t" and "s3cr3t" not in repr(s)


@pytest.mark.parametrize(
    ("var", "value", "message"),
    [
        ("PLATFORM_CRYPTO_SOURCE", "kraken", "expected one of demo, ccxt, coingecko"),
        ("PLATFORM_STOCK_SOURCE", "ccxt", "expected one of demo, yfinance"),
        ("PLATFORM_COINGECKO_RATE_LIMIT", "fast", "not of the form UNITS/SECONDS"),
        ("PLATFORM_RETRY_ATTEMPTS", "0", "out of range"),
        ("PLATFORM_REQUEST_TIMEOUT", "soon", "is not a number"),
    ],
)
def test_a_bad_value_names_its_variable(var, value, message):
    with pytest.raises(ValueError, match=f"{var}.*{message}"):
        resolve({}, {var: value})


def test_every_variable_is_documented_in_the_readme():
    readme = (PROJECT_ROOT / "README.md").read_text()
    missing = [var for var, _ in ENV.values() if f"`{var}`" not in readme]
    assert missing == []
