"""Units of work: writes, watermark moves and the sync_log row commit together or not at all."""

from datetime import UTC, datetime

import pandas as pd
import pyarrow as pa
import pytest

from platform_pkg.warehouse import rejected_rows
from platform_pkg.warehouse.connection import transaction
from platform_pkg.warehouse.sync_log import SyncEntry
from platform_pkg.warehouse.unit import Committed, Mode, TableWrite, Unit, commit, rows_by_day
from platform_pkg.warehouse.upsert import Scope, TableSpec, UpsertStats
from platform_pkg.warehouse.watermarks import Coverage, Cursor, CursorMove, WatermarkConflict
from platform_tests.conftest import rows

OWN = TableSpec(
    name="events",
    keys=("id",),
    columns={
        "id": "VARCHAR",
        "ts": "TIMESTAMPTZ",
        "v": "DOUBLE",
        "is_deleted": "BOOLEAN",
        "deleted_at": "TIMESTAMPTZ",
    },
)
SIDE = TableSpec(name="notes", keys=("id",), columns={"id": "VARCHAR", "note": "VARCHAR"})
T = datetime(2026, 1, 1, tzinfo=UTC)
NOW = datetime(2026, 1, 2, tzinfo=UTC)
ASSET, DATA_TYPE = "acct:BTC-USDT", "exchange_trades"
TABLES = ("events", "notes", "rejected_rows", "ingestion_state", "sync_log")


def events(*pairs) -> pd.DataFrame:
    return pd.DataFrame({"id": [p[0] for p in pairs], "ts": T, "v": [p[1] for p in pairs]})


def notes(*pairs) -> pd.DataFrame:
    return pd.DataFrame(pairs, columns=["id", "note"])


def entry(**counts) -> SyncEntry:
    return SyncEntry("sync-1", "run-1", ASSET, DATA_TYPE, "demo", T, **counts)


def move(last_id: str, **guard) -> CursorMove:
    return CursorMove(ASSET, DATA_TYPE, Cursor(last_id, T), **guard)


def committed(path, unit: Unit) -> Committed:
    with transaction(path) as con:
        return commit(con, OWN, unit, run_id="run-1", now=NOW)


def snapshot(path) -> dict[str, list | None]:
    """Every table a unit may write, as stored (None when it does not exist)."""
    present = {t for (t,) in rows(path, "SELECT table_name FROM information_schema.tables")}
    return {t: rows(path, f"SELECT * FROM {t} ORDER BY ALL") if t in present else None
            for t in TABLES}  # fmt: skip


def test_commit_applies_writes_watermarks_and_the_log_row(warehouse_file):
    committed(warehouse_file, Unit.of(events(("1", 1.0), ("2", 2.0), ("3", 3.0))))
    rejects = pd.DataFrame({"ts": [T], "raw": ["{}"], "reason": ["no trade id"]})
    rejected = rejected_rows.rows(rejects, symbol=ASSET, data_type=DATA_TYPE, source="demo",
                                  fetched_at=NOW, run_id="run-1", sync_id="sync-1")  # fmt: skip
    unit = Unit.of(
        events(("1", 1.5), ("4", 4.0)),
        TableWrite(
            pd.DataFrame({"id": ["1", "2", "4"]}),
            mode=Mode.SOFT_DELETE_MISSING,
            scope=Scope({}, "ts", T, NOW),
        ),  # fmt: skip
        TableWrite(notes(("1", "revised")), SIDE),
        TableWrite(rejected, rejected_rows.SPEC, Mode.INSERT_NEW),
        watermarks=(move("10"),),
        log=entry(rows_fetched=9, rows_inserted=3, rows_updated=1, rows_deleted=2, rows_rejected=2),
    )
    got = committed(warehouse_file, unit)
    assert got.stats == {
        "events": UpsertStats(rows=2, inserted=1, updated=1, deleted=1),
        "notes": UpsertStats(rows=1, inserted=1),
        "rejected_rows": UpsertStats(rows=1, inserted=1),
    }
    assert got.deleted_keys == {"events": [("3",)]}
    assert got.watermarks == {(ASSET, DATA_TYPE): Cursor("10", T)}
    assert rows(warehouse_file, "SELECT id, v, is_deleted FROM events ORDER BY id") == [
        ("1", 1.5, None), ("2", 2.0, None), ("3", 3.0, True), ("4", 4.0, None),
    ]  # fmt: skip
    assert rows(warehouse_file, "SELECT last_id FROM ingestion_state") == [("10",)]
    logged = "SELECT rows_fetched, rows_inserted, rows_updated, rows_deleted, rows_rejected, status"
    assert rows(warehouse_file, f"{logged} FROM sync_log") == [(9, 4, 2, 3, 3, "running")]


