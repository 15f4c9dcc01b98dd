"""Wallet history items as onchain_transactions rows: fields, raw payload, and every reject."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime

import pandas as pd
import pytest

from platform_pkg.wallets.rows import ONCHAIN_COLUMNS, check_items
from platform_tests.fakes.debank import make_history

ADDRESS = "0x" + "5a" * 20
FETCHED = datetime(2026, 11, 24, 10, 30, tzinfo=UTC)
T0 = 1_790_000_000


def check(items, tokens=None):
    return check_items(items, tokens or {}, wallet="hot", address=ADDRESS, fetched_at=FETCHED)


@pytest.fixture(scope="module")
def history():
    return make_history(ADDRESS, 14, start=T0, failed_every=4, scam_every=7)


def test_every_well_formed_item_is_a_row(history):
    items, tokens = history
    rows, rejects = check(items, tokens)
    assert rejects.empty and list(rows.columns) == list(ONCHAIN_COLUMNS)
    assert rows["tx_id"].tolist() == [i["id"] for i in items]
    assert set(rows["wallet"]) == {"hot"} and set(rows["address"]) == {ADDRESS}
    assert set(rows["chain"]) == {"eth"}
    assert rows["ts"].tolist() == [pd.Timestamp(i["time_at"], unit="s", tz="UTC") for i in items]
    assert rows["status"].tolist() == [
        "failed" if i["tx"]["status"] == 0 else "success" for i in items
    ]
    assert rows["is_scam"].tolist() == [i["is_scam"] for i in items]
    assert {"failed", "success"} == set(rows["status"]) and rows["is_scam"].any()
    assert rows["gas_fee"].tolist() == [i["tx"]["eth_gas_fee"] for i in items]
    assert rows["usd_gas_fee"].tolist() == [i["tx"]["usd_gas_fee"] for i in items]
    for col in ("cate_id", "project_id"):
        assert [None if pd.isna(v) else v for v in rows[col]] == [i[col] for i in items]
    assert (rows["fetched_at"] == FETCHED).all()
    assert not rows["is_deleted"].any() and rows["deleted_at"].isna().all()
    assert isinstance(rows["ts"].dtype, pd.DatetimeTZDtype) and rows["is_scam"].dtype == bool


def test_raw_keeps_the_item_and_only_the_tokens_it_names(history):
    items, tokens = history
    rows, _ = check(items, tokens)
    for item, raw in zip(items, rows["raw"], strict=True):
        payload = json.loads(raw)
        assert payload["item"] == item
        named = {m["token_id"] for m in item["sends"] + item["receives"]}
        assert set(payload["tokens"]) == named
        assert all(payload["tokens"][t] == tokens[t] for t in named)


def test_a_fractional_time_keeps_its_microseconds_and_a_missing_tx_is_no_gas():
    item = {"id": "0xabc", "chain": "arb", "time_at": 1_790_000_000.25}
    rows, rejects = check([item])
    assert rejects.empty
    assert rows["ts"].iloc[0] == pd.Timestamp("2026-09-21 14:13:20.250000", tz="UTC")
    assert rows["status"].iloc[0] == "success"
    assert math.isnan(rows["gas_fee"].iloc[0]) and math.isnan(rows["usd_gas_fee"].iloc[0])
    assert json.loads(rows["raw"].iloc[0]) == {"item": item, "tokens": {}}


GOOD = {"id": "0x01", "chain": "eth", "time_at": float(T0), "sends": [], "receives": []}


def move(amount):
    return [{"amount": amount, "token_id": "eth", "to_addr": "0x2"}]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"id": None}, "no transaction id"),
        ({"id": 7}, "no transaction id"),
        ({"id": ""}, "no transaction id"),
        ({"chain": None}, "no chain"),
        ({"chain": ""}, "no chain"),
        ({"time_at": None}, "no usable time_at (None)"),
        ({"time_at": "soon"}, "no usable time_at ('soon')"),
        ({"time_at": -5.0}, "no usable time_at (-5.0)"),
        ({"time_at": 0}, "no usable time_at (0)"),
        ({"time_at": float("nan")}, "no usable time_at (nan)"),
        ({"time_at": float("inf")}, "no usable time_at (inf)"),
        ({"time_at": True}, "no usable time_at (True)"),
        ({"sends": "nonsense"}, "sends is not a list"),
        ({"receives": {"amount": 1}}, "receives is not a list"),
        ({"sends": move(None)}, "a send amount None is not a number"),
        ({"sends": move("1.5")}, "a send amount '1.5' is not a number"),
        ({"sends": move(True)}, "a send amount True is not a number"),
        ({"receives": move(-1.0)}, "a receive amount -1.0 is negative or not finite"),
        ({"receives": move(float("inf"))}, "a receive amount inf is negative or not finite"),
        ({"receives": ["not a transfer"]}, "a receive amount None is not a number"),
    ],
)
def test_malformed_items_are_rejected_with_the_reason(change, reason):
    bad = {**GOOD, "id": "0x02", **change}
    rows, rejects = check([GOOD, bad])
    assert rows["tx_id"].tolist() == ["0x01"]
    assert rejects["reason"].tolist() == [reason]
    assert json.loads(rejects["raw"].iloc[0])["item"] == json.loads(json.dumps(bad, default=str))


def test_a_reject_keeps_its_time_when_it_has_one():
    rows, rejects = check([{**GOOD, "receives": move(-1.0)}, {**GOOD, "time_at": "soon"}])
    assert rows.empty and list(rows.columns) == list(ONCHAIN_COLUMNS)
    assert rejects["ts"].tolist()[0] == datetime.fromtimestamp(T0, UTC)
    assert pd.isna(rejects["ts"].tolist()[1])


def test_zero_amounts_and_empty_transfers_are_fine():
    rows, rejects = check([{**GOOD, "sends": move(0), "receives": None}])
    assert rejects.empty and len(rows) == 1
