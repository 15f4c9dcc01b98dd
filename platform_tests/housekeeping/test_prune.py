"""Pruning deletes exactly the old recurring runs whose every record a later run replaced."""

import os
from datetime import timedelta

import dagster as dg
import pytest

from platform_pkg.housekeeping.jobs import prune_job
from platform_pkg.housekeeping.prune import Policy, Verdict, prune
from platform_pkg.runs import SCHEDULE_TAG, TRIGGER_TAG

days = dg.StaticPartitionsDefinition(["2026-11-01", "2026-11-02", "2026-11-03"])
SCHEDULED = {SCHEDULE_TAG: "intraday_refresh", "dagster/schedule_name": "intraday_refresh"}
FAIL = {"on": False}


@dg.asset(partitions_def=days)
def candles():
    return None


@dg.asset
def ledger():
    if FAIL["on"]:
        raise RuntimeError("source down")


@dg.asset_check(asset=ledger)
def balanced():
    return dg.AssetCheckResult(passed=True)


def storage(class_name: str, module: str, base_dir) -> dict:
    config = {"base_dir": str(base_dir)}
    return {"event_log_storage": {"module": module, "class": class_name, "config": config}}


@pytest.fixture
def instance(tmp_path):
    """An instance on disk with dagster.yaml's event log: one SQLite shard per run."""
    shards = storage(
        "BatchingSqliteEventLogStorage", "platform_pkg.event_log_storage", tmp_path / "history"
    )
    with dg.instance_for_test(temp_dir=str(tmp_path), overrides=shards) as instance:
        yield instance


def run(instance, assets, partition=None, tags=SCHEDULED) -> str:
    result = dg.materialize(
        assets, partition_key=partition, instance=instance, tags=tags, raise_on_error=False
    )
    return result.run_id


def created(instance, run_id):
    return instance.get_run_record_by_id(run_id).create_timestamp


def later(instance, run_id, days=14):
    """A ``now`` at which ``run_id`` is ``days`` old and every later run younger."""
    return created(instance, run_id) + timedelta(days=days, microseconds=1)


def exists(instance, run_id) -> bool:
    return instance.get_run_by_id(run_id) is not None


def latest_per_partition(instance) -> dict:
    keys = days.get_partition_keys()
    out = {}
    for key in keys:
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=candles.key, asset_partitions=[key]), limit=1
        ).records
        out[key] = records[0].storage_id if records else None
    latest = instance.get_latest_materialization_event(ledger.key)
    out["ledger"] = latest.run_id if latest else None
    return out


def test_an_old_superseded_scheduled_run_is_deleted_with_its_shard(instance):
    old = run(instance, [candles], "2026-11-01")
    run(instance, [candles], "2026-11-01")
    shard = instance.event_log_storage.path_for_shard(old)
    assert os.path.exists(shard)
    report = prune(instance, now=later(instance, old))
    assert report.deleted == [old]
    assert not exists(instance, old)
    assert not os.path.exists(shard)
    assert report.shard_bytes > 100_000  # an almost empty SQLite shard


def test_a_storage_without_shards_prunes_the_same_and_reports_no_shard_bytes(tmp_path):
    one_db = storage(
        "ConsolidatedSqliteEventLogStorage", "dagster._core.storage.event_log", tmp_path / "db"
    )
    with dg.instance_for_test(temp_dir=str(tmp_path), overrides=one_db) as instance:
        old = run(instance, [candles], "2026-11-01")
        kept = run(instance, [candles], "2026-11-01")
        report = prune(instance, now=later(instance, kept))
    assert (report.deleted, [d.run_id for d in report.kept]) == ([old], [kept])
    assert report.shard_bytes is None


def test_the_latest_materialisation_of_a_partition_keeps_its_run(instance):
    ranged = run(instance, [candles], "2026-11-02")
    run(instance, [candles], "2026-11-01")
    report = prune(instance, now=later(instance, ranged, days=30))
    assert report.deleted == []
    (kept, _) = report.kept
    assert (kept.run_id, kept.verdict, kept.detail) == (
        ranged,
        Verdict.LATEST_MATERIALIZATION,
        "candles 2026-11-02",
    )


def test_a_recent_run_is_kept_and_not_examined(instance):
    old = run(instance, [candles], "2026-11-01")
    recent = run(instance, [candles], "2026-11-01")
    run(instance, [candles], "2026-11-01")
    report = prune(instance, now=later(instance, recent) - timedelta(microseconds=2))
    assert (report.examined, report.deleted) == (1, [old])
    assert exists(instance, recent)


def test_manual_runs_backfills_and_user_re_executions_are_kept(instance):
    manual = run(instance, [candles], "2026-11-01", tags={})
    backfill = run(instance, [candles], "2026-11-01", tags={"dagster/backfill": "abc", **SCHEDULED})
    redo = run(instance, [candles], "2026-11-01", tags={"dagster/parent_run_id": "x", **SCHEDULED})
    retry = run(
        instance,
        [candles],
        "2026-11-01",
        tags={"dagster/parent_run_id": "x", "dagster/retry_number": "1", **SCHEDULED},
    )
    run(instance, [candles], "2026-11-01")
    report = prune(instance, now=later(instance, retry))
    assert report.deleted == [retry]
    assert [(d.run_id, d.verdict) for d in report.kept] == [(redo, Verdict.USER_RE_EXECUTION)]
    assert all(exists(instance, r) for r in (manual, backfill, redo))


