"""The demo wallet: a deterministic DeBank-shaped history, paged by start_time, paid in units."""

import math
import time
from collections import Counter
from datetime import UTC, date, datetime, timedelta

import pytest

from platform_pkg.market.demo_wallet import DEMO_CHAINS, DemoWallet, _generate
from platform_pkg.market.source import RequestMeter
from platform_pkg.wallets.source import UnitsExhausted, WalletSource

NOW = datetime(2026, 11, 24, 10, 30, tzinfo=UTC)
FIRST = datetime(2026, 3, 2, tzinfo=UTC)
END = datetime(2029, 3, 2, tzinfo=UTC)
ADDRESS = "0x5853ed4f26a3fcea565b3fbc698bb19cdf6deb85"
ITEM_KEYS = {
    "id",
    "chain",
    "time_at",
    "cate_id",
    "project_id",
    "is_scam",
    "other_addr",
    "cex_id",
    "sends",
    "receives",
    "token_approve",
    "tx",
}
TX_KEYS = {
    "eth_gas_fee",
    "usd_gas_fee",
    "from_addr",
    "to_addr",
    "name",
    "params",
    "status",
    "value",
    "selector",
}
TOKEN_KEYS = {
    "id",
    "chain",
    "name",
    "symbol",
    "optimized_symbol",
    "decimals",
    "is_core",
    "is_verified",
    "price",
    "time_at",
}


def wallet(now: datetime = NOW, **kwargs) -> DemoWallet:
    return DemoWallet(clock=lambda: now, **kwargs)


def walk(demo: DemoWallet, address: str, chains) -> tuple[list[dict], int]:
    """Pages as a sync would: next start_time = floor(oldest time_at) + 1, de-duplicated."""
    seen: set[tuple[str, str]] = set()
    out: list[dict] = []
    start, duplicates = None, 0
    while True:
        page = demo.history(address, chains, start)
        assert len(page.items) <= demo.page_limit
        for item in page.items:
            assert start is None or item["time_at"] < start
            key = (item["chain"], item["id"])
            if key in seen:
                duplicates += 1
            else:
                seen.add(key)
                out.append(item)
        if len(page.items) < demo.page_limit:
            return out, duplicates
        following = math.floor(min(i["time_at"] for i in page.items)) + 1
        assert start is None or following < start
        start = following


def token_ids(item: dict) -> set[str]:
    moves = item["sends"] + item["receives"] + [item["token_approve"] or {}]
    return {m["token_id"] for m in moves if m}


def test_implements_the_wallet_source_interface():
    demo: WalletSource = wallet()
    assert (demo.name, demo.page_limit, demo.units_balance()) == ("demo", 20, 1_000_000.0)
    assert isinstance(demo.meter, RequestMeter)
    assert set(DEMO_CHAINS) == {"eth", "arb"}


def test_same_address_same_history_whoever_asks_whenever():
    items = wallet().all_items(ADDRESS)
    assert items == wallet().all_items(ADDRESS) == wallet().all_items("0x" + ADDRESS[2:].upper())
    assert wallet().history(ADDRESS, None, None) == wallet().history(ADDRESS, None, None)
    later = wallet(NOW + timedelta(days=30)).all_items(ADDRESS)
    assert later[-len(items) :] == items and len(later) > len(items)
    other = wallet().all_items("0x" + "1" * 40)
    assert [i["time_at"] for i in other] != [i["time_at"] for i in items]


def test_about_three_a_day_per_chain_from_the_first_day():
    days = (NOW - FIRST) / timedelta(days=1)
    for chain in DEMO_CHAINS:
        items = wallet().all_items(ADDRESS, [chain])
        assert {i["chain"] for i in items} == {chain}
        assert 3 * days * 0.85 < len(items) < 3 * days * 1.15
        assert FIRST.timestamp() < items[-1]["time_at"] <= items[0]["time_at"] <= NOW.timestamp()
        everything = wallet(END).all_items(ADDRESS, [chain])
        assert 2_900 < len(everything) < 3_700


