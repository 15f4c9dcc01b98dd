"""Partition keys: the one parser, and symbols entering the dynamic partitions only when valid."""

from datetime import UTC, datetime

import dagster as dg
import pytest

from platform_pkg.partitions import add_symbols, partition_range_tags, windows_from_keys
from platform_pkg.symbols import InvalidSymbolError


def d(day: str) -> datetime:
    return datetime.fromisoformat(day).replace(tzinfo=UTC)


def test_a_symbols_year_is_one_window():
    keys = [f"{day}|BTC-USDT" for day in ("2024-01-01", "2024-01-02", "2024-01-03")]
    (window,) = windows_from_keys(keys)
    assert (window.symbol, window.start, window.end) == (
        "BTC-USDT",
        d("2024-01-01"),
        d("2024-01-04"),
    )


def test_one_day_of_several_symbols_is_one_window_each():
    keys = [dg.MultiPartitionKey({"date": "2024-01-01", "symbol": s}) for s in ("AAPL", "BTC-USDT")]
    assert [w.symbol for w in windows_from_keys(keys)] == ["AAPL", "BTC-USDT"]


def test_gaps_split_windows():
    keys = ["2024-01-01|AAPL", "2024-01-02|AAPL", "2024-01-05|AAPL"]
    assert [(w.start, w.end) for w in windows_from_keys(keys)] == [
        (d("2024-01-01"), d("2024-01-03")),
        (d("2024-01-05"), d("2024-01-06")),
    ]


def test_malformed_key_is_refused():
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        windows_from_keys(["BTC-USDT"])


def test_range_tags_cover_the_window():
    (window,) = windows_from_keys(["2024-01-01|AAPL", "2024-01-02|AAPL"])
    assert partition_range_tags(window) == {
        "dagster/asset_partition_range_start": "2024-01-01|AAPL",
        "dagster/asset_partition_range_end": "2024-01-02|AAPL",
    }


def test_add_symbols_validates_before_adding():
    with dg.instance_for_test() as instance:
        assert add_symbols(instance, ["btc/usdt", "AAPL"]) == ["BTC-USDT", "AAPL"]
        assert add_symbols(instance, ["AAPL"]) == []
        with pytest.raises(InvalidSymbolError, match="'\\|'"):
            add_symbols(instance, ["ETH-USDT", "BAD|KEY"])
        # Nothing of a refused batch is added.
        assert sorted(instance.get_dynamic_partitions("symbols")) == ["AAPL", "BTC-USDT"]
