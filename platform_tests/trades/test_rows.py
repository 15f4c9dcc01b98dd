"""Validating exchange trades into rows and rejects, and reading trade ids as integers."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime

import pandas as pd
import pytest

from platform_pkg.trades.rows import TRADE_COLUMNS, check_trades, trade_id

FETCHED = datetime(2026, 11, 24, 10, 30, tzinfo=UTC)
MS = 1_795_257_000_000  # 2026-11-21 10:30 UTC


def trade(**changes) -> dict:
    """A well-formed trade in ccxt's unified structure, with ``changes`` applied (None deletes)."""
    base = {
        "id": "3000000001",
        "order": "12000000002",
        "timestamp": MS,
        "side": "buy",
        "takerOrMaker": "taker",
        "price": 50_000.5,
        "amount": 0.25,
        "cost": 12_500.125,
        "fee": {"cost": 0.00025, "currency": "BTC"},
        "info": {"id": 3000000001, "price": "50000.50000000", "qty": "0.25000000"},
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def check(trades, integer_ids: bool = True):
    return check_trades(
        trades,
        account="binance-main",
        exchange="ccxt:binance",
        symbol="BTC-USDT",
        fetched_at=FETCHED,
        integer_ids=integer_ids,
    )


def test_a_good_trade_becomes_one_row_in_the_tables_columns():
    checked = check([trade()])
    assert list(checked.rows.columns) == list(TRADE_COLUMNS)
    assert checked.rejected.empty and checked.ids == [3_000_000_001]
    row = checked.rows.iloc[0].to_dict()
    assert row | {"ts": None, "fetched_at": None, "deleted_at": None} == {
        "account": "binance-main",
        "exchange": "ccxt:binance",
        "symbol": "BTC-USDT",
        "trade_id": "3000000001",
        "order_id": "12000000002",
        "ts": None,
        "side": "buy",
        "price": 50_000.5,
        "amount": 0.25,
        "cost": 12_500.125,
        "fee": 0.00025,
        "fee_currency": "BTC",
        "taker_or_maker": "taker",
        "raw": json.dumps(trade()["info"], sort_keys=True, separators=(",", ":")),
        "fetched_at": None,
        "is_deleted": False,
        "deleted_at": None,
    }
    assert row["ts"] == pd.Timestamp(MS, unit="ms", tz="UTC")
    assert row["fetched_at"] == pd.Timestamp(FETCHED)
    assert pd.isna(row["deleted_at"])


def test_missing_cost_and_fee_are_derived_or_zero():
    row = check([trade(cost=None, fee=None, order=None)]).rows.iloc[0]
    assert row["cost"] == 50_000.5 * 0.25 and row["fee"] == 0.0
    assert row["fee_currency"] is None and row["order_id"] is None
    assert row["side"] == "buy"
    assert check([trade(side="SELL")]).rows.iloc[0]["side"] == "sell"  # sides are lower-cased


def test_a_price_of_zero_is_kept():
    assert check([trade(price=0)]).rows.iloc[0]["price"] == 0.0


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"id": None}, "no trade id"),
        ({"id": "  "}, "no trade id"),
        ({"id": "T-17"}, "trade id 'T-17' is not an integer"),
        ({"id": "-5"}, "trade id '-5' is not an integer"),
        ({"id": "²"}, "trade id '²' is not an integer"),
        ({"timestamp": None}, "no usable time (None)"),
        ({"timestamp": "soon"}, "no usable time ('soon')"),
        ({"timestamp": True}, "no usable time (True)"),
        ({"timestamp": 0}, "no usable time (0)"),
        ({"timestamp": math.nan}, "no usable time (nan)"),
        ({"timestamp": 10**20}, "no usable time (100000000000000000000)"),
        ({"side": "short"}, "unknown side 'short'"),
        ({"side": None}, "unknown side None"),
        ({"amount": "abc"}, "amount 'abc' is not a number"),
        ({"amount": None}, "amount None is not a positive number"),
        ({"amount": 0}, "amount 0 is not a positive number"),
        ({"amount": -1.5}, "amount -1.5 is not a positive number"),
        ({"amount": math.inf}, "amount inf is not a finite number"),
        ({"price": -50_000.0}, "price -50000.0 is not a number ≥ 0"),
        ({"price": None}, "price None is not a number ≥ 0"),
        ({"price": "NaN"}, "price 'NaN' is not a finite number"),
        ({"cost": "x"}, "cost 'x' is not a number"),
        ({"fee": {"cost": "x", "currency": "BTC"}}, "fee 'x' is not a number"),
        ({"platform_error": "KeyError('price')"}, "unparseable trade: KeyError('price')"),
    ],
)
def test_a_malformed_trade_is_rejected_with_its_reason_and_its_page_is_kept(changes, reason):
    good = trade(id="3000000000")
    checked = check([good, trade(**changes)])
    assert checked.rows["trade_id"].tolist() == ["3000000000"]
    assert checked.rejected["reason"].tolist() == [reason]
    bad = trade(**changes)
    assert checked.rejected["raw"].tolist() == [
        json.dumps(bad.get("info", bad), sort_keys=True, default=str, separators=(",", ":"))
    ]


def test_rejects_keep_their_integer_id_and_time_when_they_have_them():
    checked = check([trade(id="3000000007", amount="abc"), trade(id=None, timestamp="soon")])
    assert checked.rows.empty
    assert checked.rejected["id"].tolist()[0] == 3_000_000_007
    assert pd.isna(checked.rejected["id"].tolist()[1])
    assert checked.rejected["ts"].tolist()[0] == datetime.fromtimestamp(MS / 1000, UTC)
    assert pd.isna(checked.rejected["ts"].tolist()[1])
    # max_id counts rejected trades too: the id cursor moves past them.
    assert checked.ids == [3_000_000_007] and checked.max_id == 3_000_000_007


def test_without_an_integer_cursor_any_id_is_kept_as_the_exchanges_string():
    checked = check([trade(id="T-17")], integer_ids=False)
    assert checked.rows["trade_id"].tolist() == ["T-17"] and checked.ids == []
    assert checked.max_id is None


def test_an_empty_page_gives_empty_typed_frames():
    checked = check([])
    assert checked.rows.empty and checked.rejected.empty and checked.max_id is None
    assert list(checked.rows.columns) == list(TRADE_COLUMNS)
    assert list(checked.rejected.columns) == ["ts", "raw", "reason", "id"]


def test_ids_are_compared_as_integers_not_strings():
    checked = check([trade(id="999999999"), trade(id="1000000000")])
    assert checked.max_id == 1_000_000_000  # "999999999" > "1000000000" as strings


@pytest.mark.parametrize(
    ("raw", "number"),
    [
        ("3000000001", 3_000_000_001),
        (3_000_000_001, 3_000_000_001),
        (" 42 ", 42),
        ("0", 0),
        ("007", 7),
        ("99999999999999999999", 99_999_999_999_999_999_999),
        (None, None),
        ("", None),
        ("-3", None),
        (-3, None),
        ("1.5", None),
        (5.0, None),
        ("1e3", None),
        ("abc", None),
        ("²", None),  # isdigit() says yes; int() raises
        ("١٢٣", None),  # Arabic-Indic digits: not Binance's id
        (True, None),
        (False, None),
    ],
)
def test_trade_id_reads_only_ascii_digit_ids(raw, number):
    assert trade_id({"id": raw}) == number


def test_trade_id_of_a_trade_without_an_id_is_none():
    assert trade_id({}) is None