def test_items_have_debanks_shape():
    ids = set()
    for item in wallet().all_items(ADDRESS):
        assert set(item) == ITEM_KEYS and set(item["tx"]) == TX_KEYS
        assert item["id"].startswith("0x") and len(item["id"]) == 66
        int(item["id"], 16)
        ids.add(item["id"])
        assert isinstance(item["time_at"], float) and item["time_at"] == int(item["time_at"])
        assert item["cate_id"] in ("send", "receive", "approve", None)
        assert item["project_id"] in (None, "uniswap3") and item["cex_id"] is None
        assert item["other_addr"].startswith("0x") and len(item["other_addr"]) == 42
        tx = item["tx"]
        assert tx["eth_gas_fee"] > 0 and tx["usd_gas_fee"] >= 0 and tx["status"] in (0, 1)
        assert tx["params"] == [] and tx["selector"].startswith("0x")
        for send in item["sends"]:
            assert set(send) == {"amount", "to_addr", "token_id"} and send["amount"] > 0
        for receive in item["receives"]:
            assert set(receive) == {"amount", "from_addr", "token_id"} and receive["amount"] > 0
        if item["cate_id"] == "send":
            assert item["sends"] and not item["receives"] and tx["from_addr"] == ADDRESS
        if item["cate_id"] == "receive":
            assert item["receives"] and not item["sends"] and tx["from_addr"] != ADDRESS
        if item["cate_id"] == "approve":
            assert item["token_approve"]["spender"] == item["other_addr"]
        else:
            assert item["token_approve"] is None
    assert len(ids) == len(wallet().all_items(ADDRESS))


def test_mostly_sends_and_receives_of_eth_and_demo():
    for chain in DEMO_CHAINS:
        spec = DEMO_CHAINS[chain]
        items = wallet().all_items(ADDRESS, [chain])
        kinds = Counter(
            (i["cate_id"], m["token_id"]) for i in items for m in i["sends"] + i["receives"]
        )
        plain = sum(
            kinds[(c, t)] for c in ("send", "receive") for t in (spec.native, spec.demo_token)
        )
        assert plain > 0.7 * len(items)
        assert all(
            kinds[(c, t)] > 20 for c in ("send", "receive") for t in (spec.native, spec.demo_token)
        )
        assert items[-1]["cate_id"] == "receive"


@pytest.mark.parametrize("address", [ADDRESS, "0x" + "a" * 40, "0x" + "1" * 40])
def test_eth_and_demo_held_never_go_negative_gas_included(address):
    for chain, spec in DEMO_CHAINS.items():
        held: Counter[str] = Counter()
        gas_paid = 0
        for item in reversed(wallet(END).all_items(address, [chain])):
            for receive in item["receives"]:
                held[receive["token_id"]] += receive["amount"]
            for send in item["sends"]:
                held[send["token_id"]] -= send["amount"]
            if item["tx"]["from_addr"] == address:
                held[spec.native] -= item["tx"]["eth_gas_fee"]
                gas_paid += 1
            assert held[spec.native] >= 0 and held[spec.demo_token] >= 0, item
        assert gas_paid > 500 and held[spec.native] > 0


def test_failed_transactions_move_nothing_but_pay_gas():
    items = wallet().all_items(ADDRESS)
    failed = [i for i in items if i["tx"]["status"] == 0]
    assert len(items) / 40 < len(failed) < len(items) / 10
    for item in failed:
        assert item["sends"] == [] and item["receives"] == []
        assert item["tx"]["from_addr"] == ADDRESS and item["tx"]["eth_gas_fee"] > 0
        assert not item["is_scam"]


def test_scam_airdrops_are_flagged_junk_receives():
    page_tokens = {}
    demo = wallet(page_limit=20)
    items = demo.all_items(ADDRESS)
    scams = [i for i in items if i["is_scam"]]
    assert len(items) / 25 < len(scams) < len(items) / 6
    for item in scams:
        assert item["cate_id"] == "receive" and item["sends"] == []
        (receive,) = item["receives"]
        assert receive["token_id"] == DEMO_CHAINS[item["chain"]].junk_token
        assert item["tx"]["from_addr"] != ADDRESS
    for item in items:
        if item["is_scam"]:
            newest = demo.history(ADDRESS, [item["chain"]], int(item["time_at"]) + 1)
            page_tokens.update(newest.tokens)
            break
    junk = [t for t in page_tokens.values() if t["symbol"] == "VISIT-CLAIM.XYZ"]
    assert junk and junk[0]["price"] == 0 and not junk[0]["is_verified"]


def test_some_transactions_share_a_second_never_three():
    for chain in DEMO_CHAINS:
        times = [i["time_at"] for i in wallet(END).all_items(ADDRESS, [chain])]
        pairs = sum(a == b for a, b in zip(times, times[1:], strict=False))
        assert len(times) / 10 < pairs < len(times) / 5
        assert not any(a == b == c for a, b, c in zip(times, times[1:], times[2:], strict=False))


@pytest.mark.parametrize("chains", [None, ["eth"], ["arb"], ["arb", "eth"]])
def test_paging_by_start_time_covers_exactly_what_the_wallet_holds(chains):
    straddled = 0
    for limit in (5, 7, 20):
        demo = wallet(page_limit=limit)
        items, duplicates = walk(demo, ADDRESS, chains)
        assert items == demo.all_items(ADDRESS, chains)
        assert demo.meter.requests["demo-wallet"] > len(items) / limit
        straddled += duplicates
    assert straddled > 0  # some page ended between two transactions of one second


