"""The batching event log storage records a ranged run as Dagster's own SQLite storage does, in the
order of the partitions."""

import shutil
import sqlite3

import dagster as dg
import pytest
from dagster._core.events import StepMaterializationData
from dagster._core.storage.event_log import SqliteEventLogStorage

from platform_pkg.event_log_storage import (
    BatchingSqliteEventLogStorage,
    default_base_dir,
    in_partition_order,
)
from platform_pkg.prices.assets import prices_1d, prices_1h
from platform_pkg.warehouse.connection import PROJECT_ROOT
from platform_pkg.warehouse.io_manager import PARTITION_ROWS
from platform_tests.conftest import range_tags, resources_for

PLANNED = dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED
PER_PARTITION = {PLANNED, dg.DagsterEventType.ASSET_MATERIALIZATION}

BATCHING = {
    "module": "platform_pkg.event_log_storage",
    "class": "BatchingSqliteEventLogStorage",
}


def record_of_a_ranged_run(tmp_path, storage: dict | None, monkeypatch) -> dict:
    """Materialise ten days of one symbol on a fresh on-disk instance; what the instance knows."""
    home = tmp_path / ("batching" if storage else "stock")
    home.mkdir()
    overrides = {}
    if storage:
        overrides["event_log_storage"] = {**storage, "config": {"base_dir": str(home / "runs")}}
    single_writes = []
    real_store_event = SqliteEventLogStorage.store_event

    def store_event(self, event):
        if event.dagster_event_type in PER_PARTITION:
            single_writes.append(event)
        return real_store_event(self, event)

    monkeypatch.setattr(SqliteEventLogStorage, "store_event", store_event)
    with dg.instance_for_test(temp_dir=str(home), overrides=overrides) as instance:
        instance.add_dynamic_partitions("symbols", ["BTC-USDT"])
        result = dg.materialize(
            [prices_1d],
            instance=instance,
            resources=resources_for(home / "warehouse.duckdb"),
            tags=range_tags("BTC-USDT", "2026-11-01", "2026-11-10"),
        )
        assert result.success
        key = prices_1d.key
        run_events = instance.all_logs(
            result.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION
        )
        records = instance.fetch_materializations(dg.AssetRecordsFilter(asset_key=key), 100).records
        planned_log = instance.all_logs(result.run_id, of_type=PLANNED)
        planned_index = instance.get_event_records(
            dg.EventRecordsFilter(event_type=PLANNED, asset_key=key), limit=100
        )
        entry = instance.get_asset_records([key])[0].asset_entry
        return {
            "storage": type(instance.event_log_storage),
            "single_writes": len(single_writes),
            "materialized": sorted(instance.get_materialized_partitions(key)),
            "run_log": [e.dagster_event.partition for e in run_events],
            "index_newest_first": [r.partition_key for r in records],
            "ids_ascending": [r.storage_id for r in records]
            == sorted((r.storage_id for r in records), reverse=True),
            "tags": sorted(
                # The data version differs from run to run; the partition dimensions must not.
                tuple(sorted((k, v) for k, v in t.items() if k.startswith("dagster/partition")))
                for t in instance.event_log_storage.get_event_tags_for_asset(key)
            ),
            "planned_run_log": [e.dagster_event.partition for e in planned_log],
            "planned_index_newest_first": [r.partition_key for r in planned_index],
            "latest": entry.last_materialization_record.partition_key,
            "last_run_is_this_run": entry.last_run_id == result.run_id,
            "metadata": sorted(
                (r.partition_key, r.asset_materialization.metadata[PARTITION_ROWS].value)
                for r in records
            ),
        }


# Where the stock storage writes a ranged run's events in the scrambled order Dagster hands them
# over (the order of a set of partition keys), the batching storage writes them by partition.
ORDERED = ("run_log", "index_newest_first", "planned_run_log", "planned_index_newest_first")
DAYS = [f"2026-11-{day:02d}|BTC-USDT" for day in range(1, 11)]


