"""The fake Binance's signed spot myTrades through the real ccxt: paging, windows, errors, faults."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request
from decimal import Decimal

import ccxt
import pytest

from platform_pkg.market.ccxt_source import CcxtSource
from platform_pkg.market.demo import DemoMarket
from platform_pkg.market.source import RequestMeter
from platform_tests.conftest import NOW
from platform_tests.fakes.binance import FakeBinance, make_trades
from platform_tests.fakes.market import real_market
from platform_tests.fakes.server import HTML_503, Fault

KEY, SECRET = "KEY-123", "SHH-456"
T0 = 1_795_000_000_000
HOUR, DAY = 3_600_000, 86_400_000
INTERNAL = {
    "code": -1001,
    "msg": "Internal error; unable to process your request. Please try again.",
}


@pytest.fixture
def binance():
    with FakeBinance(DemoMarket(clock=lambda: NOW), api_key=KEY, api_secret=SECRET) as fake:
        yield fake


def source(fake, tmp_path, secret=SECRET) -> CcxtSource:
    market = real_market(
        tmp_path,
        crypto_source="ccxt",
        crypto_fallback="none",
        ccxt_api_url=fake.url,
        ccxt_api_key=KEY,
        ccxt_api_secret=secret,
    )
    return market.source_for("BTC-USDT", RequestMeter())


def ids(trades) -> list[str]:
    return [t["id"] for t in trades]


def stored_ids(rows) -> list[str]:
    return [str(r["id"]) for r in rows]


def signed_get(fake, query: str, secret: str = SECRET) -> tuple[int, object]:
    """A myTrades request signed by hand, for what ccxt never sends."""
    signature = hmac.new(secret.encode(), query.encode(), hashlib.sha256).hexdigest()
    url = f"{fake.url}/api/v3/myTrades?{query}&signature={signature}"
    request = urllib.request.Request(url, headers={"X-MBX-APIKEY": KEY})
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_from_id_pages_give_exactly_the_stored_trades(binance, tmp_path):
    stored = make_trades("BTCUSDT", 47, start_ms=T0, same_ms_every=4)
    binance.trades["BTCUSDT"] = stored
    exchange = source(binance, tmp_path).exchange
    got, from_id = [], stored[0]["id"]
    while True:
        page = exchange.fetch_my_trades("BTC/USDT", limit=10, params={"fromId": from_id})
        got += page
        if len(page) < 10:
            break
        from_id = int(page[-1]["id"]) + 1
    assert [t["info"] for t in got] == stored
    sent = binance.trade_requests
    expected = [stored[0]["id"]] + [stored[i]["id"] + 1 for i in (9, 19, 29, 39)]
    assert [r.query["fromId"] for r in sent] == [str(i) for i in expected]
    assert all(r.method == "GET" and r.query["limit"] == "10" for r in sent)
    assert not any({"signature", "startTime", "endTime"} & set(r.query) for r in sent)
    # fromId is inclusive; between two ids it starts at the next one.
    at = exchange.fetch_my_trades("BTC/USDT", limit=2, params={"fromId": stored[10]["id"]})
    assert ids(at) == stored_ids(stored[10:12])
    after = exchange.fetch_my_trades("BTC/USDT", limit=2, params={"fromId": stored[10]["id"] + 1})
    assert ids(after) == stored_ids(stored[11:13])


def test_ids_above_2_31_come_back_as_strings_and_compare_as_integers(binance, tmp_path):
    binance.trades["BTCUSDT"] = make_trades("BTCUSDT", 3, first_id=3_000_000_005, start_ms=T0)
    exchange = source(binance, tmp_path).exchange
    first = exchange.fetch_my_trades("BTC/USDT", limit=1, params={"fromId": 3_000_000_005})
    assert ids(first) == ["3000000005"]
    assert first[0]["order"] == str(binance.trades["BTCUSDT"][0]["orderId"])
    assert binance.trade_requests[-1].query["fromId"] == "3000000005"
    # Ids crossing from 9 to 10 digits: "999999999" > "1000000000" as text, not as numbers.
    stored = make_trades("BTCUSDT", 12, first_id=999_999_990, start_ms=T0)
    binance.trades["BTCUSDT"] = stored
    got = exchange.fetch_my_trades("BTC/USDT", params={"fromId": 1_000_000_000})
    assert ids(got) == stored_ids(r for r in stored if r["id"] >= 1_000_000_000)


def test_a_window_longer_than_24_hours_is_refused(binance, tmp_path):
    binance.trades["BTCUSDT"] = make_trades("BTCUSDT", 30, start_ms=T0, step_ms=HOUR)
    exchange = source(binance, tmp_path).exchange
    with pytest.raises(ccxt.BadRequest, match="-1127"):
        exchange.fetch_my_trades("BTC/USDT", since=T0, params={"until": T0 + DAY + 1})
    assert len(exchange.fetch_my_trades("BTC/USDT", since=T0, params={"until": T0 + DAY})) == 25


def test_window_ends_are_both_inclusive(binance, tmp_path):
    stored = make_trades("BTCUSDT", 40, start_ms=T0, step_ms=HOUR)
    binance.trades["BTCUSDT"] = stored
    exchange = source(binance, tmp_path).exchange

    def window(start=None, end=None, limit=None):
        params = {} if end is None else {"until": end}
        return ids(exchange.fetch_my_trades("BTC/USDT", since=start, limit=limit, params=params))

    first, second = window(T0 + 5 * HOUR, T0 + 10 * HOUR), window(T0 + 10 * HOUR, T0 + 15 * HOUR)
    assert first == stored_ids(stored[5:11]) and second == stored_ids(stored[10:16])
    query = binance.trade_requests[-1].query
    assert (query["startTime"], query["endTime"]) == (str(T0 + 10 * HOUR), str(T0 + 15 * HOUR))
    assert window(start=T0 + 5 * HOUR) == stored_ids(stored[5:30])  # [start, start + 24 h]
    assert window(end=T0 + 30 * HOUR) == stored_ids(stored[6:31])  # [end - 24 h, end]
    assert window(T0, T0 + 20 * HOUR, limit=3) == stored_ids(stored[:3])  # the oldest of it


def test_same_millisecond_trades_come_by_id_within_a_window(binance, tmp_path):
    stored = make_trades("BTCUSDT", 9, start_ms=T0, same_ms_every=3)
    binance.trades["BTCUSDT"] = list(reversed(stored))
    exchange = source(binance, tmp_path).exchange
    got = exchange.fetch_my_trades("BTC/USDT", since=T0, params={"until": stored[-1]["time"]})
    assert ids(got) == stored_ids(stored)
    assert [t["info"] for t in got] == stored


def test_from_id_with_a_time_is_refused(binance, tmp_path):
    binance.trades["BTCUSDT"] = make_trades("BTCUSDT", 5, start_ms=T0)
    exchange = source(binance, tmp_path).exchange
    with pytest.raises(ccxt.BadRequest, match="-1128"):
        exchange.fetch_my_trades("BTC/USDT", since=T0, params={"fromId": 3_000_000_000})
    with pytest.raises(ccxt.BadRequest, match="-1128"):
        exchange.fetch_my_trades("BTC/USDT", params={"fromId": 1, "until": T0})


def test_without_from_id_or_times_the_most_recent_come_ascending(binance, tmp_path):
    stored = make_trades("BTCUSDT", 620, start_ms=T0, seed=3)
    binance.trades["BTCUSDT"] = stored
    exchange = source(binance, tmp_path).exchange
    assert [t["info"] for t in exchange.fetch_my_trades("BTC/USDT")] == stored[-500:]
    assert "limit" not in binance.trade_requests[-1].query  # ccxt sends none by default
    assert ids(exchange.fetch_my_trades("BTC/USDT", limit=7)) == stored_ids(stored[-7:])
    assert len(exchange.fetch_my_trades("BTC/USDT", limit=1000)) == 620
    with pytest.raises(ccxt.BadRequest, match="-1130"):
        exchange.fetch_my_trades("BTC/USDT", limit=1001)


def test_order_id_filters_and_does_not_combine_with_times(binance, tmp_path):
    stored = make_trades("BTCUSDT", 30, start_ms=T0)
    binance.trades["BTCUSDT"] = stored
    exchange = source(binance, tmp_path).exchange
    order = stored[4]["orderId"]
    got = exchange.fetch_my_trades("BTC/USDT", params={"orderId": order})
    assert ids(got) == stored_ids(r for r in stored if r["orderId"] == order)
    with pytest.raises(ccxt.BadRequest, match="-1128"):
        exchange.fetch_my_trades("BTC/USDT", since=T0, params={"orderId": order})


def test_a_short_page_is_not_the_end_of_the_trades(binance, tmp_path):
    stored = make_trades("BTCUSDT", 8, start_ms=T0)
    binance.trades["BTCUSDT"] = stored
    binance.trades_short = 3
    exchange = source(binance, tmp_path).exchange
    page = exchange.fetch_my_trades("BTC/USDT", limit=10, params={"fromId": stored[0]["id"]})
    assert ids(page) == stored_ids(stored[:3])
    rest = exchange.fetch_my_trades(
        "BTC/USDT", limit=10, params={"fromId": int(page[-1]["id"]) + 1}
    )
    assert ids(rest) == stored_ids(stored[3:6])
    assert ids(exchange.fetch_my_trades("BTC/USDT", since=T0, limit=10)) == stored_ids(stored[:3])


def test_the_key_signature_and_timestamp_are_checked(binance, tmp_path):
    binance.trades["BTCUSDT"] = make_trades("BTCUSDT", 3, start_ms=T0)
    with pytest.raises(ccxt.AuthenticationError, match="-1022"):
        source(binance, tmp_path, secret="WRONG").exchange.fetch_my_trades("BTC/USDT")
    binance.api_key = "ANOTHER-KEY"
    with pytest.raises(ccxt.AuthenticationError, match="-2015"):
        source(binance, tmp_path).exchange.fetch_my_trades("BTC/USDT")
    binance.api_key = KEY
    now = int(time.time() * 1000)
    assert signed_get(binance, f"symbol=BTCUSDT&timestamp={now}")[0] == 200
    assert signed_get(binance, "symbol=BTCUSDT") == (
        400,
        {
            "code": -1102,
            "msg": "Mandatory parameter 'timestamp' was not sent, was empty/null, or malformed.",
        },
    )
    stale = signed_get(binance, f"symbol=BTCUSDT&timestamp={now - 6000}")
    assert stale[0] == 400 and stale[1]["code"] == -1021  # outside the default 5 s recvWindow
    assert signed_get(binance, f"symbol=BTCUSDT&timestamp={now - 6000}&recvWindow=60000")[0] == 200


def test_symbol_is_mandatory_and_must_be_listed(binance, tmp_path):
    exchange = source(binance, tmp_path).exchange
    with pytest.raises(ccxt.BadRequest, match="Mandatory parameter 'symbol'"):
        exchange.privateGetMyTrades({})
    with pytest.raises(ccxt.BadSymbol, match="-1121"):
        exchange.privateGetMyTrades({"symbol": "DOGEUSDT"})
    with pytest.raises(ccxt.BadRequest, match="-1100"):
        exchange.privateGetMyTrades({"symbol": "BTCUSDT", "fromId": "-5"})


def test_malformed_rows_are_served_as_stored_next_to_their_neighbours(binance, tmp_path):
    good = make_trades("BTCUSDT", 6, start_ms=T0)
    rows = [
        good[0],
        {k: v for k, v in good[1].items() if k != "id"},
        good[1],
        {**good[2], "qty": "abc"},
        {**good[3], "price": "-50000.00000000"},
        {**good[4], "time": "soon"},
        good[5],
    ]
    binance.trades["BTCUSDT"] = rows
    exchange = source(binance, tmp_path).exchange
    assert exchange.privateGetMyTrades({"symbol": "BTCUSDT"}) == rows
    # A row without an id follows the row stored before it, in fromId pages too.
    assert exchange.privateGetMyTrades({"symbol": "BTCUSDT", "fromId": good[0]["id"]}) == rows
    assert exchange.privateGetMyTrades({"symbol": "BTCUSDT", "fromId": good[1]["id"]}) == rows[2:]
    window = {"symbol": "BTCUSDT", "startTime": good[0]["time"], "endTime": good[3]["time"]}
    assert exchange.privateGetMyTrades(window) == rows[:6]  # "soon" takes the time before it
    # ccxt's own parse_trades sorts by (timestamp, id), which a time it cannot read breaks; the
    # platform's exchange parses row by row, in the order received, and keeps every row.
    parsed = exchange.fetch_my_trades("BTC/USDT")
    assert [t["info"] for t in parsed] == rows
    assert parsed[1]["id"] is None and parsed[3]["amount"] is None


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        (Fault("myTrades", 429, headers={"Retry-After": "7"}, body={"code": -1003}), "DDoS"),
        (Fault("myTrades", 418, headers={"Retry-After": "600"}, body={"code": -1003}), "DDoS"),
        (Fault("myTrades", 503, body=HTML_503, content_type="text/html"), "unavailable"),
        (Fault("myTrades", 500, body=INTERNAL), "failed"),
        (Fault("myTrades", 503, body=INTERNAL), "failed"),
    ],
)
def test_faults_reach_ccxt_as_its_exceptions(binance, tmp_path, fault, error):
    binance.trades["BTCUSDT"] = make_trades("BTCUSDT", 3, start_ms=T0)
    binance.faults.append(fault)
    exchange = source(binance, tmp_path).exchange
    expected = {
        "DDoS": ccxt.DDoSProtection,  # 418 and 429, whatever the body; never RateLimitExceeded
        "unavailable": ccxt.ExchangeNotAvailable,
        "failed": ccxt.OperationFailed,  # -1001: neither ExchangeError nor NetworkError
    }[error]
    with pytest.raises(expected) as raised:
        exchange.fetch_my_trades("BTC/USDT")
    assert isinstance(raised.value, ccxt.NetworkError) == (error != "failed")
    assert exchange.last_status == fault.status
    assert exchange.last_response_headers.get("Retry-After") == fault.headers.get("Retry-After")
    assert len(exchange.fetch_my_trades("BTC/USDT")) == 3  # the fault is used up


def test_make_trades_is_deterministic_and_well_formed():
    rows = make_trades("ETHBTC", 40, start_ms=T0, step_ms=1000, seed=7, same_ms_every=3)
    assert rows == make_trades("ETHBTC", 40, start_ms=T0, step_ms=1000, seed=7, same_ms_every=3)
    assert rows != make_trades("ETHBTC", 40, start_ms=T0, step_ms=1000, seed=8, same_ms_every=3)
    assert rows[0]["id"] == 3_000_000_000 and rows[0]["time"] == T0
    assert all(1 <= b["id"] - a["id"] <= 5 for a, b in zip(rows, rows[1:], strict=False))
    for i, (a, b) in enumerate(zip(rows, rows[1:], strict=False), start=1):
        assert b["time"] - a["time"] == (0 if (i + 1) % 3 == 0 else 1000)
    for i, row in enumerate(rows):
        assert row["isBuyer"] == (i % 3 != 2)
        asset = "BNB" if i % 10 == 9 else ("ETH" if row["isBuyer"] else "BTC")
        assert row["commissionAsset"] == asset
        for name in ("price", "qty", "quoteQty", "commission"):
            assert len(row[name].split(".")[1]) == 8 and Decimal(row[name]) > 0
        assert Decimal(row["quoteQty"]) == Decimal(row["price"]) * Decimal(row["qty"])
        assert (row["symbol"], row["orderListId"], row["isBestMatch"]) == ("ETHBTC", -1, True)
