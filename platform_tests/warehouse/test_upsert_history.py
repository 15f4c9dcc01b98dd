"""Upserts that keep more than current rows: history, soft deletes, change numbers, write modes."""

from datetime import UTC, datetime

import duckdb
import pandas as pd
import pytest

from platform_pkg.warehouse.upsert import (
    Combine,
    Scope,
    TableSpec,
    UpsertStats,
    WriteContext,
    delete_keys,
    insert_new,
    next_change,
    soft_delete_missing,
    table_columns,
    update_existing,
    upsert,
)

SPEC = TableSpec(
    name="trades",
    keys=("account", "trade_id"),
    columns={
        "account": "VARCHAR",
        "trade_id": "VARCHAR",
        "ts": "TIMESTAMPTZ",
        "amount": "DOUBLE",
        "fetched_at": "TIMESTAMPTZ",
        "is_deleted": "BOOLEAN",
        "deleted_at": "TIMESTAMPTZ",
    },
    audit_columns=("fetched_at",),
    history="trades_history",
    valid_from="fetched_at",
    track_changes=True,
)


def d(day: int) -> datetime:
    return datetime(2026, 1, day, tzinfo=UTC)


def ctx(change: int, day: int) -> WriteContext:
    return WriteContext(change=change, run_id=f"run-{change}", now=d(day))


def trades(*rows, fetched: int) -> pd.DataFrame:
    """Live rows ``(account, trade_id, day, amount)`` as a source returns them."""
    out = pd.DataFrame(rows, columns=["account", "trade_id", "ts", "amount"])
    out["ts"] = pd.to_datetime([d(day) for day in out["ts"]], utc=True)
    out["fetched_at"] = pd.Timestamp(d(fetched))
    out["is_deleted"] = False
    out["deleted_at"] = pd.Series(pd.NaT, index=out.index, dtype="datetime64[ns, UTC]")
    return out


def keys(*pairs) -> pd.DataFrame:
    return pd.DataFrame(pairs, columns=["account", "trade_id"])


@pytest.fixture
def con():
    connection = duckdb.connect()
    connection.execute("SET TimeZone = 'UTC'")
    yield connection
    connection.close()


def live(con):
    return con.execute(
        "SELECT account, trade_id, amount, fetched_at, is_deleted, deleted_at, _change_seq "
        "FROM trades ORDER BY account, trade_id"
    ).fetchall()


def history(con):
    return con.execute(
        "SELECT account, trade_id, amount, is_deleted, valid_from, valid_to, run_id, change, "
        "_change_seq FROM trades_history ORDER BY valid_to, account, trade_id"
    ).fetchall()


def test_a_changed_row_is_updated_in_place_and_its_old_version_kept(con):
    upsert(con, SPEC, trades(("A", "1", 1, 1.0), ("A", "2", 1, 2.0), fetched=1), ctx=ctx(1, 1))
    again = trades(("A", "1", 1, 1.5), ("A", "2", 1, 2.0), fetched=2)
    stats = upsert(con, SPEC, again, ctx=ctx(2, 3))
    assert stats == UpsertStats(rows=2, inserted=0, updated=1)
    assert live(con) == [
        ("A", "1", 1.5, d(2), False, None, 2),
        ("A", "2", 2.0, d(1), False, None, 1),  # only fetched_at differed: left alone
    ]
    assert history(con) == [("A", "1", 1.0, False, d(1), d(3), "run-2", "update", 1)]


def test_an_unchanged_batch_appends_no_history(con):
    upsert(con, SPEC, trades(("A", "1", 1, 1.0), fetched=1), ctx=ctx(1, 1))
    stats = upsert(con, SPEC, trades(("A", "1", 1, 1.0), fetched=5), ctx=ctx(2, 5))
    assert (stats.updated, stats.unchanged) == (0, 1)
    assert history(con) == []
    assert live(con) == [("A", "1", 1.0, d(1), False, None, 1)]


