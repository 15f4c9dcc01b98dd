"""The nightly pruning schedule: one run a night, none stacked on one still in flight."""

from datetime import UTC, datetime

import dagster as dg

from platform_pkg.housekeeping.schedules import daily_prune
from platform_pkg.runs import SCHEDULE_TAG

NIGHT = datetime(2026, 11, 24, 3, 20, tzinfo=UTC)


def evaluate(instance):
    with dg.build_schedule_context(instance=instance, scheduled_execution_time=NIGHT) as context:
        return daily_prune.evaluate_tick(context)


def test_a_night_asks_for_one_pruning_run(instance):
    (request,) = evaluate(instance).run_requests
    assert request.run_key == "daily_prune:2026-11-24T03:20"
    assert request.tags[SCHEDULE_TAG] == "daily_prune"


def test_a_pruning_still_running_is_not_stacked(instance):
    instance.add_run(
        dg.DagsterRun(
            job_name="prune_runs",
            run_id="0" * 36,
            status=dg.DagsterRunStatus.STARTED,
            tags={SCHEDULE_TAG: "daily_prune"},
        )
    )
    result = evaluate(instance)
    assert result.run_requests == []
    assert "is still STARTED" in result.skip_message
