"""The upsert IO manager: declared key, symbol and time columns; unit streams unit by unit; what
each partition of a ranged output reports."""

import dagster as dg
import pandas as pd

from platform_pkg.partitions import symbol_date_partitions
from platform_pkg.warehouse.io_manager import (
    KEY_METADATA,
    PARTITION_ROWS,
    SYMBOL_COLUMN_METADATA,
    TIME_COLUMN_METADATA,
    run_metadata,
)
from platform_pkg.warehouse.resources import Warehouse
from platform_pkg.warehouse.unit import TableWrite, Unit, UnitStream
from platform_pkg.warehouse.upsert import TableSpec
from platform_tests.conftest import range_tags, resources_for, rows

DAYS = pd.date_range("2026-11-01", "2026-11-05", freq="D", tz="UTC")


@dg.asset(
    partitions_def=symbol_date_partitions,
    metadata={
        KEY_METADATA: ["asset_id", "as_of"],
        SYMBOL_COLUMN_METADATA: "asset_id",
        TIME_COLUMN_METADATA: "as_of",
    },
)
def valuations() -> pd.DataFrame:
    """A keyed table whose symbol and time columns have other names."""
    return pd.DataFrame(
        [(symbol, day, float(i)) for symbol in ("AAPL", "MSFT") for i, day in enumerate(DAYS)],
        columns=["asset_id", "as_of", "value"],
    )


@dg.asset(partitions_def=symbol_date_partitions, ins={"stored": dg.AssetIn("valuations")})
def consumer(stored: pd.DataFrame) -> None:
    assert set(stored["asset_id"]) == {"MSFT"}
    assert list(stored["as_of"]) == list(DAYS[1:3])


def test_a_downstream_asset_loads_its_partitions_by_the_declared_columns(instance, warehouse_file):
    resources = resources_for(warehouse_file)
    # The output holds both symbols and five days: the upsert stores what it is given.
    written = dg.materialize(
        [valuations], instance=instance, resources=resources, tags=range_tags("MSFT", "2026-11-01", "2026-11-05")
    )  # fmt: skip
    assert written.success
    assert rows(warehouse_file, "SELECT count(*) FROM valuations") == [(10,)]
    loaded = dg.materialize(
        [consumer, valuations.to_source_asset()],
        instance=instance,
        resources=resources,
        tags=range_tags("MSFT", "2026-11-02", "2026-11-03"),
    )
    assert loaded.success


class Pages(UnitStream):
    """Three pages of two events each; the source fails before page ``fail_at`` if set."""

    def __init__(self, warehouse: Warehouse, fail_at: int | None):
        self.warehouse, self.fail_at = warehouse, fail_at
        self.seen: list[list[int]] = []

    def units(self):
        for page in range(3):
            if page == self.fail_at:
                raise RuntimeError("the source went away")
            committed = yield Unit.of(pd.DataFrame({"id": [f"{page}a", f"{page}b"], "page": page}))
            # Committed before the stream resumes: another connection already sees the rows.
            stored = self.warehouse.query("SELECT count(*) AS n FROM paged_events")["n"][0]
            self.seen.append([committed.of("paged_events").inserted, int(stored)])

    def metadata(self):
        return {"pages": len(self.seen), "inserted_then_stored": self.seen}


class PagesConfig(dg.Config):
    fail_at: int | None = None


@dg.asset(metadata={KEY_METADATA: ["id"]})
def paged_events(config: PagesConfig, warehouse: Warehouse) -> UnitStream:
    """Events fetched page by page, each page its own unit of work."""
    return Pages(warehouse, config.fail_at)


def test_a_unit_stream_commits_each_unit_before_it_resumes(instance, warehouse_file):
    result = dg.materialize(
        [paged_events], instance=instance, resources=resources_for(warehouse_file)
    )
    assert result.success
    meta = result.asset_materializations_for_node("paged_events")[0].metadata
    assert {k: v.value for k, v in meta.items()} == {
        "rows_written": 6,
        "rows_inserted": 6,
        "rows_updated": 0,
        "rows_unchanged": 0,
        "pages": 3,
        "inserted_then_stored": [[2, 2], [2, 4], [2, 6]],
    }