def test_soft_delete_marks_only_live_rows_in_scope_whose_key_is_absent(con):
    upsert(
        con,
        SPEC,
        trades(
            ("A", "1", 1, 1.0),  # returned again
            ("A", "2", 2, 2.0),  # vanished
            ("A", "3", 3, 3.0),  # at the scope's end, which is exclusive
            ("B", "4", 2, 4.0),  # another account
            ("A", "5", 2, 5.0),  # deleted below, before the reconcile
            fetched=1,
        ),
        ctx=ctx(1, 1),
    )
    earlier = Scope({"account": "A"}, "ts", d(2), d(3))
    soft_delete_missing(con, SPEC, keys(("A", "2")), earlier, ctx=ctx(2, 4))

    scope = Scope({"account": "A"}, "ts", d(1), d(3))
    stats, gone = soft_delete_missing(con, SPEC, keys(("A", "1")), scope, ctx=ctx(3, 6))
    assert (stats, gone) == (UpsertStats(deleted=1), [("A", "2")])
    assert live(con) == [
        ("A", "1", 1.0, d(1), False, None, 1),
        ("A", "2", 2.0, d(1), True, d(6), 3),
        ("A", "3", 3.0, d(1), False, None, 1),
        ("A", "5", 5.0, d(1), True, d(4), 2),  # already deleted: keeps its deletion
        ("B", "4", 4.0, d(1), False, None, 1),
    ]
    assert history(con) == [
        ("A", "5", 5.0, False, d(1), d(4), "run-2", "delete", 1),
        ("A", "2", 2.0, False, d(1), d(6), "run-3", "delete", 1),
    ]


def test_a_soft_deleted_row_that_comes_back_is_restored(con):
    upsert(con, SPEC, trades(("A", "1", 1, 1.0), fetched=1), ctx=ctx(1, 1))
    soft_delete_missing(con, SPEC, keys(), Scope({}, "ts", d(1), d(2)), ctx=ctx(2, 4))
    stats = upsert(con, SPEC, trades(("A", "1", 1, 1.0), fetched=7), ctx=ctx(3, 8))
    assert stats == UpsertStats(rows=1, updated=1, restored=1)
    assert live(con) == [("A", "1", 1.0, d(7), False, None, 3)]
    assert history(con) == [
        ("A", "1", 1.0, False, d(1), d(4), "run-2", "delete", 1),
        # The deleted version was valid from its deletion on, not from its last fetch.
        ("A", "1", 1.0, True, d(4), d(8), "run-3", "restore", 2),
    ]


def test_one_change_number_marks_every_row_a_commit_wrote(con):
    first, second = next_change(con), next_change(con)
    assert (first, second) == (1, 2)
    rows = trades(("A", "1", 1, 1.0), ("A", "2", 1, 2.0), ("A", "3", 1, 3.0), fetched=1)
    upsert(con, SPEC, rows, ctx=ctx(first, 1))
    changed = trades(("A", "1", 1, 1.5), ("A", "3", 1, 3.0), ("A", "4", 1, 4.0), fetched=2)
    upsert(con, SPEC, changed, ctx=ctx(second, 2))
    soft_delete_missing(con, SPEC, changed[["account", "trade_id"]], Scope({}, "ts", d(1), d(2)),
                        ctx=ctx(second, 2))  # fmt: skip
    got = con.execute("SELECT trade_id, _change_seq FROM trades ORDER BY 1").fetchall()
    assert got == [("1", 2), ("2", 2), ("3", 1), ("4", 2)]


def test_combine_rules_merge_with_the_stored_value():
    spec = TableSpec(
        name="ranges",
        keys=("k",),
        columns={"k": "VARCHAR", "lo": "INTEGER", "hi": "INTEGER", "note": "VARCHAR"},
    )
    rule = {"lo": Combine.LEAST, "hi": Combine.GREATEST, "note": Combine.KEEP}
    con = duckdb.connect()
    stored = pd.DataFrame({"k": ["a", "b", "c"], "lo": [5, 5, 5], "hi": [5, 5, 5],
                           "note": ["first", None, "first"]})  # fmt: skip
    upsert(con, spec, stored, combine=rule)
    incoming = pd.DataFrame({"k": ["a", "b", "c"], "lo": [3, 6, 7], "hi": [4, 9, 4],
                             "note": ["second", "second", "second"]})  # fmt: skip
    stats = upsert(con, spec, incoming, combine=rule)
    assert (stats.updated, stats.unchanged) == (2, 1)  # c merges back to what is stored
    assert con.execute("SELECT * FROM ranges ORDER BY k").fetchall() == [
        ("a", 3, 5, "first"),
        ("b", 5, 9, "second"),
        ("c", 5, 5, "first"),
    ]
    with pytest.raises(ValueError, match="cannot combine 'k' of table ranges"):
        upsert(con, spec, incoming, combine={"k": Combine.LEAST})


