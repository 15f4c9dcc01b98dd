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


def test_the_price_checks_are_defined():
    keys = {key.to_user_string() for key in defs.resolve_asset_graph().asset_check_keys}
    names = ("keys", "ohlc", "gaps", "spikes", "freshness")
    assert {f"prices_1h:{n}" for n in names} | {f"prices_1d:{n}" for n in names} <= keys
    assert "prices_1d:cross_source" in keys and "prices_1h:cross_source" not in keys


def test_the_ledger_checks_are_defined():
    keys = {key.to_user_string() for key in defs.resolve_asset_graph().asset_check_keys}
    assert {
        "exchange_trades:unique_key",
        "exchange_trades:is_deleted_not_null",
        "transactions:unique_key",
        "transactions:no_negative_holding",
        "holdings:matches_ledger",
    } <= keys


def test_the_portfolio_valuation_is_defined():
    keys = {key.to_user_string() for key in defs.resolve_asset_graph().get_all_asset_keys()}
    assert {"daily_balances", "portfolio_value"} <= keys
    assert defs.resolve_job_def("portfolio_valuation_job") is not None
    schedule = defs.resolve_schedule_def("portfolio_valuation")
    assert schedule.cron_schedule == "40 0 * * *"
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING


def test_price_assets_are_symbol_by_date_ranged_runs():
    for name in ("prices_1h", "prices_1d"):
        asset = defs.resolve_assets_def(name)
        assert asset.partitions_def.partitions_defs[0].name == "date"
        assert asset.backfill_policy == dg.BackfillPolicy.single_run()


def test_heavy_clients_are_not_imported_with_the_definitions():
    heavy = "{'ccxt', 'yfinance', 'httpx', 'rich', 'matplotlib'}"
    code = f"import sys, platform_pkg.definitions; print(sorted({heavy} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_pruning_job_runs_nightly_and_needs_no_warehouse():
    job = defs.resolve_job_def("prune_runs")
    assert "warehouse" not in job.resource_defs
    schedule = defs.resolve_schedule_def("daily_prune")
    assert (schedule.cron_schedule, schedule.job_name) == ("20 3 * * *", "prune_runs")
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
