"""Market calendars: exchange sessions (DST, holidays, early closes), crypto, FX, futures, the demo's
own sessions, the user's calendar file, and what a fresh table must hold."""

from datetime import UTC, datetime

import exchange_calendars as xc
import pandas as pd
import pytest

from platform_pkg.market.calendars import SUFFIXES, calendar_for
from platform_pkg.market.demo import DEMO_LISTINGS, DemoMarket

XNYS = calendar_for("AAPL", "stock", "yfinance")


@pytest.fixture(autouse=True)
def _no_user_calendars(monkeypatch, tmp_path):
    monkeypatch.setenv("PLATFORM_CALENDARS", str(tmp_path / "absent.toml"))


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def utc(*texts: str) -> list[pd.Timestamp]:
    return [pd.Timestamp(t, tz="UTC") for t in texts]


def test_us_hours_follow_daylight_saving():
    friday = XNYS.expected_opens("1h", at("2025-03-07"), at("2025-03-08"))
    monday = XNYS.expected_opens("1h", at("2025-03-10"), at("2025-03-11"))
    assert friday[0] == pd.Timestamp("2025-03-07 14:30", tz="UTC") and len(friday) == 7
    assert monday[0] == pd.Timestamp("2025-03-10 13:30", tz="UTC") and len(monday) == 7
    assert str(monday.tz) == "UTC"


def test_a_us_holiday_prints_nothing():
    day = (at("2025-07-04"), at("2025-07-05"))
    assert XNYS.expected_opens("1h", *day).empty
    assert XNYS.expected_opens("1d", *day).empty
    assert not XNYS.traded_between(*day)
    assert list(XNYS.expected_opens("1d", at("2025-07-03"), at("2025-07-08"))) == utc(
        "2025-07-03", "2025-07-07"
    )


def test_an_early_close_shortens_the_last_bar():
    bars = XNYS.expected_opens("1h", at("2025-11-28"), at("2025-11-29"))
    assert list(bars) == utc(
        "2025-11-28 14:30", "2025-11-28 15:30", "2025-11-28 16:30", "2025-11-28 17:30"
    )
    assert XNYS.is_final("1h", at("2025-11-28T17:30"), at("2025-11-28T18:00"))
    assert not XNYS.is_final("1h", at("2025-11-28T17:30"), at("2025-11-28T17:59"))
    assert XNYS.is_final("1d", at("2025-11-28"), at("2025-11-28T18:00"))
    assert not XNYS.is_final("1d", at("2025-11-26"), at("2025-11-26T20:59"))


def test_crypto_trades_every_hour_and_day():
    crypto = calendar_for("BTC-USDT", "crypto", "ccxt:binance")
    assert crypto.name == "24/7"
    assert len(crypto.expected_opens("1h", at("2025-03-01"), at("2025-03-08"))) == 7 * 24
    assert len(crypto.expected_opens("1d", at("2024-01-01"), at("2025-01-01"))) == 366
    assert crypto.traded_between(at("2025-03-08T10:00"), at("2025-03-08T10:15"))
    assert crypto.newest_due("1h", at("2025-03-08T10:15")) == at("2025-03-08T09:00")


def test_fx_closes_for_the_weekend_and_reopens_sunday_evening():
    fx = calendar_for("EURUSD=X", "fx", "yfinance")
    assert fx.name == "FX 24x5"
    assert fx.expected_opens("1h", at("2025-06-14"), at("2025-06-15")).empty  # Saturday
    assert not fx.traded_between(at("2025-06-14"), at("2025-06-15"))
    sunday = fx.expected_opens("1h", at("2025-06-15"), at("2025-06-16"))
    assert list(sunday) == utc("2025-06-15 21:00", "2025-06-15 22:00", "2025-06-15 23:00")
    friday = fx.expected_opens("1h", at("2025-06-13"), at("2025-06-14"))
    assert friday[-1] == pd.Timestamp("2025-06-13 20:00", tz="UTC")  # 17:00 New York, EDT
    week = fx.expected_opens("1d", at("2025-06-09"), at("2025-06-16"))
    assert list(week.day_of_week) == [0, 1, 2, 3, 4]
    assert fx.is_final("1d", at("2025-06-13"), at("2025-06-13T21:00"))


def test_futures_trade_cme_sessions_on_the_hour():
    gold = calendar_for("GC=F", None, "yfinance")
    assert gold.name == "CMES"
    # Independence Day: Globex closes at 12:00 Chicago and opens again Sunday evening.
    bars = gold.expected_opens("1h", at("2025-07-04"), at("2025-07-07"))
    assert bars[0] == pd.Timestamp("2025-07-04 00:00", tz="UTC")
    assert bars[16] == pd.Timestamp("2025-07-04 16:00", tz="UTC")
    assert list(bars[17:]) == utc(*(f"2025-07-06 {h}:00" for h in (22, 23)))
    assert (bars.minute == 0).all()
    assert list(gold.expected_opens("1d", at("2025-07-03"), at("2025-07-08"))) == utc(
        "2025-07-03", "2025-07-04", "2025-07-07"
    )
    assert not gold.traded_between(at("2025-07-05"), at("2025-07-06"))
    # A regular day pauses for maintenance 16:00-17:00 Chicago (21:00 UTC in summer): no bar.
    tuesday = gold.expected_opens("1h", at("2025-07-08"), at("2025-07-09"))
    assert len(tuesday) == 23 and pd.Timestamp("2025-07-08 21:00", tz="UTC") not in tuesday


