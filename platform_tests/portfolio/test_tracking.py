"""The tracking plan: new symbols, repeat buys, earlier purchases, sold to zero, bought again."""

from datetime import UTC, date, datetime, timedelta

import pytest

from platform_pkg.market.demo import DemoMarket
from platform_pkg.portfolio.positions import SymbolHolding
from platform_pkg.portfolio.tracking import (
    REPAIR_BACKOFF,
    Calendar,
    HoldingsCursor,
    Repair,
    TrackedSymbol,
    plan_repairs,
    plan_tracking,
)
from platform_pkg.warehouse.watermarks import Coverage

CALENDAR = Calendar(first_day=date(2020, 1, 1), last_day=date(2026, 11, 24))
EARLIEST = DemoMarket().earliest


def holding(symbol, first, accounts=("broker",), asset_class="crypto"):
    return SymbolHolding(symbol, asset_class, first, tuple(accounts))


def at(day: str) -> datetime:
    return datetime.fromisoformat(day).replace(tzinfo=UTC)


def plan(previous, holdings, coverage=None, known=()):
    cov = coverage or {}
    return plan_tracking(
        previous,
        {h.symbol: h for h in holdings},
        coverage=lambda s, dt: cov.get((s, dt)),
        earliest=EARLIEST,
        calendar=CALENDAR,
        known_partitions=set(known),
    )


def spans(result):
    return [
        (r.data_type, r.window.symbol, str(r.first_day), str(r.last_day)) for r in result.requests
    ]


def test_a_new_symbol_gets_a_year_before_its_first_purchase_to_today_per_asset():
    result = plan({}, [holding("ETH-USDT", date(2026, 5, 1))])
    assert spans(result) == [
        ("prices_1d", "ETH-USDT", "2025-05-01", "2026-11-24"),
        ("prices_1h", "ETH-USDT", "2025-05-01", "2026-11-24"),
    ]
    assert result.new_partitions == ["ETH-USDT"]
    assert result.requests[0].run_key == "prices_1d:ETH-USDT:2025-05-01:2026-11-24"
    assert result.requests[0].reason == "new symbol"
    assert result.symbols["ETH-USDT"] == TrackedSymbol(date(2026, 5, 1), True, 1)


def test_the_range_is_clamped_to_the_listing_and_the_first_partition_and_says_so():
    result = plan(
        {}, [holding("SOL-USDT", date(2020, 6, 1)), holding("BTC-USDT", date(2020, 2, 1))]
    )
    assert spans(result)[0] == ("prices_1d", "SOL-USDT", "2020-04-10", "2026-11-24")
    assert spans(result)[2] == ("prices_1d", "BTC-USDT", "2020-01-01", "2026-11-24")
    notes = "\n".join(result.notes)
    assert (
        "SOL-USDT prices_1h: history wanted from 2019-06-02, clamped to 2020-04-10 (the source serves SOL-USDT 1h candles from 2020-04-10 00:00)"
        in notes
    )
    assert (
        "BTC-USDT prices_1d: history wanted from 2019-02-01, clamped to 2020-01-01 (the first date partition is 2020-01-01)"
        in notes
    )
    assert notes.count("SOL-USDT prices_1d: history wanted") == 1


def test_a_known_partition_is_not_added_again():
    assert (
        plan({}, [holding("BTC-USDT", date(2026, 1, 1))], known=["BTC-USDT"]).new_partitions == []
    )


def test_buying_more_of_a_held_symbol_changes_the_count_and_fetches_nothing():
    prev = {"BTC-USDT": TrackedSymbol(date(2026, 1, 1), True, 1)}
    cov = {
        ("BTC-USDT", dt): Coverage(at("2025-01-01"), at("2026-11-24T09:00"))
        for dt in ("prices_1d", "prices_1h")
    }
    result = plan(prev, [holding("BTC-USDT", date(2026, 1, 1), ("broker", "wallet"))], cov)
    assert result.requests == []
    assert "BTC-USDT: held in 2 account(s), was 1; no backfill" in result.notes
    assert result.symbols["BTC-USDT"].accounts == 2


def test_a_history_still_being_fetched_is_not_requested_again():
    prev = {"BTC-USDT": TrackedSymbol(date(2026, 1, 1), True, 1)}
    assert plan(prev, [holding("BTC-USDT", date(2026, 1, 1))]).requests == []


def test_an_earlier_purchase_backfills_only_the_missing_older_range():
    prev = {"BTC-USDT": TrackedSymbol(date(2026, 1, 1), True, 1)}
    cov = {
        ("BTC-USDT", "prices_1d"): Coverage(at("2025-01-01"), at("2026-11-24")),
        ("BTC-USDT", "prices_1h"): Coverage(at("2025-01-01"), at("2026-11-24T09:00")),
    }
    result = plan(prev, [holding("BTC-USDT", date(2025, 10, 1))], cov)
    assert spans(result) == [
        ("prices_1d", "BTC-USDT", "2024-10-01", "2024-12-31"),
        ("prices_1h", "BTC-USDT", "2024-10-01", "2024-12-31"),
    ]
    assert (
        result.requests[0].reason
        == "acquired on 2025-10-01, earlier than the tracked history (2025-01-01)"
    )