def test_a_same_second_pair_can_straddle_a_page_boundary():
    demo = wallet(page_limit=7)
    first = demo.history(ADDRESS, ["eth"], None).items
    start = int(first[-1]["time_at"])
    for _ in range(200):
        page = demo.history(ADDRESS, ["eth"], start)
        last = page.items[-1]
        after = demo.history(ADDRESS, ["eth"], int(last["time_at"]) + 1).items
        if after[0] == last and after[1]["time_at"] == last["time_at"]:
            assert after[1] not in page.items
            return
        start = int(last["time_at"])
    pytest.fail("no page boundary fell inside a second")


def test_pages_are_newest_first_and_strictly_before_start_time():
    demo = wallet()
    items = demo.all_items(ADDRESS)
    pivot = items[100]["time_at"]
    page = demo.history(ADDRESS, None, int(pivot))
    assert page.items == [i for i in items if i["time_at"] < pivot][:20]
    times = [i["time_at"] for i in page.items]
    assert times == sorted(times, reverse=True)
    assert demo.history(ADDRESS, None, int(FIRST.timestamp())).items == []


def test_the_clock_hides_the_future():
    demo = wallet()
    future = demo.history(ADDRESS, None, int((NOW + timedelta(days=400)).timestamp()))
    assert future.items == demo.history(ADDRESS, None, None).items == demo.all_items(ADDRESS)[:20]
    assert max(i["time_at"] for i in future.items) <= NOW.timestamp()
    later = wallet(NOW + timedelta(days=3))
    fresh = [i for i in later.all_items(ADDRESS) if i["time_at"] > NOW.timestamp()]
    assert 9 < len(fresh) < 30
    assert later.all_items(ADDRESS, until=NOW) == demo.all_items(ADDRESS)


def test_chain_filter():
    demo = wallet()
    both = demo.all_items(ADDRESS)
    for chain in DEMO_CHAINS:
        assert demo.all_items(ADDRESS, [chain]) == [i for i in both if i["chain"] == chain]
        page = demo.history(ADDRESS, [chain], None)
        assert {i["chain"] for i in page.items} == {chain}
    assert {i["chain"] for i in demo.history(ADDRESS, None, None).items} <= set(DEMO_CHAINS)
    assert demo.all_items(ADDRESS, ["eth", "arb"]) == both
    assert demo.history(ADDRESS, ["bsc"], None).items == []
    assert demo.history(ADDRESS, [], None).items == []


def test_tokens_name_every_token_a_page_references():
    demo = wallet(page_limit=20)
    start = None
    symbols = set()
    for _ in range(40):
        page = demo.history(ADDRESS, None, start)
        referenced = {t for item in page.items for t in token_ids(item)}
        assert set(page.tokens) == referenced
        for token_id, token in page.tokens.items():
            assert set(token) == TOKEN_KEYS and token["id"] == token_id
            assert token["chain"] in DEMO_CHAINS
            symbols.add(token["symbol"])
        start = math.floor(page.items[-1]["time_at"]) + 1
    assert symbols == {"ETH", "DEMO", "VISIT-CLAIM.XYZ"}
    natives = wallet().history(ADDRESS, None, None).tokens
    eth = [t for t in natives.values() if t["symbol"] == "ETH"]
    assert all(t["is_core"] and t["price"] > 0 and t["id"] in ("eth", "arb") for t in eth)


def test_each_call_costs_units_and_the_balance_is_free():
    demo = wallet(units_per_call=5.0, balance=12.0)
    demo.history(ADDRESS, None, None)
    demo.history(ADDRESS, ["eth"], None)
    assert demo.units_balance() == demo.units_balance() == 2.0
    with pytest.raises(UnitsExhausted):
        demo.history(ADDRESS, None, None)
    assert demo.units_balance() == 2.0
    assert demo.meter.requests["demo-wallet"] == 2 and demo.meter.units["demo-wallet"] == 10.0
    demo.all_items(ADDRESS)
    assert demo.meter.total == 2


def test_generated_once_fast_and_cached():
    started = time.perf_counter()
    table = _generate("0x" + "fa57" * 10, "eth", date(2026, 3, 2))
    assert time.perf_counter() - started < 0.5
    assert len(table.seconds) > 3_000
    demo = wallet()
    demo.history(ADDRESS, None, None)
    misses = _generate.cache_info().misses
    for start in (None, int(NOW.timestamp()) - 86_400, int(NOW.timestamp()) - 90 * 86_400):
        demo.history(ADDRESS, None, start)
    assert _generate.cache_info().misses == misses
