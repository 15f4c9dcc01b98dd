"""The weekly catalogue refresh: Mondays 04:10 UTC, running by default, one run at a time."""

from datetime import UTC, datetime

import dagster as dg

from platform_pkg.catalog.schedules import catalog_job, catalog_refresh
from platform_pkg.runs import SCHEDULE_TAG

MONDAY = datetime(2026, 11, 23, 4, 10, tzinfo=UTC)


def evaluate(instance):
    with dg.build_schedule_context(instance=instance, scheduled_execution_time=MONDAY) as context:
        return catalog_refresh.evaluate_tick(context)


def test_the_code_location_holds_the_asset_its_job_and_schedule():
    from platform_pkg.definitions import defs

    assert defs.resolve_assets_def("asset_catalog").group_names_by_key
    assert defs.resolve_job_def("asset_catalog_job") is not None
    assert defs.resolve_schedule_def("catalog_refresh").job_name == "asset_catalog_job"


def test_the_schedule_refreshes_the_catalogue_weekly():
    assert (catalog_refresh.cron_schedule, catalog_refresh.execution_timezone) == (
        "10 4 * * 1",
        "UTC",
    )
    assert catalog_refresh.default_status == dg.DefaultScheduleStatus.RUNNING
    assert catalog_refresh.job_name == catalog_job.name == "asset_catalog_job"


def test_a_monday_asks_for_one_run_and_none_on_top_of_one_in_flight(instance):
    (request,) = evaluate(instance).run_requests
    assert request.run_key == "catalog_refresh:2026-11-23T04:10"
    assert request.tags[SCHEDULE_TAG] == "catalog_refresh"
    instance.add_run(
        dg.DagsterRun(
            job_name="asset_catalog_job",
            run_id="0" * 36,
            status=dg.DagsterRunStatus.STARTED,
            tags={SCHEDULE_TAG: "catalog_refresh"},
        )
    )
    assert "is still STARTED" in evaluate(instance).skip_message
