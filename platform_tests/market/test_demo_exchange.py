"""The demo exchange: deterministic trades on the demo market's prices, paged and counted."""

from datetime import UTC, date, datetime, timedelta

import pandas as pd
import pytest

from platform_pkg.market.demo import DemoMarket
from platform_pkg.market.demo_exchange import CRYPTO_SYMBOLS, DemoExchange
from platform_pkg.market.source import RequestMeter, UnknownSymbolError

NOW = datetime(2026, 11, 24, 10, 30, tzinfo=UTC)
FIRST = datetime(2026, 3, 2, tzinfo=UTC)
KEYS = {
    "id",
    "order",
    "timestamp",
    "datetime",
    "symbol",
    "side",
    "takerOrMaker",
    "price",
    "amount",
    "cost",
    "fee",
    "info",
}


def exchange(account: str = "demo", now: datetime = NOW, **kwargs) -> DemoExchange:
    return DemoExchange(account, clock=lambda: now, **kwargs)


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def test_lists_the_demo_crypto_symbols_as_ccxt_markets():
    demo = exchange()
    assert demo.symbols == CRYPTO_SYMBOLS == ("BTC-USDT", "ETH-USDT", "SOL-USDT")
    assert [demo.market(s) for s in demo.symbols] == ["BTC/USDT", "ETH/USDT", "SOL/USDT"]
    assert (demo.name, demo.id_cursor, demo.window) == ("demo", True, timedelta(days=1))


def test_unknown_symbols_raise_and_send_no_request():
    demo = exchange()
    for symbol in ("AAPL", "DOGE-USDT", "BTC/USDT"):
        with pytest.raises(UnknownSymbolError, match="does not list"):
            demo.market(symbol)
        with pytest.raises(UnknownSymbolError):
            demo.trades_from_id(symbol, None)
    assert demo.meter.total == 0
    narrow = exchange(symbols=("ETH-USDT",))
    with pytest.raises(UnknownSymbolError, match="it lists ETH-USDT"):
        narrow.trades_between("BTC-USDT", NOW - timedelta(hours=1), NOW)
    with pytest.raises(UnknownSymbolError, match="only trades"):
        exchange(symbols=("ETH-USDT", "AAPL"))


def test_same_account_same_trades_whoever_asks_whenever():
    for symbol in CRYPTO_SYMBOLS:
        trades = exchange().all_trades(symbol)
        assert trades == exchange().all_trades(symbol)
        later = exchange(now=NOW + timedelta(days=60)).all_trades(symbol)
        assert later[: len(trades)] == trades and len(later) > len(trades)


def test_accounts_trade_differently():
    for symbol in CRYPTO_SYMBOLS:
        alice, bob = exchange("alice").all_trades(symbol), exchange("bob").all_trades(symbol)
        assert [t["timestamp"] for t in alice] != [t["timestamp"] for t in bob]


def test_about_one_trade_every_two_days_never_in_the_future():
    horizon_end = datetime(2029, 3, 3, tzinfo=UTC)
    for symbol in CRYPTO_SYMBOLS:
        trades = exchange().all_trades(symbol)
        days = (NOW - FIRST).days
        assert days / 2 * 0.7 < len(trades) < days / 2 * 1.3
        assert FIRST <= datetime.fromtimestamp(trades[0]["timestamp"] / 1000, UTC)
        assert trades[-1]["timestamp"] <= ms(NOW)
        everything = exchange(now=horizon_end).all_trades(symbol)
        assert 450 < len(everything) < 650


def test_ids_are_binance_like_and_increase_with_time():
    seen: list[int] = []
    for symbol in CRYPTO_SYMBOLS:
        trades = exchange().all_trades(symbol)
        ids = [int(t["id"]) for t in trades]
        assert all(isinstance(t["id"], str) and isinstance(t["order"], str) for t in trades)
        assert min(ids) > 2**31
        assert all(a < b for a, b in zip(ids, ids[1:], strict=False))
        assert [t["timestamp"] for t in trades] == sorted(t["timestamp"] for t in trades)
        assert len({t["order"] for t in trades}) == len(trades)
        seen += ids
    assert len(set(seen)) == len(seen)
    # Ids are one stream across the account: ordered by id is ordered by time.
    by_id = sorted(
        (int(t["id"]), t["timestamp"]) for s in CRYPTO_SYMBOLS for t in exchange().all_trades(s)
    )
    assert [ts for _, ts in by_id] == sorted(ts for _, ts in by_id)


