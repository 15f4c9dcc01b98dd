"""Market resources pointed at the local fakes, with retry timings short enough for tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from platform_pkg.market.resources import MarketData
from platform_pkg.market.settings import ENV
from platform_tests.conftest import NOW

FAST = {
    "retry_attempts": 4,
    "retry_base_delay": 0.01,
    "retry_max_delay": 0.05,
    "max_cooldown": 1.0,
    "request_timeout": 0.5,
}


def clear_market_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads the developer's source settings or keys."""
    for var, _ in ENV.values():
        monkeypatch.delenv(var, raising=False)


def real_market(tmp_path: Path, now=NOW, **fields) -> MarketData:
    """A :class:`MarketData` with its shared state under ``tmp_path`` and fast retries."""
    values = {"state_dir": str(tmp_path / "sources"), "now": now.isoformat(), **FAST, **fields}
    return MarketData(**values)
