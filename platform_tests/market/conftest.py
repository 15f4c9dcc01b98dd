"""Market tests never read the developer's source settings or keys."""

import pytest

from platform_tests.fakes.market import clear_market_env


@pytest.fixture(autouse=True)
def _no_market_env(monkeypatch):
    clear_market_env(monkeypatch)