def test_an_earlier_purchase_inside_the_tracked_history_fetches_nothing():
    prev = {"BTC-USDT": TrackedSymbol(date(2026, 1, 1), True, 1)}
    cov = {
        ("BTC-USDT", dt): Coverage(at("2024-01-01"), at("2026-11-24"))
        for dt in ("prices_1d", "prices_1h")
    }
    assert plan(prev, [holding("BTC-USDT", date(2025, 10, 1))], cov).requests == []


def test_sold_to_zero_goes_inactive_and_bought_again_fills_the_gap_since_its_newest_candle():
    prev = {"BTC-USDT": TrackedSymbol(date(2026, 1, 1), True, 1)}
    sold = plan(prev, [holding("BTC-USDT", date(2026, 1, 1), accounts=())])
    assert sold.requests == []
    assert sold.symbols["BTC-USDT"] == TrackedSymbol(date(2026, 1, 1), False, 0)
    assert "BTC-USDT: sold to zero in every account; inactive, history kept" in sold.notes

    cov = {
        ("BTC-USDT", "prices_1d"): Coverage(at("2025-01-01"), at("2026-08-10")),
        ("BTC-USDT", "prices_1h"): Coverage(at("2025-01-01"), at("2026-08-10T13:00")),
    }
    again = plan(sold.symbols, [holding("BTC-USDT", date(2026, 1, 1))], cov)
    assert spans(again) == [
        ("prices_1d", "BTC-USDT", "2026-08-10", "2026-11-24"),
        ("prices_1h", "BTC-USDT", "2026-08-10", "2026-11-24"),
    ]
    assert again.requests[0].reason == "held again: filling the gap since 2026-08-10"


def test_a_symbol_that_leaves_the_file_goes_inactive():
    prev = {"BTC-USDT": TrackedSymbol(date(2026, 1, 1), True, 1)}
    result = plan(prev, [])
    assert result.symbols["BTC-USDT"] == TrackedSymbol(date(2026, 1, 1), False, 0)
    assert result.requests == []


def test_a_closed_position_never_tracked_is_not_fetched():
    result = plan({}, [holding("SOL-USDT", date(2026, 1, 1), accounts=())])
    assert result.requests == [] and result.new_partitions == []
    assert "SOL-USDT: no account holds it; not tracked" in result.notes


def test_a_symbol_tracked_before_the_cursor_fetches_only_what_is_missing():
    cov = {
        ("BTC-USDT", dt): Coverage(at("2025-06-01"), at("2026-11-20"))
        for dt in ("prices_1d", "prices_1h")
    }
    result = plan({}, [holding("BTC-USDT", date(2026, 1, 1))], cov)
    assert [(r.data_type, str(r.first_day), str(r.last_day)) for r in result.requests] == [
        ("prices_1d", "2025-01-01", "2025-05-31"),
        ("prices_1d", "2026-11-20", "2026-11-24"),
        ("prices_1h", "2025-01-01", "2025-05-31"),
        ("prices_1h", "2026-11-20", "2026-11-24"),
    ]


def test_the_cursor_round_trips_and_refuses_another_version():
    cursor = HoldingsCursor(
        "abc",
        {"AAPL": TrackedSymbol(date(2025, 3, 1), False, 0)},
        "2026-11-24T10:00:00+00:00",
        {"prices_1d:AAPL": Repair(2, at("2026-11-24T09:00:00"))},
        {"exchange_trades": 42},
        17,
    )
    assert HoldingsCursor.parse(cursor.dump()) == cursor
    older = (
        '{"v":1,"digest":"abc","lines":1,"symbols":{"AAPL":{"first":"2025-03-01",'
        '"active":true,"accounts":1}},"prices_checked_at":null}'
    )
    parsed = HoldingsCursor.parse(older)
    assert parsed.repairs == {}, "a cursor from before repairs still reads"
    # A version-1 cursor keeps what it tracked, and asks for the ledger to be built once.
    assert parsed.symbols == {"AAPL": TrackedSymbol(date(2025, 3, 1), True, 1)}
    assert parsed.digest is None
    assert HoldingsCursor.parse(None) == HoldingsCursor()
    with pytest.raises(ValueError, match="version"):
        HoldingsCursor.parse('{"v": 99}')


ETH = {"ETH-USDT": TrackedSymbol(date(2026, 5, 1), True, 1)}
NOON = at("2026-11-24T12:00:00")


def repairs_at(now, state, coverage=None, in_flight=(), symbols=ETH, earliest=EARLIEST):
    cov = coverage or {}
    return plan_repairs(
        symbols,
        state,
        coverage=lambda s, dt: cov.get((s, dt)),
        earliest=earliest,
        calendar=CALENDAR,
        in_flight=set(in_flight),
        now=now,
    )


