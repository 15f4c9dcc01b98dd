"""Rows beyond the newest stored per group skip the merge: never a duplicate, never a difference.

Every case runs the same batches through a spec with an append column and through the same spec
without one (the plain merge) and requires identical tables, history, change numbers and stats.
"""

import dataclasses
import random
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise

import duckdb
import numpy as np
import pyarrow as pa
import pytest

from platform_pkg.prices.assets import prices_1h
from platform_pkg.trades.assets import exchange_trades
from platform_pkg.warehouse import upsert as upsert_module
from platform_pkg.warehouse.io_manager import table_spec
from platform_pkg.warehouse.upsert import (
    Combine,
    TableSpec,
    UpsertStats,
    WriteContext,
    upsert,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
SPEC = TableSpec(
    name="candles",
    keys=("symbol", "ts"),
    columns={
        "symbol": "VARCHAR",
        "ts": "TIMESTAMPTZ",
        "close": "DOUBLE",
        "high": "DOUBLE",
        "fetched_at": "TIMESTAMPTZ",
        "is_deleted": "BOOLEAN",
        "deleted_at": "TIMESTAMPTZ",
    },
    audit_columns=("fetched_at",),
    history="candles_history",
    valid_from="fetched_at",
    track_changes=True,
    append_column="ts",
    group_columns=("symbol",),
)
MERGE = dataclasses.replace(SPEC, append_column=None, group_columns=())
SCHEMA = pa.schema(
    [
        ("symbol", pa.large_string()),  # what pandas 3 frames give
        ("ts", pa.timestamp("us", tz="UTC")),
        ("close", pa.float64()),
        ("high", pa.float64()),
        ("fetched_at", pa.timestamp("us", tz="UTC")),
        ("is_deleted", pa.bool_()),
        ("deleted_at", pa.timestamp("us", tz="UTC")),
    ]
)


def at(hour: float) -> datetime:
    return T0 + timedelta(hours=hour)


def candles(rows, *, fetched: int = 0, deleted: bool = False, chunks: int = 1) -> pa.Table:
    """``(symbol, hour, close)`` rows (hour may be fractional), in the order given."""
    n = len(rows)
    table = pa.table(
        {
            "symbol": [r[0] for r in rows],
            "ts": [at(r[1]) for r in rows],
            "close": [float(r[2]) for r in rows],
            "high": [float(r[2]) + 1 for r in rows],
            "fetched_at": [at(1000 + fetched)] * n,
            "is_deleted": [deleted] * n,
            "deleted_at": [at(999) if deleted else None] * n,
        },
        schema=SCHEMA,
    )
    if chunks > 1 and n > 1:  # several record batches, as a concatenation of pages gives
        cuts = sorted({0, n, *random.Random(n).sample(range(1, n), min(chunks - 1, n - 1))})
        table = pa.concat_tables(table.slice(a, b - a) for a, b in pairwise(cuts))
    return table


class Twin:
    """Two warehouses fed the same writes: one through the append path, one merged."""

    def __init__(self):
        self.fast, self.slow = duckdb.connect(), duckdb.connect()
        for con in (self.fast, self.slow):
            con.execute("SET TimeZone = 'UTC'")
        self.change = 0

    def upsert(self, batch, combine=None, **kwargs) -> UpsertStats:
        self.change += 1
        ctx = WriteContext(
            change=self.change, run_id=f"run-{self.change}", now=at(2000 + self.change)
        )
        got = upsert(self.fast, SPEC, batch, combine=combine, ctx=ctx, **kwargs)
        want = upsert(self.slow, MERGE, batch, combine=combine, ctx=ctx, **kwargs)
        assert got == want
        assert self.rows(self.fast) == self.rows(self.slow)
        assert self.history(self.fast) == self.history(self.slow)
        assert self.duplicates(self.fast) == 0
        return got

    @staticmethod
    def rows(con):
        return con.execute("SELECT * FROM candles ORDER BY ALL").fetchall()

    @staticmethod
    def history(con):
        try:
            return con.execute("SELECT * FROM candles_history ORDER BY ALL").fetchall()
        except duckdb.CatalogException:
            return None

    @staticmethod
    def duplicates(con):
        return con.execute(
            "SELECT count(*) - count(DISTINCT (symbol, ts)) FROM candles"
        ).fetchall()[0][0]

    def stored(self):
        return self.fast.execute(
            "SELECT symbol, epoch(ts) / 3600 - epoch(TIMESTAMPTZ '2026-01-01 00:00:00+00') / 3600, "
            "close, _change_seq FROM candles ORDER BY symbol, ts"
        ).fetchall()


@pytest.fixture
def twin():
    pair = Twin()
    yield pair
    pair.fast.close()
    pair.slow.close()


@pytest.fixture
def beyond(monkeypatch):
    """How many rows each upsert sent past the merge."""
    counts: list[int] = []
    split = upsert_module._split

    def counting(con, spec, batch):
        beyond, rest = split(con, spec, batch)
        if spec.append_column is not None:
            counts.append(0 if beyond is None else beyond.num_rows)
        return beyond, rest

    monkeypatch.setattr(upsert_module, "_split", counting)
    return counts


# -- random batches -------------------------------------------------------------------------------


def random_batch(rng: random.Random, known: dict[tuple[str, float], float]) -> pa.Table:
    """Rows around each group's newest: equal to it, before it (stored or a gap), after it;
    revised or as stored; sometimes duplicated; new groups; sorted, shuffled or reversed; in
    pages."""
    rows = []
    for symbol in rng.sample("ABCDEF", rng.randint(1, 5)):
        hours = [h for s, h in known if s == symbol]
        newest = max(hours, default=rng.randint(0, 20))
        around = [
            newest,
            newest + 0.5,
            *(newest + k for k in range(1, 7)),
            *(newest - k for k in range(1, 9)),
        ]
        for hour in rng.sample(around, rng.randint(0, 12)):
            old = known.get((symbol, hour))
            close = old if old is not None and rng.random() < 0.5 else rng.randint(1, 9)
            rows.append((symbol, hour, close))
    if rng.random() < 0.5:  # a key twice: the last wins
        rows += [(s, h, rng.randint(1, 9)) for s, h, _ in rng.sample(rows, min(len(rows), 2))]
    order = rng.choice(["sorted", "shuffled", "reversed", "as built"])
    if order == "sorted":
        rows.sort(key=lambda r: (r[0], r[1]))
    elif order == "shuffled":
        rng.shuffle(rows)
    elif order == "reversed":
        rows.reverse()
    for symbol, hour, close in rows:
        known[(symbol, hour)] = close
    return candles(rows, fetched=rng.randint(0, 3), chunks=rng.randint(1, 3))


@pytest.mark.parametrize("seed", range(40))
def test_random_batches_store_exactly_what_the_merge_stores(twin, beyond, seed):
    rng = random.Random(seed)
    known: dict[tuple[str, float], float] = {}
    for round_ in range(6):
        batch = random_batch(rng, known)
        combine = {"high": Combine.GREATEST} if round_ % 3 == 2 else None
        twin.upsert(batch, combine=combine)
        if round_ == 2:  # some stored rows deleted, so that a re-read restores them
            for con in (twin.fast, twin.slow):
                con.execute(
                    "UPDATE candles SET is_deleted = true, deleted_at = ? WHERE hash(ts) % 3 = 0",
                    [at(1500)],
                )
    assert sum(beyond) > 0, "the append path was taken"


@pytest.mark.parametrize("seed", range(10))
def test_random_batches_inserted_as_slices_keep_the_connection_ordered(
    twin, beyond, monkeypatch, seed
):
    """Rows beyond inserted as Arrow slices, not one copy: DuckDB is told for that one insert
    that their order does not matter, and told back."""
    monkeypatch.setattr(upsert_module, "_SLICE_ROWS", 1)
    rng, known = random.Random(seed), {}
    for _ in range(6):
        twin.upsert(random_batch(rng, known))
        setting = "SELECT current_setting('preserve_insertion_order')"
        assert twin.fast.execute(setting).fetchall() == [(True,)]
    assert sum(beyond) > 0


def test_the_random_batches_take_the_append_path_often(beyond):
    """A guard on the test above: most batches send some rows past the merge."""
    sent = []
    for seed in range(40):
        pair, rng, known = Twin(), random.Random(seed), {}
        for _ in range(6):
            before = len(beyond)
            pair.upsert(random_batch(rng, known))
            sent.append(beyond[before:] != [0])
        pair.fast.close()
        pair.slow.close()
    assert sum(sent) > len(sent) / 2


# -- edge cases -----------------------------------------------------------------------------------


def test_a_key_equal_to_the_newest_stored_is_merged_not_appended(twin, beyond):
    twin.upsert(candles([("A", 1, 1), ("A", 2, 2)]))
    stats = twin.upsert(candles([("A", 2, 5), ("A", 3, 3)], fetched=1))
    assert (stats.inserted, stats.updated) == (1, 1)
    assert beyond[-1] == 1
    assert twin.stored() == [("A", 1.0, 1.0, 1), ("A", 2.0, 5.0, 2), ("A", 3.0, 3.0, 2)]
    assert [r[2] for r in twin.history(twin.fast)] == [2.0]  # the old version of hour 2


def test_an_unchanged_re_read_of_the_newest_is_left_alone(twin, beyond):
    twin.upsert(candles([("A", 1, 1), ("A", 2, 2)]))
    stats = twin.upsert(candles([("A", 1, 1), ("A", 2, 2), ("A", 3, 3)], fetched=1))
    assert (stats.inserted, stats.updated, stats.unchanged) == (1, 0, 2)
    assert beyond[-1] == 1
    assert twin.history(twin.fast) == []


def test_duplicates_beyond_the_newest_keep_the_last(twin, beyond):
    twin.upsert(candles([("A", 1, 1)]))
    stats = twin.upsert(candles([("A", 2, 2), ("A", 3, 3), ("A", 2, 7), ("A", 1, 1)]))
    assert stats == UpsertStats(rows=3, inserted=2)
    assert beyond[-1] == 2
    assert twin.stored() == [("A", 1.0, 1.0, 1), ("A", 2.0, 7.0, 2), ("A", 3.0, 3.0, 2)]


def test_duplicates_in_one_run_keep_the_last(twin):
    stats = twin.upsert(candles([("A", 1, 1), ("A", 2, 2), ("A", 2, 9), ("A", 3, 3)]))
    assert stats == UpsertStats(rows=3, inserted=3)
    assert [r[2] for r in twin.stored()] == [1.0, 9.0, 3.0]


def test_an_empty_table_takes_every_row_by_the_append_path(twin, beyond):
    stats = twin.upsert(candles([("A", 1, 1), ("B", 1, 1), ("A", 2, 2)]))
    assert stats == UpsertStats(rows=3, inserted=3)
    assert beyond == [3]


def test_a_group_with_nothing_stored_is_appended_whatever_its_times(twin, beyond):
    twin.upsert(candles([("A", 10, 1)]))
    stats = twin.upsert(candles([("B", 1, 1), ("B", 2, 2), ("A", 11, 1)]))
    assert stats == UpsertStats(rows=3, inserted=3)
    assert beyond[-1] == 3


def test_rows_before_the_newest_interleaved_with_rows_after(twin, beyond):
    twin.upsert(candles([("A", h, h) for h in (1, 3, 5)] + [("B", h, h) for h in (2, 4)]))
    mixed = [("A", 6, 6), ("A", 2, 2), ("B", 5, 5), ("A", 5, 50), ("A", 7, 7), ("B", 3, 3),
             ("A", 4, 4), ("B", 4, 4), ("A", 8, 8)]  # fmt: skip
    stats = twin.upsert(candles(mixed, fetched=1))
    assert (stats.inserted, stats.updated, stats.unchanged) == (7, 1, 1)
    assert beyond[-1] == 4  # A 6, 7, 8 and B 5


def test_microseconds_on_either_side_of_the_newest(twin, beyond):
    tick = 1 / 3_600_000_000  # one microsecond, in hours
    twin.upsert(candles([("A", 1 + tick, 1)]))
    stats = twin.upsert(candles([("A", 1, 0), ("A", 1 + tick, 2), ("A", 1 + 2 * tick, 3)]))
    assert (stats.inserted, stats.updated) == (2, 1)
    assert beyond[-1] == 1


def test_a_null_time_is_refused_as_a_null_key(twin):
    batch = candles([("A", 1, 1)]).set_column(1, "ts", pa.array([None], SCHEMA.field("ts").type))
    with pytest.raises(ValueError, match="have a null key"):
        upsert(twin.fast, SPEC, batch)
    assert upsert_module.table_columns(twin.fast, "candles") == {}


def test_two_writes_in_one_transaction_see_each_other(twin, beyond):
    for con in (twin.fast, twin.slow):
        con.execute("BEGIN TRANSACTION")
    twin.upsert(candles([("A", 1, 1), ("A", 2, 2)]))
    stats = twin.upsert(candles([("A", 2, 2), ("A", 3, 3)]))
    assert (stats.inserted, stats.unchanged) == (1, 1)
    for con in (twin.fast, twin.slow):
        con.execute("COMMIT")
    assert twin.duplicates(twin.fast) == 0


def test_nanosecond_frames_and_other_zones_stay_exact(twin):
    """A pandas frame of nanoseconds is not the exact type the append path needs: merged whole;
    an instant in another zone is the same instant."""
    twin.upsert(candles([("A", 1, 1), ("A", 2, 2)]))
    frame = candles([("A", 2, 3), ("A", 3, 3)]).to_pandas()
    frame["ts"] = frame["ts"].astype("datetime64[ns, UTC]")
    assert twin.upsert(frame).inserted == 1
    zoned = candles([("A", 3, 4), ("A", 4, 4)])
    zoned = zoned.set_column(1, "ts", zoned["ts"].cast(pa.timestamp("us", tz="America/New_York")))
    stats = twin.upsert(zoned)
    assert (stats.inserted, stats.updated) == (1, 1)


def test_times_beyond_what_python_can_hold_are_merged_whole(twin, beyond):
    twin.upsert(candles([("A", 1, 1)]))
    far = candles([("A", 1, 2), ("A", 2, 2)])
    year_10000 = 253_402_300_800_000_000  # microseconds since the epoch
    far = far.set_column(
        1, "ts", pa.array([year_10000, year_10000 + 1]).cast(SCHEMA.field("ts").type)
    )
    stats = twin.upsert(far)
    assert (stats.inserted, beyond[-1]) == (2, 0)


def test_a_batch_in_too_many_pieces_is_merged_whole(twin, beyond, monkeypatch):
    monkeypatch.setattr(upsert_module, "_MAX_RUNS", 2)
    twin.upsert(candles([("A", 1, 1), ("B", 1, 1), ("C", 1, 1)]))
    assert beyond == [0], "on an empty table every row would be beyond"


def test_overlapping_runs_without_duplicates_still_take_the_append_path(twin, beyond):
    twin.upsert(candles([("A", 1, 1)]))
    stats = twin.upsert(candles([("A", 2, 2), ("A", 4, 4), ("A", 3, 3), ("A", 5, 5)]))
    assert stats.inserted == 4 and beyond[-1] == 4


@pytest.mark.parametrize(
    ("typ", "duck", "value"),
    [
        (pa.int64(), "BIGINT", lambda h: h),
        (pa.int32(), "INTEGER", lambda h: h),
        (pa.date32(), "DATE", lambda h: date(2026, 1, 1) + timedelta(days=h)),
        (pa.timestamp("us"), "TIMESTAMP", lambda h: datetime(2026, 1, 1) + timedelta(hours=h)),
    ],
)
def test_integer_date_and_naive_append_columns(typ, duck, value, beyond):
    spec = TableSpec("t", ("k", "x"), {"k": "VARCHAR", "x": duck, "v": "DOUBLE"},
                     append_column="x", group_columns=("k",))  # fmt: skip
    plain = dataclasses.replace(spec, append_column=None, group_columns=())
    fast, slow = duckdb.connect(), duckdb.connect()

    def batch(rows):
        return pa.table({"k": [r[0] for r in rows], "x": pa.array([value(r[1]) for r in rows], typ),
                         "v": [float(r[2]) for r in rows]})  # fmt: skip

    for rows in ([("a", 1, 1), ("a", 3, 3), ("b", 2, 2)],
                 [("a", 3, 4), ("a", 4, 4), ("b", 1, 1), ("b", 2, 2), ("c", 0, 0)]):  # fmt: skip
        assert upsert(fast, spec, batch(rows)) == upsert(slow, plain, batch(rows))
        assert (
            fast.execute("SELECT * FROM t ORDER BY ALL").fetchall()
            == slow.execute("SELECT * FROM t ORDER BY ALL").fetchall()
        )
    assert beyond == [3, 2]  # a 4, c 0


def test_without_group_columns_the_newest_of_the_table_decides(beyond):
    spec = TableSpec("t", ("k", "x"), {"k": "VARCHAR", "x": "BIGINT", "v": "DOUBLE"},
                     append_column="x")  # fmt: skip
    con = duckdb.connect()
    upsert(con, spec, pa.table({"k": ["a", "b"], "x": [5, 1], "v": [1.0, 1.0]}))
    stats = upsert(con, spec, pa.table({"k": ["b", "b", "a"], "x": [2, 6, 5], "v": [2.0] * 3}))
    assert (stats.inserted, stats.updated) == (2, 1)
    assert beyond == [2, 1]  # b 6 only: b 2 is not beyond the table's newest (5)
    assert con.execute("SELECT count(*) FROM t").fetchall() == [(4,)]


def test_the_spec_refuses_an_append_column_outside_the_key():
    with pytest.raises(ValueError, match="is not a key"):
        TableSpec("t", ("k",), append_column="ts")
    with pytest.raises(ValueError, match="must be key columns"):
        TableSpec("t", ("k", "ts"), append_column="ts", group_columns=("symbol",))
    with pytest.raises(ValueError, match="must be key columns"):
        TableSpec("t", ("k", "ts"), group_columns=("k",))


def test_price_tables_declare_it_and_trades_do_not():
    prices = table_spec(dict(prices_1h.specs_by_key[prices_1h.key].metadata), "prices_1h")
    assert (prices.append_column, prices.group_columns) == ("ts", ("symbol",))
    trades = exchange_trades.specs_by_key[exchange_trades.key].metadata
    spec = table_spec(dict(trades), "exchange_trades")  # keyed on trade ids, not on ts
    assert (spec.append_column, spec.group_columns) == (None, ())


def test_a_large_append_with_re_reads_matches_the_merge(twin, beyond):
    symbols = [f"S{i:02d}" for i in range(20)]
    twin.upsert(candles([(s, h, h) for s in symbols for h in range(200)]))
    rows = [(s, h, h if h < 199 else -1) for s in symbols for h in range(197, 400)]
    stats = twin.upsert(candles(rows, fetched=1, chunks=3))
    assert (stats.inserted, stats.updated, stats.unchanged) == (20 * 200, 20, 40)
    assert beyond[-1] == 20 * 200
    assert np.array(twin.stored())[:, 3].astype(int).max() == 2