def test_the_trade_shape_is_ccxts():
    for symbol in CRYPTO_SYMBOLS:
        base, quote = symbol.split("-")
        for t in exchange().all_trades(symbol):
            assert set(t) == KEYS
            assert t["symbol"] == f"{base}/{quote}" and t["side"] in ("buy", "sell")
            moment = datetime.fromtimestamp(t["timestamp"] / 1000, UTC)
            assert t["datetime"] == moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
            assert t["amount"] > 0 and t["amount"] == round(t["amount"], 6)
            assert t["cost"] == t["price"] * t["amount"]
            assert 45 < t["cost"] < 5_500
            info = t["info"]
            assert info["symbol"] == f"{base}{quote}"
            assert (str(info["id"]), str(info["orderId"]), info["time"]) == (
                t["id"],
                t["order"],
                t["timestamp"],
            )
            assert float(info["price"]) == pytest.approx(t["price"], abs=1e-8)
            assert float(info["qty"]) == t["amount"]
            assert float(info["quoteQty"]) == pytest.approx(t["cost"], abs=1e-8)
            assert float(info["commission"]) == t["fee"]["cost"]
            assert info["commissionAsset"] == t["fee"]["currency"]
            assert info["isBuyer"] == (t["side"] == "buy")
            assert info["isMaker"] == (t["takerOrMaker"] == "maker")
        makers = [t["takerOrMaker"] for t in exchange().all_trades(symbol)]
        assert makers[:4] == ["taker", "maker", "taker", "maker"]


def test_fees_are_a_tenth_of_a_percent_binance_style():
    for symbol in CRYPTO_SYMBOLS:
        base, quote = symbol.split("-")
        for t in exchange().all_trades(symbol):
            if t["side"] == "buy":
                assert t["fee"]["currency"] == base
                assert t["fee"]["cost"] == pytest.approx(t["amount"] * 0.001, rel=1e-9, abs=1e-12)
            else:
                assert t["fee"]["currency"] == quote
                assert t["fee"]["cost"] == pytest.approx(t["cost"] * 0.001, rel=1e-9, abs=1e-12)


def test_the_position_never_goes_below_zero():
    for account in ("demo", "alice", "bob"):
        for symbol in CRYPTO_SYMBOLS:
            trades = exchange(account, now=datetime(2029, 3, 3, tzinfo=UTC)).all_trades(symbol)
            assert trades[0]["side"] == "buy"
            assert {t["side"] for t in trades} == {"buy", "sell"}
            held = 0.0
            for t in trades:
                if t["side"] == "buy":
                    held += t["amount"] - t["fee"]["cost"]
                else:
                    assert t["amount"] <= 0.6 * held + 1e-9
                    held -= t["amount"]
                assert held >= 0


def containing(candles: pd.DataFrame, moment: pd.Timestamp, step: str) -> pd.Series:
    row = candles[candles["ts"] == moment.floor(step)]
    assert len(row) == 1, f"no {step} candle contains {moment}"
    return row.iloc[0]


@pytest.mark.parametrize("now", [NOW, datetime(2029, 3, 3, tzinfo=UTC)])
@pytest.mark.parametrize("symbol", CRYPTO_SYMBOLS)
def test_prices_lie_inside_the_demo_candles(symbol, now):
    market = DemoMarket(clock=lambda: now)
    hourly = market.candles(symbol, "1h", FIRST, now)
    daily = market.candles(symbol, "1d", FIRST, now)
    trades = exchange(now=now).all_trades(symbol)
    assert len(trades) > 100
    for t in trades:
        moment = pd.Timestamp(t["timestamp"], unit="ms", tz="UTC")
        for candles, step in ((hourly, "h"), (daily, "D")):
            candle = containing(candles, moment, step)
            assert candle["low"] <= t["price"] <= candle["high"], (t, candle)


@pytest.mark.parametrize("symbol", CRYPTO_SYMBOLS)
def test_prices_are_the_open_candles_price_at_the_trades_moment(symbol):
    for t in exchange().all_trades(symbol)[:25]:
        moment = datetime.fromtimestamp(t["timestamp"] / 1000, UTC)
        market = DemoMarket(clock=lambda moment=moment: moment)
        hour = moment.replace(minute=0, second=0)
        candle = market.candles(symbol, "1h", hour, hour + timedelta(hours=1)).iloc[0]
        assert candle["close"] == t["price"]
        assert candle["low"] <= t["price"] <= candle["high"]
        day = market.candles(symbol, "1d", hour - timedelta(hours=hour.hour), moment).iloc[0]
        assert day["low"] <= t["price"] <= day["high"]