FAILING = {
    "guarded cursor moved": (
        Unit.of(
            events(("1", 9.0), ("5", 5.0)),
            TableWrite(notes(("1", "stale")), SIDE),
            watermarks=(move("20", guarded=True, expected=Cursor("7", T)),),
            log=entry(rows_inserted=50),
        ),
        WatermarkConflict,
        "acct:BTC-USDT exchange_trades is at 10, not at 7",
    ),
    "null key in a side write": (
        Unit.of(
            events(("1", 9.0), ("5", 5.0)),
            TableWrite(notes(("1", "ok"), (None, "bad")), SIDE),
            watermarks=(move("20"),),
            log=entry(rows_inserted=50),
        ),
        ValueError,
        "for table notes have a null key",
    ),
}


@pytest.mark.parametrize("failure", FAILING.values(), ids=FAILING.keys())
def test_a_failing_part_leaves_nothing_of_the_unit(warehouse_file, failure):
    unit, error, message = failure
    committed(warehouse_file, Unit.of(events(("1", 1.0)), watermarks=(move("10"),), log=entry()))
    before = snapshot(warehouse_file)
    assert before["notes"] is None and before["ingestion_state"] != []
    with pytest.raises(error, match=message):
        committed(warehouse_file, unit)
    assert snapshot(warehouse_file) == before


def test_a_unit_closes_the_log_rows_of_ended_runs(warehouse_file):
    with transaction(warehouse_file) as con:
        commit(con, OWN, Unit(log=entry(rows_inserted=5)), run_id="run-1", now=T)
    got = committed(warehouse_file, Unit(close_runs={"run-1": "FAILURE"}))
    assert got.runs_closed == 1
    closed = rows(warehouse_file, "SELECT status, finished_at, error FROM sync_log")
    assert closed[0][:2] == ("partial", NOW)
    assert closed[0][2].startswith("abandoned: run run-1 ended (FAILURE)")


def test_a_write_to_the_own_table_needs_one_declared(warehouse_file):
    with pytest.raises(ValueError, match="none was declared"):
        with transaction(warehouse_file) as con:
            commit(con, None, Unit.of(events(("1", 1.0))), run_id=None, now=NOW)


def test_committed_adds_up():
    total = Committed(
        stats={"events": UpsertStats(2, 1, 1)},
        watermarks={("a", "x"): Cursor("1", T)},
        deleted_keys={"events": [("3",)]},
        runs_closed=1,
    )
    total.add(
        Committed(
            stats={"events": UpsertStats(3, 2, 0, 1, 0), "notes": UpsertStats(1, 1)},
            watermarks={("a", "x"): Cursor("2", T), ("b", "y"): Coverage(T, NOW)},
            deleted_keys={"events": [("4",)]},
            runs_closed=2,
        )
    )
    assert total == Committed(
        stats={"events": UpsertStats(5, 3, 1, 1, 0), "notes": UpsertStats(1, 1)},
        watermarks={("a", "x"): Cursor("2", T), ("b", "y"): Coverage(T, NOW)},
        deleted_keys={"events": [("3",), ("4",)]},
        runs_closed=3,
    )


def test_rows_are_counted_per_symbol_and_utc_day_as_the_commit_counts_them():
    spec = TableSpec("trades", keys=("id",))
    own = pa.table(
        {
            "id": ["a", "b", "b", "c"],
            "symbol": ["BTC-USDT", "BTC-USDT", "BTC-USDT", "ETH-USDT"],
            # 20:30 in New York is the next UTC day; "b" twice counts once, as its last version.
            "ts": pd.to_datetime(
                ["2026-01-01 10:00", "2026-01-01 11:00", "2026-01-02 00:30", "2026-01-01 20:30"]
            ).tz_localize("America/New_York"),
        }
    )
    unit = Unit.of(
        own,
        TableWrite(notes(("n", "x")), SIDE),  # another table: not counted
        TableWrite(
            events(("z", 1.0)).assign(symbol="BTC-USDT"),
            mode=Mode.SOFT_DELETE_MISSING,
            scope=Scope({}, "ts", T, NOW),
        ),  # a soft delete's key list: not counted
        TableWrite(pd.DataFrame({"id": ["q"], "v": [1.0]})),  # no symbol, no time: not counted
    )
    assert rows_by_day(unit, spec, "symbol", "ts") == {
        ("BTC-USDT", "2026-01-01"): 1,
        ("BTC-USDT", "2026-01-02"): 1,
        ("ETH-USDT", "2026-01-02"): 1,
    }
