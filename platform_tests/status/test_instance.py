"""Failed runs and their reasons, partitions and size, read from a Dagster instance; and what the
command says when there is no instance to read."""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg

from platform_pkg.market.demo import DEMO_LISTINGS
from platform_pkg.status.instance import home_facts, instance_facts

MARKED = "0f0f0f0f-0000-4000-8000-000000000000"


@dg.op
def fetch():
    raise RuntimeError("the exchange said no")


@dg.job
def failing():
    fetch()


def test_failed_runs_with_the_failed_steps_error(instance):
    failing.execute_in_process(
        instance=instance, raise_on_error=False, tags={"dagster/schedule_name": "daily_close"}
    )
    marked = instance.create_run_for_job(failing, run_id=MARKED)
    instance.report_run_failed(marked)
    assert failing.execute_in_process(instance=instance, raise_on_error=False) is not None
    facts = instance_facts(instance, datetime.now(UTC))
    assert facts.failed_runs_total == 3
    newest, outside, first = facts.failed_runs
    assert (first.job_name, first.trigger) == ("failing", "schedule daily_close")
    assert first.reason == "step fetch: RuntimeError: the exchange said no"
    assert (outside.run_id, outside.trigger) == (MARKED, "manual")
    assert "marked as failed" in outside.reason
    assert first.ended_at <= newest.ended_at <= datetime.now(UTC)
    assert facts.symbol_partitions == tuple(sorted(DEMO_LISTINGS))
    assert facts.instance_bytes > 0 and facts.note is None


def test_without_an_instance_the_status_says_why(tmp_path, monkeypatch):
    now = datetime.now(UTC)
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    assert home_facts(now).note == "DAGSTER_HOME is not set: no Dagster instance to read"
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    (tmp_path / "runs.db").write_bytes(b"x" * 100)
    facts = home_facts(now)
    assert (facts.failed_runs, facts.instance_bytes) == (None, 100)
    assert facts.note == f"no dagster.yaml in {tmp_path}: no instance"
    assert home_facts(now, read_runs=False).note == "runs and partitions not read (--no-runs)"
    (tmp_path / "dagster.yaml").write_text("nonsense: [")
    assert "could not read the instance" in home_facts(now).note