def test_paging_by_id_covers_exactly_what_the_exchange_holds():
    for symbol in CRYPTO_SYMBOLS:
        demo = exchange(page_limit=7)
        expected = demo.all_trades(symbol)
        got = demo.trades_from_id(symbol, None)
        assert len(got) == 7
        while True:
            page = demo.trades_from_id(symbol, got[-1]["id"])
            assert page[0] == got[-1]  # from_id is inclusive
            if len(page) == 1:
                break
            got += page[1:]
        assert got == expected
        assert demo.meter.requests["demo"] == 1 + -(-(len(expected) - 1) // 6)


def test_from_id_between_ids_starts_at_the_next_trade():
    demo = exchange(page_limit=3)
    trades = demo.all_trades("SOL-USDT")
    page = demo.trades_from_id("SOL-USDT", str(int(trades[10]["id"]) + 1))
    assert page == trades[11:14]
    assert demo.trades_from_id("SOL-USDT", str(int(trades[-1]["id"]) + 1)) == []


def test_the_clock_hides_future_trades_and_advancing_it_reveals_them():
    now = [NOW]
    demo = DemoExchange("demo", clock=lambda: now[0])
    before = demo.trades_from_id("BTC-USDT", None)
    assert before == demo.all_trades("BTC-USDT")
    now[0] = NOW + timedelta(days=14)
    after = demo.trades_from_id("BTC-USDT", before[-1]["id"])
    assert after[0] == before[-1] and len(after) > 1
    assert all(NOW < datetime.fromtimestamp(t["timestamp"] / 1000, UTC) for t in after[1:])
    assert demo.all_trades("BTC-USDT", until=NOW) == before


def test_time_queries_cover_at_most_a_day():
    demo = exchange()
    trades = demo.all_trades("ETH-USDT")
    for t in trades[:40]:
        day = datetime.fromtimestamp(t["timestamp"] / 1000, UTC).replace(hour=0, minute=0, second=0)
        expected = [u for u in trades if ms(day) <= u["timestamp"] < ms(day + timedelta(days=1))]
        assert demo.trades_between("ETH-USDT", day, day + timedelta(days=1)) == expected
    # start is inclusive, end exclusive
    moment = datetime.fromtimestamp(trades[5]["timestamp"] / 1000, UTC)
    assert demo.trades_between("ETH-USDT", moment, moment + timedelta(hours=1))[0] == trades[5]
    assert trades[5] not in demo.trades_between("ETH-USDT", moment - timedelta(hours=1), moment)
    with pytest.raises(ValueError, match="1 day"):
        demo.trades_between("ETH-USDT", NOW - timedelta(days=1, seconds=1), NOW)


def test_time_queries_are_paged_and_never_see_the_future():
    demo = exchange(page_limit=2)
    trades = demo.all_trades("BTC-USDT", until=datetime(2029, 1, 1, tzinfo=UTC))
    busy = next(
        t
        for t, u, v in zip(trades, trades[1:], trades[2:], strict=False)
        if v["timestamp"] - t["timestamp"] < 86_400_000
    )
    start = datetime.fromtimestamp(busy["timestamp"] / 1000, UTC)
    late = exchange(page_limit=2, now=start + timedelta(days=1))
    assert len(late.trades_between("BTC-USDT", start, start + timedelta(days=1))) == 2
    early = exchange(now=start)
    assert early.trades_between("BTC-USDT", start, start + timedelta(days=1)) == [busy]


def test_every_request_is_counted():
    meter = RequestMeter()
    demo = DemoExchange("demo", clock=lambda: NOW, meter=meter)
    demo.trades_from_id("BTC-USDT", None)
    demo.trades_from_id("ETH-USDT", "1")
    demo.trades_between("SOL-USDT", NOW - timedelta(hours=3), NOW)
    demo.all_trades("SOL-USDT")  # the test helper, not a request
    assert meter.requests["demo"] == 3
    with pytest.raises(ValueError):
        demo.trades_between("SOL-USDT", NOW - timedelta(days=2), NOW)
    assert meter.requests["demo"] == 4  # Binance answers an over-long window with an error


def test_the_first_day_moves_the_whole_history():
    later = DemoExchange("demo", clock=lambda: NOW, first_day=date(2026, 6, 1))
    trades = later.all_trades("BTC-USDT")
    assert trades and trades[0]["timestamp"] >= ms(datetime(2026, 6, 1, tzinfo=UTC))
    with pytest.raises(ValueError, match="first day"):
        DemoExchange("demo", first_day=date(2019, 1, 1))