def test_insert_new_never_touches_stored_rows(con):
    upsert(con, SPEC, trades(("A", "1", 1, 1.0), ("A", "2", 1, 2.0), fetched=1), ctx=ctx(1, 1))
    soft_delete_missing(con, SPEC, keys(("A", "1")), Scope({}, "ts", d(1), d(2)), ctx=ctx(2, 2))
    incoming = trades(("A", "1", 1, 9.0), ("A", "2", 1, 9.0), ("A", "3", 1, 3.0), fetched=5)
    stats = insert_new(con, SPEC, incoming, ctx=ctx(3, 5))
    assert stats == UpsertStats(rows=3, inserted=1)
    assert live(con) == [
        ("A", "1", 1.0, d(1), False, None, 1),
        ("A", "2", 2.0, d(1), True, d(2), 2),  # not restored either
        ("A", "3", 3.0, d(5), False, None, 3),
    ]
    assert [row[7] for row in history(con)] == ["delete"]


def test_update_existing_never_inserts(con):
    missing = update_existing(con, SPEC, trades(("A", "1", 1, 1.0), fetched=1), ctx=ctx(1, 1))
    assert missing == UpsertStats(rows=1)
    assert table_columns(con, "trades") == {}, "the table is not created"

    upsert(con, SPEC, trades(("A", "1", 1, 1.0), fetched=1), ctx=ctx(1, 1))
    incoming = trades(("A", "1", 1, 1.5), ("A", "2", 1, 2.0), fetched=3)
    stats = update_existing(con, SPEC, incoming, ctx=ctx(2, 3))
    assert stats == UpsertStats(rows=2, updated=1)
    assert live(con) == [("A", "1", 1.5, d(3), False, None, 2)]
    assert history(con) == [("A", "1", 1.0, False, d(1), d(3), "run-2", "update", 1)]


def test_delete_keys_removes_exactly_the_given_keys(con):
    assert delete_keys(con, SPEC, keys(("A", "1"))) == UpsertStats()
    assert table_columns(con, "trades") == {}, "the table is not created"
    upsert(con, SPEC, trades(("A", "1", 1, 1.0), ("A", "2", 1, 2.0), ("B", "1", 1, 3.0), fetched=1))
    stats = delete_keys(con, SPEC, keys(("A", "1"), ("B", "9")))
    assert stats == UpsertStats(rows=2, deleted=1)
    assert [row[:2] for row in live(con)] == [("A", "2"), ("B", "1")]


def test_duplicate_keys_keep_the_last_and_history_keeps_one_old_version(con):
    upsert(con, SPEC, trades(("A", "1", 1, 1.0), fetched=1), ctx=ctx(1, 1))
    batch = trades(("A", "1", 1, 2.0), ("A", "2", 1, 5.0), ("A", "1", 1, 3.0), ("A", "2", 1, 6.0),
                   fetched=2)  # fmt: skip
    stats = upsert(con, SPEC, batch, ctx=ctx(2, 2))
    assert stats == UpsertStats(rows=2, inserted=1, updated=1)
    assert [row[:3] for row in live(con)] == [("A", "1", 3.0), ("A", "2", 6.0)]
    assert history(con) == [("A", "1", 1.0, False, d(1), d(2), "run-2", "update", 1)]


def test_a_null_key_is_refused_before_anything_is_written(con):
    upsert(con, SPEC, trades(("A", "1", 1, 1.0), fetched=1), ctx=ctx(1, 1))
    batch = trades(("A", "1", 1, 2.0), ("A", None, 1, 3.0), fetched=2)
    with pytest.raises(ValueError, match="1 row\\(s\\) for table trades have a null key"):
        upsert(con, SPEC, batch, ctx=ctx(2, 2))
    assert live(con) == [("A", "1", 1.0, d(1), False, None, 1)]
    assert history(con) == []
