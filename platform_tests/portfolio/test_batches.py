"""Price requests grouped into ranged runs over blocks of consecutive symbols wanting the same days."""

from datetime import date, timedelta

from platform_pkg.partitions import SymbolWindow, block_range_tags, day_start, range_symbols
from platform_pkg.portfolio.batches import PriceBlock, blocks, new_partition_order
from platform_pkg.portfolio.tracking import PriceRequest

FIRST, LAST = date(2025, 6, 15), date(2026, 6, 15)


def request(symbol, data_type="prices_1d", first=FIRST, last=LAST, reason="new symbol", repair=0):
    window = SymbolWindow(symbol, day_start(first), day_start(last + timedelta(days=1)))
    return PriceRequest(data_type, window, reason, repair)


def both(symbol, **kw):
    return [request(symbol, "prices_1d", **kw), request(symbol, "prices_1h", **kw)]


def shape(result):
    return [(b.data_types, b.symbols, b.first_day, b.last_day) for b in result]


def test_one_new_symbol_is_one_run_of_both_assets():
    (block,) = blocks(both("ETH-USDT"), ["ETH-USDT"])
    assert block == PriceBlock(("prices_1d", "prices_1h"), ("ETH-USDT",), FIRST, LAST, "new symbol")
    assert block.run_key == "prices_1d+prices_1h:ETH-USDT:2025-06-15:2026-06-15"


def test_twenty_new_symbols_are_two_runs_of_ten():
    symbols = [f"S{i:02d}-USDT" for i in range(20)]
    result = blocks([r for s in symbols for r in both(s)], ["OLD", *symbols])
    assert shape(result) == [
        (("prices_1d", "prices_1h"), tuple(symbols[:10]), FIRST, LAST),
        (("prices_1d", "prices_1h"), tuple(symbols[10:]), FIRST, LAST),
    ]
    assert result[0].run_key == "prices_1d+prices_1h:S00-USDT..S09-USDT(10):2025-06-15:2026-06-15"
    assert result[0].reason == "10 symbols: new symbol"


def test_many_symbols_are_runs_of_at_most_max_symbols():
    symbols = [f"S{i:03d}" for i in range(300)]
    result = blocks([request(s) for s in symbols], symbols)
    assert [len(b.symbols) for b in result] == [25] * 12
    assert [s for b in result for s in b.symbols] == symbols


def test_only_symbols_wanting_the_same_days_share_a_run():
    earlier = FIRST - timedelta(days=30)
    requests = both("A") + both("B", first=earlier) + both("C")
    result = blocks(requests, ["A", "B", "C"])
    # A and C want the same days but B lies between them in the partitions' order.
    assert shape(result) == [
        (("prices_1d", "prices_1h"), ("A",), FIRST, LAST),
        (("prices_1d", "prices_1h"), ("B",), earlier, LAST),
        (("prices_1d", "prices_1h"), ("C",), FIRST, LAST),
    ]


def test_the_new_partitions_are_ordered_so_that_same_days_are_consecutive():
    earlier = FIRST - timedelta(days=30)
    requests = both("A") + both("B", first=earlier) + both("C")
    order = new_partition_order(["A", "B", "C"], requests)
    assert order == ["B", "A", "C"]
    assert shape(blocks(requests, order, parallel=1)) == [
        (("prices_1d", "prices_1h"), ("B",), earlier, LAST),
        (("prices_1d", "prices_1h"), ("A", "C"), FIRST, LAST),
    ]


def test_assets_wanting_different_days_get_their_own_runs():
    # The source serves hourly candles from a later day than daily ones.
    later = FIRST + timedelta(days=100)
    requests = [request("A"), request("A", "prices_1h", first=later)]
    assert shape(blocks(requests, ["A"])) == [
        (("prices_1d",), ("A",), FIRST, LAST),
        (("prices_1h",), ("A",), later, LAST),
    ]


def test_repairs_are_grouped_apart_from_first_requests_and_keep_their_attempt():
    requests = both("A", repair=2) + both("B")
    result = blocks(requests, ["A", "B"])
    assert [(b.symbols, b.repair) for b in result] == [(("A",), 2), (("B",), 0)]
    assert result[0].run_key.endswith(":repair2")


def test_a_symbol_missing_from_the_order_runs_alone():
    result = blocks(both("A") + both("B") + both("X"), ["A", "B"])
    assert sorted(b.symbols for b in result) == [("A",), ("B",), ("X",)]


def test_different_reasons_are_summarised():
    requests = [request("A", reason="new symbol"), request("B", reason="tracked again")]
    (block,) = blocks(requests, ["A", "B"], parallel=1)
    assert block.reason == "2 symbols: new symbol (and 1 more)"


def test_a_block_range_covers_the_symbols_between_its_ends():
    tags = block_range_tags("B", "D", FIRST, LAST)
    assert tags == {
        "dagster/asset_partition_range_start": "2025-06-15|B",
        "dagster/asset_partition_range_end": "2026-06-15|D",
    }
    assert range_symbols(tags, ["A", "B", "C", "D", "E"]) == {"B", "C", "D"}
    assert range_symbols(tags, ["A", "B"]) == {"B", "D"}  # an end the order lacks: the ends
    assert range_symbols({}, ["A"]) == set()
