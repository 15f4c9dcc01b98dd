"""The fake DeBank Cloud OpenAPI through httpx: auth, strict start_time paging, units, mutations."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import httpx
import pytest

from platform_tests.fakes.debank import (
    ALL_HISTORY,
    HISTORY,
    UNITS,
    FakeDebank,
    chain_tokens,
    make_history,
)
from platform_tests.fakes.server import Fault

KEY = "AK-123"
WALLET = "0x1111111111111111111111111111111111111111"
T0 = 1_700_000_000


@pytest.fixture
def debank():
    with FakeDebank(access_key=KEY) as fake:
        yield fake


def client(fake: FakeDebank, key: str | None = KEY) -> httpx.Client:
    return httpx.Client(base_url=fake.url, headers={"AccessKey": key} if key else {})


def history(fake, start_time=None, chain="eth", key=KEY, **params) -> httpx.Response:
    query = {"id": WALLET, "chain_id": chain, **params}
    if start_time is not None:
        query["start_time"] = start_time
    with client(fake, key) as http:
        return http.get(HISTORY, params=query)


def ids(body: dict) -> list[str]:
    return [item["id"] for item in body["history_list"]]


def hold(fake: FakeDebank, count: int, **kwargs) -> list[dict]:
    items, tokens = make_history(WALLET, count, start=T0, **kwargs)
    fake.wallets[WALLET] = list(items)
    fake.tokens.update(tokens)
    return items


def test_access_key_is_checked(debank):
    hold(debank, 3)
    for key in (None, "wrong"):
        answer = history(debank, key=key)
        assert answer.status_code == 401
        assert answer.json() == {"error_code": 1, "error_msg": "invalid access key"}
    with client(debank, None) as http:
        assert http.get(UNITS).status_code == 401
    assert debank.charged == 0
    assert history(debank).status_code == 200


def test_pages_newest_first_strictly_before_start_time(debank):
    items = hold(debank, 45)
    pages, start = [], None
    while True:
        answer = history(debank, start)
        assert answer.status_code == 200
        body = answer.json()
        assert list(body) == ["cate_dict", "cex_dict", "history_list", "project_dict", "token_dict"]
        if not body["history_list"]:
            break
        times = [item["time_at"] for item in body["history_list"]]
        assert times == sorted(times, reverse=True)
        assert start is None or max(times) < start
        referenced = {
            move["token_id"]
            for item in body["history_list"]
            for move in item["sends"] + item["receives"]
        }
        assert referenced <= set(body["token_dict"])
        pages.append(ids(body))
        start = int(min(times))
    assert [len(p) for p in pages] == [20, 20, 5]
    assert sum(pages, []) == [item["id"] for item in items]
    assert len(debank.history_requests) == 4


def test_page_count_default_and_limit(debank):
    items = hold(debank, 30)
    assert ids(history(debank, page_count=5).json()) == [i["id"] for i in items[:5]]
    assert len(history(debank).json()["history_list"]) == 20
    charged = debank.charged
    for bad in ("21", "0", "ten"):
        answer = history(debank, page_count=bad)
        assert answer.status_code == 400
        assert answer.json()["error_code"] and answer.json()["error_msg"]
    assert debank.charged == charged  # refused calls cost nothing


def test_same_second_items_across_a_page_boundary(debank):
    # Pairs share a second; items 19 and 20 (newest first) are one pair, split by the page.
    items = hold(debank, 41, same_second_every=2)
    assert items[19]["time_at"] == items[20]["time_at"]
    first = history(debank).json()["history_list"]
    boundary = int(first[-1]["time_at"])
    strictly = history(debank, boundary).json()["history_list"]
    assert strictly[0]["id"] == items[21]["id"]  # items[20] shares the boundary second: skipped
    again = history(debank, boundary + 1).json()["history_list"]
    assert [i["id"] for i in again[:2]] == [items[19]["id"], items[20]["id"]]
    assert {i["time_at"] for i in again[:2]} == {float(boundary)}


def test_units_are_charged_per_call_and_403_when_exhausted():
    units = {HISTORY: 5, ALL_HISTORY: 20}
    with FakeDebank(access_key=KEY, balance=30, units_per_call=units) as fake:
        hold(fake, 5)
        with client(fake) as http:
            assert http.get(ALL_HISTORY, params={"id": WALLET}).status_code == 200
            assert history(fake).status_code == 200
            assert (fake.balance, fake.charged) == (5, 25)
            refused = http.get(ALL_HISTORY, params={"id": WALLET})
            assert refused.status_code == 403
            assert "capacity limit" in refused.json()["error_msg"]
            assert (fake.balance, fake.charged) == (5, 25)
            assert history(fake).status_code == 200
            assert history(fake).status_code == 403
        assert [(c.path, c.units, c.balance) for c in fake.charges] == [
            (ALL_HISTORY, 20, 10),
            (HISTORY, 5, 5),
            (HISTORY, 5, 0),
        ]
        assert {c.address for c in fake.charges} == {WALLET}


def test_units_endpoint_is_free(debank):
    hold(debank, 5)
    debank.set_now(T0 + 86_400)
    with client(debank) as http:
        before = http.get(UNITS).json()
        assert before == {
            "balance": 1_000_000,
            "stats": [{"usage": 0, "remains": 1_000_000, "date": "2023-11-15"}],
        }
        history(debank)
        for _ in range(3):
            after = http.get(UNITS).json()
    assert debank.charged == 5 and after["balance"] == 1_000_000 - 5
    assert after["stats"] == [{"usage": 5, "remains": 999_995, "date": "2023-11-15"}]


def test_429_comes_without_retry_after_and_costs_nothing(debank):
    hold(debank, 5)
    debank.faults.append(Fault(HISTORY, status=429, body={"error_code": 429, "error_msg": "slow"}))
    refused = history(debank)
    assert refused.status_code == 429 and "retry-after" not in refused.headers
    assert debank.charged == 0 and len(debank.history_requests) == 1
    assert history(debank).status_code == 200


def test_history_short_answers_less_than_matches(debank):
    items = hold(debank, 30)
    debank.history_short = 7
    first = history(debank).json()["history_list"]
    assert [i["id"] for i in first] == [i["id"] for i in items[:7]]
    second = history(debank, int(first[-1]["time_at"])).json()["history_list"]
    assert [i["id"] for i in second] == [i["id"] for i in items[7:14]]


def test_chain_filters(debank):
    items = hold(debank, 30, chains=("eth", "arb", "bsc"))
    arb = history(debank, chain="arb").json()
    assert ids(arb) == [i["id"] for i in items if i["chain"] == "arb"]
    assert {t["chain"] for t in arb["token_dict"].values()} == {"arb"}
    with client(debank) as http:
        two = http.get(ALL_HISTORY, params={"id": WALLET, "chain_ids": "eth,bsc"}).json()
        every = http.get(ALL_HISTORY, params={"id": WALLET, "page_count": 20}).json()
        missing = http.get(HISTORY, params={"id": WALLET})
    assert ids(two) == [i["id"] for i in items if i["chain"] in ("eth", "bsc")][:20]
    assert ids(every) == [i["id"] for i in items[:20]]
    assert missing.status_code == 400
    assert ids(history(debank, chain="matic").json()) == []


def test_mutations_key_on_chain_and_id(debank):
    items = hold(debank, 4)
    twin = {**items[1], "chain": "arb"}  # the same hash on another chain
    debank.add(twin)
    debank.set_status(items[1]["id"], "eth", 0)
    eth = history(debank).json()["history_list"]
    assert eth[1]["tx"]["status"] == 0 and items[1]["tx"]["status"] == 1  # stored copy changed
    assert history(debank, chain="arb").json()["history_list"][0]["tx"]["status"] == 1

    debank.remove(items[2]["id"], "eth")  # a reorg
    assert ids(history(debank).json()) == [items[0]["id"], items[1]["id"], items[3]["id"]]
    late = {**items[0], "id": "0x" + "ab" * 32, "time_at": items[0]["time_at"] - 1}
    debank.add(late, WALLET)
    assert ids(history(debank).json())[:2] == [items[0]["id"], late["id"]]
    with pytest.raises(KeyError):
        debank.remove(items[2]["id"], "eth")
    with pytest.raises(KeyError):
        debank.set_status(items[0]["id"], "bsc", 0)


def test_settable_clock_hides_the_future(debank):
    items = hold(debank, 10)  # one an hour from T0; items[-1] is at T0
    debank.set_now(T0 + 2 * 3600)
    assert ids(history(debank).json()) == [i["id"] for i in items[-3:]]
    assert ids(history(debank, T0 + 10 * 3600).json()) == [i["id"] for i in items[-3:]]
    debank.set_now(T0 + 5 * 3600 + 1)
    assert ids(history(debank).json()) == [i["id"] for i in items[-6:]]
    debank.set_now(None)
    assert len(history(debank).json()["history_list"]) == 10


def test_malformed_items_are_served_as_stored(debank):
    items = hold(debank, 6)
    no_time = {"id": "0x" + "01" * 32, "chain": "eth", "sends": "nonsense"}
    soon = {**items[2], "id": "0x" + "02" * 32, "time_at": "soon"}
    negative = {**items[4], "id": "0x" + "03" * 32}
    negative["receives"] = [{"amount": -5.0, "from_addr": WALLET, "token_id": "eth"}]
    stored = items[:1] + [no_time] + items[1:3] + [soon] + items[3:] + [negative]
    debank.wallets[WALLET] = stored
    page = history(debank).json()["history_list"]
    assert page == items[:1] + [no_time] + items[1:3] + [soon] + items[3:5] + [negative, items[5]]
    # ``negative`` has its own time: it sorts among the timed items (same second: stored order).


def test_make_history_is_deterministic_and_realistic():
    args = dict(chains=("eth", "arb"), start=T0, same_second_every=3, failed_every=4)
    items, tokens = make_history(WALLET, 60, scam_every=9, **args)
    assert (items, tokens) == make_history(WALLET, 60, scam_every=9, **args)
    other, _ = make_history(WALLET, 60, scam_every=9, seed=1, **args)
    assert {i["id"] for i in items}.isdisjoint(i["id"] for i in other)

    assert len({i["id"] for i in items}) == 60
    assert all(re.fullmatch(r"0x[0-9a-f]{64}", i["id"]) for i in items)
    times = [i["time_at"] for i in items]
    assert times == sorted(times, reverse=True) and all(isinstance(t, float) for t in times)
    assert sum(a == b for a, b in zip(times, times[1:], strict=False)) == 20
    assert datetime.fromtimestamp(times[-1], UTC) == datetime.fromtimestamp(T0, UTC)

    failed = [i for i in items if i["tx"]["status"] == 0]
    scams = [i for i in items if i["is_scam"]]
    assert failed and scams
    assert all(i["tx"]["from_addr"] == WALLET and i["tx"]["eth_gas_fee"] > 0 for i in failed)
    assert all(not i["sends"] and not i["receives"] for i in failed)
    junk = {chain_tokens(c)["junk"]["id"] for c in ("eth", "arb")}
    assert all(i["receives"][0]["token_id"] in junk for i in scams)
    assert all(not tokens[i["receives"][0]["token_id"]]["is_verified"] for i in scams)
    for item in items:
        if item["sends"]:
            assert item["tx"]["from_addr"] == WALLET
        for move in item["sends"] + item["receives"]:
            assert tokens[move["token_id"]]["chain"] == item["chain"]
    symbols = {t["symbol"] for t in tokens.values()}
    assert {"ETH", "USDC", "ZRKL"} <= symbols
    assert {i["cate_id"] for i in items} == {"send", "receive", "approve", None}
    assert {"eth", "arb"} <= set(tokens)


def test_make_history_without_options_has_distinct_seconds_and_no_surprises():
    items, _ = make_history(WALLET, 20, start=T0, spacing=60)
    times = [i["time_at"] for i in items]
    assert len(set(times)) == 20 and times[0] == T0 + 19 * 60
    assert all(i["tx"]["status"] == 1 and not i["is_scam"] for i in items)
