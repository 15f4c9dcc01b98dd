"""Bulk upserts: inserted/updated/unchanged counts, empty batches, new columns, bad keys."""

import duckdb
import pandas as pd
import pytest

from platform_pkg.warehouse.upsert import TableSpec, table_columns, upsert

SPEC = TableSpec(
    name="prices",
    keys=("symbol", "ts"),
    columns={
        "symbol": "VARCHAR",
        "ts": "TIMESTAMPTZ",
        "close": "DOUBLE",
        "fetched_at": "TIMESTAMPTZ",
    },
    audit_columns=("fetched_at",),
)


def frame(rows, fetched="2026-01-01"):
    out = pd.DataFrame(rows, columns=["symbol", "ts", "close"])
    out["ts"] = pd.to_datetime(out["ts"], utc=True)
    out["fetched_at"] = pd.Timestamp(fetched, tz="UTC")
    return out


@pytest.fixture
def con():
    connection = duckdb.connect()
    yield connection
    connection.close()


def stored(con):
    return con.execute("SELECT symbol, ts::VARCHAR, close FROM prices ORDER BY ALL").fetchall()


def test_creates_the_table_with_declared_types(con):
    upsert(con, SPEC, frame([("A", "2026-01-01", 1.0)]))
    tz = "TIMESTAMP WITH TIME ZONE"
    assert table_columns(con, "prices") == {
        "symbol": "VARCHAR",
        "ts": tz,
        "close": "DOUBLE",
        "fetched_at": tz,
    }


def test_counts_inserted_updated_and_unchanged(con):
    first = upsert(con, SPEC, frame([("A", "2026-01-01", 1.0), ("A", "2026-01-02", 2.0)]))
    assert (first.inserted, first.updated, first.unchanged) == (2, 0, 0)
    again = upsert(
        con,
        SPEC,
        frame(
            [("A", "2026-01-01", 1.0), ("A", "2026-01-02", 2.5), ("A", "2026-01-03", 3.0)],
            fetched="2026-02-01",
        ),
    )
    assert (again.inserted, again.updated, again.unchanged) == (1, 1, 1)
    assert [r[2] for r in stored(con)] == [1.0, 2.5, 3.0]


def test_a_row_that_only_differs_in_audit_columns_is_left_alone(con):
    upsert(con, SPEC, frame([("A", "2026-01-01", 1.0)], fetched="2026-01-01"))
    stats = upsert(con, SPEC, frame([("A", "2026-01-01", 1.0)], fetched="2026-03-01"))
    assert stats.updated == 0
    assert con.execute("SELECT fetched_at::DATE::VARCHAR FROM prices").fetchall() == [
        ("2026-01-01",)
    ]


def test_an_empty_batch_changes_nothing(con):
    upsert(con, SPEC, frame([("A", "2026-01-01", 1.0)]))
    stats = upsert(con, SPEC, frame([]))
    assert stats.rows == 0 and stored(con) == [("A", "2026-01-01 00:00:00+00", 1.0)]


def test_duplicate_keys_in_a_batch_keep_the_last(con):
    stats = upsert(con, SPEC, frame([("A", "2026-01-01", 1.0), ("A", "2026-01-01", 9.0)]))
    assert stats.inserted == 1 and stored(con) == [("A", "2026-01-01 00:00:00+00", 9.0)]


def test_null_keys_are_refused_and_nothing_is_written(con):
    upsert(con, SPEC, frame([("A", "2026-01-01", 1.0)]))
    with pytest.raises(ValueError, match="1 row\\(s\\) for table prices have a null key"):
        upsert(con, SPEC, frame([(None, "2026-01-02", 1.0)]))
    assert len(stored(con)) == 1


def test_missing_key_column_is_refused(con):
    with pytest.raises(ValueError, match="lacks key column"):
        upsert(con, SPEC, pd.DataFrame({"symbol": ["A"], "close": [1.0]}))


def test_a_new_nullable_column_is_added(con):
    upsert(con, SPEC, frame([("A", "2026-01-01", 1.0)]))
    wider = frame([("A", "2026-01-02", 2.0)]).assign(adj_close=[1.9])
    upsert(con, SPEC, wider)
    assert table_columns(con, "prices")["adj_close"] == "DOUBLE"
    assert con.execute("SELECT adj_close FROM prices ORDER BY ts").fetchall() == [(None,), (1.9,)]


def test_a_batch_without_some_columns_leaves_them_untouched(con):
    upsert(con, SPEC, frame([("A", "2026-01-01", 1.0)]).assign(adj_close=[0.9]))
    upsert(con, SPEC, frame([("A", "2026-01-01", 1.5)]))
    assert con.execute("SELECT close, adj_close FROM prices").fetchall() == [(1.5, 0.9)]


def test_identifiers_must_be_plain():
    with pytest.raises(ValueError, match="plain identifier"):
        TableSpec(name="prices; DROP TABLE x", keys=("a",))
