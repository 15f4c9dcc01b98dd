"""The status schedule: one run an hour, none stacked on one in flight; registered."""

from datetime import UTC, datetime

import dagster as dg

from platform_pkg.runs import SCHEDULE_TAG
from platform_pkg.status.schedules import platform_status_refresh

TICK = datetime(2026, 11, 24, 10, 45, tzinfo=UTC)


def evaluate(instance):
    with dg.build_schedule_context(instance=instance, scheduled_execution_time=TICK) as context:
        return platform_status_refresh.evaluate_tick(context)


def test_a_tick_asks_for_one_run_and_skips_while_one_is_in_flight(instance):
    (request,) = evaluate(instance).run_requests
    assert request.run_key == "platform_status_refresh:2026-11-24T10:45"
    instance.add_run(
        dg.DagsterRun(
            job_name="platform_status_job",
            run_id="0" * 36,
            status=dg.DagsterRunStatus.STARTED,
            tags={SCHEDULE_TAG: "platform_status_refresh"},
        )
    )
    assert "is still STARTED" in evaluate(instance).skip_message


def test_the_asset_job_and_schedule_are_in_the_code_location():
    from platform_pkg.definitions import defs

    asset = defs.resolve_assets_def("platform_status")
    assert asset.group_names_by_key[dg.AssetKey("platform_status")] == "platform"
    job = defs.resolve_job_def("platform_status_job")
    assert [k.to_user_string() for k in job.asset_layer.executable_asset_keys] == [
        "platform_status"
    ]
    schedule = defs.resolve_schedule_def("platform_status_refresh")
    assert (schedule.cron_schedule, schedule.job_name) == ("5 * * * *", "platform_status_job")
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