def unordered(record: dict) -> dict:
    """What both storages must record alike: everything but the order and the latest event."""
    return {
        k: sorted(v) if k in ORDERED else v
        for k, v in record.items()
        if k not in ("storage", "single_writes", "latest")
    }


def test_a_batched_run_is_recorded_as_the_stock_storage_records_it(tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_EVENT_BATCH_SIZE", "1000")
    monkeypatch.delenv("DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS", raising=False)
    stock = record_of_a_ranged_run(tmp_path, None, monkeypatch)
    batching = record_of_a_ranged_run(tmp_path, BATCHING, monkeypatch)

    assert stock["storage"] is SqliteEventLogStorage
    assert batching["storage"] is BatchingSqliteEventLogStorage
    assert stock["single_writes"] == 20, "the stock storage writes event by event"
    assert batching["single_writes"] == 0, "both batches went through the bulk path"
    assert len(stock["planned_run_log"]) == 10 and len(stock["planned_index_newest_first"]) == 10
    assert len(stock["materialized"]) == 10 and stock["ids_ascending"]
    assert stock["latest"] == stock["run_log"][-1]
    assert len(stock["tags"]) == 10 and all(len(dims) == 2 for dims in stock["tags"])
    assert stock["metadata"] == [(day, 1) for day in DAYS], "a day's own candle, not the run's"
    assert unordered(batching) == unordered(stock)
    assert batching["run_log"] == batching["planned_run_log"] == DAYS
    assert batching["index_newest_first"] == batching["planned_index_newest_first"] == DAYS[::-1]
    assert batching["latest"] == DAYS[-1]


def test_a_failed_batch_write_leaves_nothing_behind_for_the_one_by_one_fallback(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("DAGSTER_EVENT_BATCH_SIZE", "1000")
    stock = record_of_a_ranged_run(tmp_path, None, monkeypatch)
    real_tags = BatchingSqliteEventLogStorage._store_asset_event_tags
    failures = []

    def busy_once(self, conn, events, event_ids):
        if len(events) > 1 and not failures:
            failures.append(len(events))
            raise sqlite3.OperationalError("database is locked")
        return real_tags(self, conn, events, event_ids)

    monkeypatch.setattr(BatchingSqliteEventLogStorage, "_store_asset_event_tags", busy_once)
    batching = record_of_a_ranged_run(tmp_path, BATCHING, monkeypatch)
    assert failures == [10]
    assert batching["single_writes"] == 10, "Dagster wrote the planned events one by one"
    assert unordered(batching) == unordered(stock)
    assert batching["run_log"] == DAYS, "the materialisations were written in a batch"


def test_without_the_batch_setting_events_are_written_one_by_one(tmp_path, monkeypatch):
    monkeypatch.delenv("DAGSTER_EVENT_BATCH_SIZE", raising=False)
    record = record_of_a_ranged_run(tmp_path, BATCHING, monkeypatch)
    assert record["single_writes"] == 20
    assert len(record["materialized"]) == 10


def test_the_project_instance_uses_it_and_keeps_dagsters_history_folder(tmp_path, monkeypatch):
    shutil.copy(PROJECT_ROOT / "dagster.yaml", tmp_path / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    assert default_base_dir() == str(tmp_path / "history" / "runs") + "/"
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        assert isinstance(instance.event_log_storage, BatchingSqliteEventLogStorage)
    assert (tmp_path / "history" / "runs" / "index.db").exists()


def test_a_missing_dagster_home_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    with pytest.raises(ValueError, match="DAGSTER_HOME is not set"):
        default_base_dir()


def materialisations_in_storage_order(instance, key) -> list:
    records = instance.fetch_materializations(dg.AssetRecordsFilter(asset_key=key), 1000).records
    return sorted(records, key=lambda r: r.storage_id)


def test_a_ranged_runs_events_follow_the_dates_and_the_newest_is_the_latest(tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_EVENT_BATCH_SIZE", "1000")
    home = tmp_path / "home"
    home.mkdir()
    storage = {**BATCHING, "config": {"base_dir": str(home / "runs")}}
    with dg.instance_for_test(temp_dir=str(home), overrides={"event_log_storage": storage}) as inst:
        inst.add_dynamic_partitions("symbols", ["BTC-USDT", "ETH-USDT"])
        result = dg.materialize(
            [prices_1d, prices_1h],
            instance=inst,
            resources=resources_for(tmp_path / "warehouse.duckdb"),
            tags={
                "dagster/asset_partition_range_start": "2026-11-01|BTC-USDT",
                "dagster/asset_partition_range_end": "2026-11-20|ETH-USDT",
            },
        )
        assert result.success
        for asset in (prices_1d, prices_1h):
            records = materialisations_in_storage_order(inst, asset.key)
            keys = [r.partition_key for r in records]
            assert len(keys) == 40
            for symbol in ("BTC-USDT", "ETH-USDT"):
                days = [k.split("|")[0] for k in keys if k.endswith(symbol)]
                assert days == sorted(days) and len(days) == 20, "per symbol, by date"
            assert keys[-1] == "2026-11-20|ETH-USDT"
            entry = inst.get_asset_records([asset.key])[0].asset_entry
            assert entry.last_materialization_record.partition_key == "2026-11-20|ETH-USDT"
            # The UI tells a run's events apart by their millisecond.
            millis = [int(r.timestamp * 1000) for r in records]
            assert millis == sorted(set(millis))


def test_a_run_split_over_several_batches_keeps_its_stamps_in_storage_order(tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_EVENT_BATCH_SIZE", "4")
    home = tmp_path / "home"
    home.mkdir()
    storage = {**BATCHING, "config": {"base_dir": str(home / "runs")}}
    with dg.instance_for_test(temp_dir=str(home), overrides={"event_log_storage": storage}) as inst:
        inst.add_dynamic_partitions("symbols", ["BTC-USDT"])
        result = dg.materialize(
            [prices_1d],
            instance=inst,
            resources=resources_for(tmp_path / "warehouse.duckdb"),
            tags=range_tags("BTC-USDT", "2026-11-01", "2026-11-10"),
        )
        assert result.success
        records = materialisations_in_storage_order(inst, prices_1d.key)
        keys = [r.partition_key for r in records]
        assert sorted(keys) == DAYS
        for batch in (keys[0:4], keys[4:8], keys[8:]):
            assert batch == sorted(batch), "each batch of 4, 4 and 2 by date"
        millis = [int(r.timestamp * 1000) for r in records]
        assert millis == sorted(set(millis))


def test_partition_order_stamps_each_event_a_millisecond_after_the_one_before():
    def event(partition: str, timestamp: float):
        return dg.EventLogEntry(
            error_info=None,
            level="DEBUG",
            user_message="",
            run_id="r",
            timestamp=timestamp,
            dagster_event=dg.DagsterEvent(
                event_type_value="ASSET_MATERIALIZATION",
                job_name="j",
                event_specific_data=StepMaterializationData(
                    dg.AssetMaterialization("a", partition=partition)
                ),
            ),
        )

    events = [event("2026-11-03|B", 100.0002), event("2026-11-01|B", 100.0001),
              event("2026-11-02|A", 100.0003)]  # fmt: skip
    ordered = in_partition_order(events)
    assert [e.dagster_event.partition for e in ordered] == [
        "2026-11-01|B", "2026-11-02|A", "2026-11-03|B",
    ]  # fmt: skip
    assert [int(e.timestamp * 1000) for e in ordered] == [100_000, 100_001, 100_002]
    later = in_partition_order(events, after=ordered[-1].timestamp)
    assert [int(e.timestamp * 1000) for e in later] == [100_003, 100_004, 100_005]
