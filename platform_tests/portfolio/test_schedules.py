"""The nightly valuation schedule: one run a night, none stacked on one still in flight."""

from datetime import UTC, datetime

import dagster as dg

from platform_pkg.portfolio.schedules import portfolio_valuation
from platform_pkg.runs import SCHEDULE_TAG

NIGHT = datetime(2026, 11, 24, 0, 40, tzinfo=UTC)


def evaluate(instance):
    with dg.build_schedule_context(instance=instance, scheduled_execution_time=NIGHT) as context:
        return portfolio_valuation.evaluate_tick(context)


def test_a_night_asks_for_one_valuation_run(instance):
    (request,) = evaluate(instance).run_requests
    assert request.run_key == "portfolio_valuation:2026-11-24T00:40"
    assert request.tags[SCHEDULE_TAG] == "portfolio_valuation"


def test_a_valuation_still_running_is_not_stacked(instance):
    instance.add_run(
        dg.DagsterRun(
            job_name="portfolio_valuation_job",
            run_id="0" * 36,
            status=dg.DagsterRunStatus.STARTED,
            tags={SCHEDULE_TAG: "portfolio_valuation"},
        )
    )
    result = evaluate(instance)
    assert result.run_requests == []
    assert "is still STARTED" in result.skip_message