def test_stock_exchanges_by_ticker_suffix():
    assert calendar_for("VOD.L", "stock").name == "XLON"
    assert calendar_for("SAP.DE", "stock").name == "XETR"
    assert calendar_for("7203.T", "stock").name == "XTKS"
    assert calendar_for("NEWCO", "stock").name == "XNYS"
    assert calendar_for("ENI.MI", "stock").name == "XMIL"
    known = set(xc.get_calendar_names())
    assert set(SUFFIXES.values()) <= known
    # Tokyo's lunch break: the morning's last bar stops at 11:30, the afternoon starts at 12:30.
    tokyo = calendar_for("7203.T", "stock").expected_opens("1h", at("2025-06-13"), at("2025-06-14"))
    assert list(tokyo) == utc(*(f"2025-06-13 {t}" for t in ("00:00", "01:00", "02:00")),
                              *(f"2025-06-13 {t}" for t in ("03:30", "04:30", "05:30")))  # fmt: skip


def test_the_user_extends_the_map_with_a_toml_file(monkeypatch, tmp_path):
    path = tmp_path / "calendars.toml"
    path.write_text('[suffixes]\n".XX" = "XMIL"\n\n[symbols]\n"ASML" = "XAMS"\n"ACME" = "24/7"\n')
    monkeypatch.setenv("PLATFORM_CALENDARS", str(path))
    assert calendar_for("FOO.XX", "stock").name == "XMIL"
    assert calendar_for("ASML", "stock").name == "XAMS"
    assert calendar_for("ACME", "stock").name == "24/7"
    path.write_text('[symbols]\n"ASML" = "LSE"\n')  # an alias resolves to its calendar
    assert calendar_for("ASML", "stock").name == "XLON"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[symbols]\n"ASML" = "XNOPE"\n', "\\[symbols\\] 'ASML' = 'XNOPE' is not a calendar"),
        ('[suffixes]\nMI = "XMIL"\n', "\\[suffixes\\] 'MI': a suffix is a dot"),
        ('[exchanges]\n"ASML" = "XAMS"\n', "unknown entry 'exchanges'"),
        ("[symbols\n", "not a valid TOML file"),
    ],
)
def test_a_bad_calendar_file_names_the_file_and_the_entry(monkeypatch, tmp_path, text, message):
    path = tmp_path / "calendars.toml"
    path.write_text(text)
    monkeypatch.setenv("PLATFORM_CALENDARS", str(path))
    with pytest.raises(ValueError, match=message) as raised:
        calendar_for("ASML", "stock")
    assert str(path) in str(raised.value)


@pytest.mark.parametrize("symbol", ["AAPL", "EURUSD=X", "GC=F", "BTC-USDT"])
def test_the_demo_calendar_matches_the_demo_candles(symbol):
    start, end = at("2026-10-26"), at("2026-11-23")
    market = DemoMarket(clock=lambda: at("2026-12-01"))
    calendar = calendar_for(symbol, None, "demo")
    assert calendar.name == f"demo:{DEMO_LISTINGS[symbol].asset_class}"
    for interval in ("1h", "1d"):
        candles = market.candles(symbol, interval, start, end)
        assert list(calendar.expected_opens(interval, start, end)) == list(candles["ts"])


def test_the_demo_sessions_stay_with_the_demo():
    window = (at("2025-03-10T13:30"), at("2025-03-10T13:45"))  # New York opened at 13:30 UTC
    assert not calendar_for("AAPL", "stock", "demo").traded_between(*window)  # demo: 14:00
    assert calendar_for("AAPL", "stock", "yfinance").traded_between(*window)
    assert calendar_for("NEWCO", "stock", "demo").name == "XNYS"  # not a demo listing


def test_newest_due_before_the_monday_open_is_fridays_last_bar():
    monday = at("2025-03-10T12:00")
    assert XNYS.newest_due("1h", monday) == at("2025-03-07T20:30")
    assert XNYS.newest_due("1d", monday) == at("2025-03-07T00:00")
    assert XNYS.newest_due("1d", at("2025-03-10T19:59")) == at("2025-03-07T00:00")
    assert XNYS.newest_due("1d", at("2025-03-10T20:00")) == at("2025-03-10T00:00")  # EDT close
    assert XNYS.newest_due("1h", at("1990-01-01")) is None  # before the calendar: none, no error


def test_ranges_outside_the_calendar_are_empty_not_errors():
    assert XNYS.expected_opens("1h", at("1980-01-01"), at("1980-02-01")).empty
    assert XNYS.expected_opens("1d", at("2100-01-01"), at("2100-02-01")).empty
    assert not XNYS.traded_between(at("2100-01-01"), at("2100-02-01"))
    with pytest.raises(ValueError, match="unknown interval"):
        XNYS.expected_opens("5m", at("2025-01-01"), at("2025-01-02"))