def test_a_run_in_flight_is_never_examined(instance):
    old = run(instance, [candles], "2026-11-01")
    in_flight = dg.DagsterRun(
        job_name="__ephemeral_asset_job__",
        run_id="0" * 36,
        status=dg.DagsterRunStatus.STARTED,
        tags=SCHEDULED,
    )
    instance.add_run(in_flight)
    run(instance, [candles], "2026-11-01")
    report = prune(instance, now=later(instance, old, days=365))
    assert report.deleted == [old]
    assert exists(instance, in_flight.run_id)


def test_the_latest_check_evaluation_keeps_its_run(instance):
    checked = run(instance, [ledger, balanced], tags={TRIGGER_TAG: "holdings_sensor"})
    run(instance, [ledger], tags={TRIGGER_TAG: "holdings_sensor"})
    report = prune(instance, now=later(instance, checked, days=365))
    (kept,) = [d for d in report.kept if d.run_id == checked]
    assert (kept.verdict, kept.detail) == (Verdict.LATEST_CHECK_EXECUTION, "ledger:balanced")
    third = run(instance, [ledger, balanced], tags={TRIGGER_TAG: "holdings_sensor"})
    report = prune(instance, now=later(instance, third, days=365))
    assert checked in report.deleted
    history = instance.event_log_storage.get_asset_check_execution_history(balanced.check_key, 10)
    assert [h.run_id for h in history] == [third]


def test_a_failed_run_is_kept_for_keep_failed_days_then_deleted(instance):
    FAIL["on"] = True
    try:
        failed = run(instance, [ledger], tags={TRIGGER_TAG: "holdings_sensor"})
    finally:
        FAIL["on"] = False
    assert instance.get_run_by_id(failed).status == dg.DagsterRunStatus.FAILURE
    assert prune(instance, now=later(instance, failed, days=29)).examined == 0
    assert prune(instance, now=later(instance, failed, days=30)).deleted == [failed]


def test_pruning_never_changes_a_latest_materialisation(instance):
    for partition in ["2026-11-01", "2026-11-02", "2026-11-01", "2026-11-03", "2026-11-01"]:
        run(instance, [candles], partition)
    for _ in range(3):
        run(instance, [ledger, balanced], tags={TRIGGER_TAG: "holdings_sensor"})
    last = instance.get_runs(limit=1)[0].run_id
    before = latest_per_partition(instance)
    report = prune(instance, now=later(instance, last, days=365))
    assert (len(report.deleted), report.kept_by_verdict()["latest_materialization"]) == (4, 4)
    assert latest_per_partition(instance) == before


def test_max_runs_examines_the_oldest_first_and_dry_run_deletes_nothing(instance):
    runs = [run(instance, [candles], "2026-11-01") for _ in range(4)]
    now = later(instance, runs[-1], days=365)
    dry = prune(instance, Policy(max_runs=2), now=now, dry_run=True)
    assert (dry.deleted, dry.shard_bytes > 0) == (runs[:2], True)
    assert all(exists(instance, r) for r in runs)
    assert prune(instance, Policy(max_runs=2), now=now).deleted == runs[:2]
    assert prune(instance, Policy(max_runs=2), now=now).deleted == [runs[2]]


def test_runs_kept_for_ever_do_not_hold_back_newer_ones(instance):
    history = run(instance, [candles], "2026-11-02")
    old = run(instance, [candles], "2026-11-01")
    newest = run(instance, [candles], "2026-11-01")
    now, one = later(instance, newest, days=365), Policy(max_runs=1)
    examined = []
    for _ in range(5):
        report = prune(instance, one, now=now)
        examined.append([d.run_id for d in report.kept] + report.deleted)
    # Each pruning carries on after the last; after the newest, the start comes round again.
    assert examined == [[history], [old], [newest], [], [history]]
    assert not exists(instance, old)


def test_the_job_prunes_and_reports(instance):
    old = run(instance, [candles], "2026-11-01")
    run(instance, [candles], "2026-11-01")
    config = {"ops": {"prune_superseded_runs": {"config": {"keep_days": 0}}}}
    result = prune_job.execute_in_process(instance=instance, run_config=config)
    assert result.success
    assert not exists(instance, old)
    (output,) = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_OUTPUT]
    figures = {k: v.value for k, v in output.step_output_data.metadata.items()}
    assert figures["runs_examined"] == figures["runs_deleted"] + figures["runs_kept"] == 2
    assert (figures["runs_deleted"], figures["kept_latest_materialization"]) == (1, 1)
    assert figures["shard_bytes_freed"] > 100_000
