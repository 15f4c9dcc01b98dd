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


def materialize(instance, path, asset, tags, market, ok=True):
    """Materialise ``asset`` for the partitions ``tags`` name; returns (result, metadata)."""
    import dagster as dg

    from platform_pkg.warehouse.io_manager import run_figures
    from platform_tests.conftest import resources_for

    result = dg.materialize(
        [asset],
        instance=instance,
        resources=resources_for(path, market),
        tags=tags,
        raise_on_error=False,
    )
    assert result.success is ok, [e.message for e in result.all_events if e.is_failure]
    mats = result.asset_materializations_for_node(asset.key.path[-1])
    meta = run_figures(mats)
    return result, meta


def failure_message(result) -> str:
    failure = next(e for e in result.all_events if e.is_step_failure)
    return failure.step_failure_data.error.to_string()


def stored(path, table, symbol):
    import pandas as pd

    from platform_tests.conftest import rows

    cols = ["ts", "open", "high", "low", "close", "volume", "is_final", "source"]
    frame = pd.DataFrame(
        rows(
            path,
            f"SELECT {', '.join(cols)} FROM {table} WHERE symbol = ? ORDER BY ts",
            [symbol],
        ),
        columns=cols,
    )
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
    return frame