def test_a_stream_that_fails_keeps_the_units_it_committed(instance, warehouse_file):
    result = dg.materialize(
        [paged_events],
        instance=instance,
        resources=resources_for(warehouse_file),
        run_config={"ops": {"paged_events": {"config": {"fail_at": 2}}}},
        raise_on_error=False,
    )
    assert not result.success
    assert "the source went away" in result.failure_data_for_node("paged_events").error.to_string()
    assert result.asset_materializations_for_node("paged_events") == []
    assert rows(warehouse_file, "SELECT id, page FROM paged_events ORDER BY id") == [
        ("0a", 0), ("0b", 0), ("1a", 1), ("1b", 1),
    ]  # fmt: skip


def figures(result, node) -> dict[str, dict]:
    mats = result.asset_materializations_for_node(node)
    return {m.partition: {k: v.value for k, v in m.metadata.items()} for m in mats}


def test_each_partition_of_a_ranged_output_gets_its_own_rows(instance, warehouse_file):
    result = dg.materialize(
        [valuations],
        instance=instance,
        resources=resources_for(warehouse_file),
        tags=range_tags("MSFT", "2026-11-01", "2026-11-05"),
    )
    by_key = figures(result, "valuations")
    # Counted by the declared columns (asset_id, as_of); AAPL's rows are in no partition of the
    # run, so only in the run's figures, which the newest partition carries.
    assert {k: m[PARTITION_ROWS] for k, m in by_key.items()} == {
        f"2026-11-0{d}|MSFT": 1 for d in range(1, 6)
    }
    assert by_key["2026-11-05|MSFT"] == {
        PARTITION_ROWS: 1,
        "run_partitions": 5,
        "run_rows_written": 10,
        "run_rows_inserted": 10,
        "run_rows_updated": 0,
        "run_rows_unchanged": 0,
        "run_table": "valuations",
    }
    mats = result.asset_materializations_for_node("valuations")
    found = [f for m in mats if (f := run_metadata(m.metadata)) is not None]
    assert [{k: v.value for k, v in f.items()} for f in found] == [
        {"partitions": 5, "rows_written": 10, "rows_inserted": 10, "rows_updated": 0,
         "rows_unchanged": 0, "table": "valuations"},
    ]  # fmt: skip


def test_an_output_of_one_partition_reports_as_before(instance, warehouse_file):
    result = dg.materialize(
        [valuations],
        instance=instance,
        resources=resources_for(warehouse_file),
        tags=range_tags("MSFT", "2026-11-03", "2026-11-03"),
    )
    (meta,) = figures(result, "valuations").values()
    assert meta == {
        "rows_written": 10, "rows_inserted": 10, "rows_updated": 0, "rows_unchanged": 0,
        "table": "valuations",
    }  # fmt: skip
    assert run_metadata(meta) == meta


class Trades(UnitStream):
    """Two pages of trades across midnight: a key twice in one page, a side table, a soft delete."""

    def units(self):
        first = pd.DataFrame(
            {
                "id": ["a", "b", "b", "c"],
                "symbol": "BTC-USDT",
                "ts": pd.to_datetime(
                    [
                        "2026-11-01 23:00",
                        "2026-11-01 23:30",
                        "2026-11-02 00:10",
                        "2026-11-02 01:00",
                    ],
                    utc=True,
                ),
            }
        )
        side = TableWrite(pd.DataFrame({"id": ["n"], "symbol": ["BTC-USDT"], "ts": [DAYS[0]]}),
                          TableSpec("notes", ("id",)))  # fmt: skip
        yield Unit.of(first, side)
        second = pd.DataFrame({"id": ["d"], "symbol": ["ETH-USDT"], "ts": [DAYS[2]]})
        yield Unit.of(second)


@dg.asset(partitions_def=symbol_date_partitions, metadata={KEY_METADATA: ["id"]})
def trades() -> UnitStream:
    return Trades()


def test_a_streams_rows_are_counted_per_partition_as_committed(instance, warehouse_file):
    result = dg.materialize(
        [trades],
        instance=instance,
        resources=resources_for(warehouse_file),
        tags=range_tags("BTC-USDT", "2026-11-01", "2026-11-03"),
    )
    by_key = figures(result, "trades")
    # "b" twice in one page: stored once, as its last version (2 Nov). ETH is not in the run.
    assert {k: m[PARTITION_ROWS] for k, m in by_key.items()} == {
        "2026-11-01|BTC-USDT": 1,
        "2026-11-02|BTC-USDT": 2,
        "2026-11-03|BTC-USDT": 0,
    }
    assert by_key["2026-11-03|BTC-USDT"]["run_rows_written"] == 4
    assert rows(warehouse_file, "SELECT count(*) FROM trades") == [(4,)]