def test_a_missing_history_is_asked_again_spaced_out_then_left_to_the_user():
    seen = repairs_at(NOON, {})
    assert seen.requests == [], "first sighting: the history run may just have failed"
    assert seen.repairs == {
        "prices_1d:ETH-USDT": Repair(0, NOON),
        "prices_1h:ETH-USDT": Repair(0, NOON),
    }
    assert repairs_at(NOON + timedelta(minutes=14), seen.repairs).requests == []

    state, now, keys = seen.repairs, NOON, []
    for attempt, wait in enumerate(REPAIR_BACKOFF, start=1):
        now += wait
        assert repairs_at(now - timedelta(minutes=1), state).requests == [], "not yet"
        result = repairs_at(now, state)
        assert spans(result) == [
            ("prices_1d", "ETH-USDT", "2025-05-01", "2026-11-24"),
            ("prices_1h", "ETH-USDT", "2025-05-01", "2026-11-24"),
        ]
        keys += [r.run_key for r in result.requests]
        state = result.repairs
        assert state["prices_1h:ETH-USDT"] == Repair(attempt, now)
    assert keys[-1] == "prices_1h:ETH-USDT:2025-05-01:2026-11-24:repair3"
    assert len(set(keys)) == 6, "every repair has its own run key"
    assert any("last automatic repair" in n for n in result.notes)
    assert repairs_at(now + timedelta(days=30), state).requests == [], "then no more"


def test_only_the_missing_older_stretch_is_repaired_and_a_filled_gap_is_forgotten():
    partial = {(("ETH-USDT", dt)): Coverage(at("2026-02-01"), at("2026-11-24")) for dt in
               ("prices_1d", "prices_1h")}  # fmt: skip
    state = {"prices_1d:ETH-USDT": Repair(1, NOON), "prices_1h:ETH-USDT": Repair(1, NOON)}
    result = repairs_at(NOON + timedelta(hours=1), state, partial)
    assert spans(result) == [
        ("prices_1d", "ETH-USDT", "2025-05-01", "2026-01-31"),
        ("prices_1h", "ETH-USDT", "2025-05-01", "2026-01-31"),
    ]
    full = {key: Coverage(at("2025-05-01"), cov.newest) for key, cov in partial.items()}
    done = repairs_at(NOON + timedelta(hours=2), result.repairs, full)
    assert done.requests == [] and done.repairs == {}


def test_a_run_in_flight_is_waited_for_and_inactive_symbols_are_left_alone():
    state = {"prices_1d:ETH-USDT": Repair(1, NOON)}
    later = NOON + timedelta(days=1)
    busy = repairs_at(later, state, in_flight=[("ETH-USDT", "prices_1d")])
    assert busy.requests == []
    assert busy.repairs == {
        "prices_1d:ETH-USDT": Repair(1, NOON),  # kept, not advanced: the run may fill it
        "prices_1h:ETH-USDT": Repair(0, later),  # first sighting
    }
    sold = {"ETH-USDT": TrackedSymbol(date(2026, 5, 1), False, 0)}
    assert repairs_at(NOON, {}, symbols=sold).repairs == {}


def test_a_history_reaching_its_start_never_asks_the_source():
    full = {("ETH-USDT", dt): Coverage(at("2025-05-01"), at("2026-11-24")) for dt in
            ("prices_1d", "prices_1h")}  # fmt: skip

    def no_requests(symbol, interval):
        raise AssertionError("the source was asked")

    assert repairs_at(NOON, {}, full, earliest=no_requests).repairs == {}


def test_a_history_clamped_to_the_listing_is_complete():
    # SOL-USDT is listed on the demo market from 2020-04-10: bought in 2020, its history can
    # only start there, and a history from the listing on is complete.
    sol = {"SOL-USDT": TrackedSymbol(date(2020, 6, 1), True, 1)}
    listed = DemoMarket().earliest("SOL-USDT", "1d").date()
    cov = {("SOL-USDT", dt): Coverage(at(str(listed)), at("2026-11-24")) for dt in
           ("prices_1d", "prices_1h")}  # fmt: skip
    assert repairs_at(NOON, {}, cov, symbols=sol).repairs == {}


def test_a_source_error_for_one_symbol_is_noted_and_the_others_are_repaired():
    symbols = ETH | {"AAPL": TrackedSymbol(date(2026, 5, 1), True, 1)}
    state = {f"{dt}:{s}": Repair(0, NOON) for dt in ("prices_1d", "prices_1h") for s in symbols}

    def earliest(symbol, interval):
        if symbol == "AAPL":
            raise ConnectionError("connection reset")
        return EARLIEST(symbol, interval)

    later = NOON + REPAIR_BACKOFF[0]
    result = repairs_at(later, state, symbols=symbols, earliest=earliest)
    assert [r.window.symbol for r in result.requests] == ["ETH-USDT", "ETH-USDT"]
    assert result.repairs["prices_1d:AAPL"] == Repair(0, NOON), "kept for the next check"
    assert any("AAPL prices_1d: could not ask the source" in n and "connection reset" in n
               for n in result.notes)  # fmt: skip
