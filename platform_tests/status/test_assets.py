"""platform_status materialised: its figures as numeric metadata and the Markdown summary."""

from __future__ import annotations

import os

import dagster as dg

from platform_pkg.status.assets import platform_status
from platform_tests.conftest import resources_for
from platform_tests.status.test_instance import failing


def test_the_figures_are_plottable_metadata(instance, known_warehouse):
    instance.report_run_failed(instance.create_run_for_job(failing))
    result = dg.materialize(
        [platform_status], instance=instance, resources=resources_for(known_warehouse)
    )
    assert result.success
    (event,) = result.asset_materializations_for_node("platform_status")
    meta = event.metadata
    plotted = {name: value.value for name, value in meta.items() if name != "summary"}
    assert all(
        isinstance(meta[name], dg.IntMetadataValue | dg.FloatMetadataValue) for name in plotted
    )
    # The market clock (frozen at the known warehouse's now) judges the candles.
    assert (plotted["stale_symbols"], plotted["tracked_active"]) == (4, 4)
    assert (plotted["failed_runs_24h"], plotted["untracked_partitions"]) == (1, 3)
    assert plotted["deferred_fetches"] == 3 and plotted["budget_blocked"] == 1
    assert plotted["warehouse_bytes"] == os.path.getsize(known_warehouse)
    assert plotted["instance_bytes"] > 0
    assert isinstance(meta["units_saved_7d"], dg.FloatMetadataValue)
    assert "marked as failed" in meta["summary"].value
    assert "#### Freshness" in meta["summary"].value
