"""The code location loads and holds the expected assets, jobs and resources."""

import subprocess
import sys

import dagster as dg

from platform_pkg.definitions import defs


def test_definitions_load_with_the_price_assets():
    keys = {key.to_user_string() for key in defs.resolve_asset_graph().get_all_asset_keys()}
    assert {"prices_1h", "prices_1d"} <= keys
    assert defs.resolve_job_def("prices_job") is not None
    dg.Definitions.validate_loadable(defs)


def test_price_assets_are_symbol_by_date_ranged_runs():
    for name in ("prices_1h", "prices_1d"):
        asset = defs.resolve_assets_def(name)
        assert asset.partitions_def.partitions_defs[0].name == "date"
        assert asset.backfill_policy == dg.BackfillPolicy.single_run()


def test_heavy_clients_are_not_imported_with_the_definitions():
    heavy = "{'ccxt', 'yfinance', 'httpx', 'rich'}"
    code = f"import sys, platform_pkg.definitions; print(sorted({heavy} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
