"""When markets trade: the candles each market prints, and which calendar a symbol follows.

Real exchanges come from ``exchange-calendars`` rather than pandas-market-calendars: it gives
minute-accurate sessions with early closes and lunch breaks for 50+ exchanges, is maintained, and
is plain pandas (pandas-market-calendars wraps it for most exchanges anyway). Crypto (24/7) and
FX (24x5) follow fixed rules; the demo market keeps its own fixed UTC sessions.
"""

from __future__ import annotations

import os
import tomllib
import warnings
from dataclasses import dataclass, replace
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Protocol

import numpy as np
import pandas as pd

from platform_pkg.market.catalogue import asset_class_of
from platform_pkg.market.demo import DEMO_LISTINGS, Session
from platform_pkg.warehouse.connection import PROJECT_ROOT

HOUR_NS = 3_600_000_000_000
DAY_NS = 24 * HOUR_NS
DUE_WINDOW_NS = 30 * DAY_NS
CALENDARS_ENV = "PLATFORM_CALENDARS"
DEFAULT_CALENDARS = Path("data") / "calendars.toml"
ALWAYS_OPEN = "24/7"
FX_WEEK = "FX 24x5"
FUTURES = "CMES"  # CME Globex; exchange-calendars aliases CME, CBOT, COMEX and NYMEX to it
STOCKS = "XNYS"  # NYSE; exchange-calendars aliases XNAS to it (same hours and holidays)

# Yahoo's ticker suffix → exchange-calendars code.
SUFFIXES: dict[str, str] = {
    ".L": "XLON", ".DE": "XETR", ".F": "XFRA", ".PA": "XPAR", ".AS": "XAMS", ".BR": "XBRU",
    ".MI": "XMIL", ".MC": "XMAD", ".LS": "XLIS", ".SW": "XSWX", ".VI": "XWBO", ".ST": "XSTO",
    ".CO": "XCSE", ".HE": "XHEL", ".OL": "XOSL", ".IR": "XDUB", ".WA": "XWAR", ".PR": "XPRA",
    ".BD": "XBUD", ".AT": "ASEX", ".IS": "XIST", ".T": "XTKS", ".HK": "XHKG", ".SS": "XSHG",
    ".KS": "XKRX", ".TW": "XTAI", ".SI": "XSES", ".BO": "XBOM", ".JK": "XIDX", ".KL": "XKLS",
    ".BK": "XBKK", ".AX": "XASX", ".NZ": "XNZE", ".TO": "XTSE", ".V": "XTSX", ".SA": "BVMF",
    ".MX": "XMEX", ".SN": "XSGO", ".BA": "XBUE", ".JO": "XJSE", ".TA": "XTAE",
}  # fmt: skip


class MarketCalendar(Protocol):
    """When one market trades, as the candles it prints."""

    name: str  # e.g. "XNYS", "24/7", "FX 24x5", "CMES", "demo:stock"

    def expected_opens(self, interval: str, start: datetime, end: datetime) -> pd.DatetimeIndex:
        """UTC open times of every candle of ``interval`` ("1h" or "1d") the market prints with
        open time in [start, end), ascending, tz=UTC."""
        ...

    def traded_between(self, start: datetime, end: datetime) -> bool:
        """Whether the market was open at some moment of (start, end]."""
        ...

    def is_final(self, interval: str, candle_open: datetime, now: datetime) -> bool:
        """Whether the candle opening at candle_open has closed by now (its hour passed, or its
        session closed earlier — the last bar of a session or an early close may be shorter)."""
        ...

    def newest_due(self, interval: str, now: datetime) -> datetime | None:
        """Open time of the newest candle that is final by ``now`` (None if none in the last ~30
        days): what a fresh table must hold at least."""
        ...


@dataclass(frozen=True)
class Sessions:
    """A market's trading time as UTC nanoseconds, ascending: its trading dates (00:00 UTC) with
    the moment each date's daily candle is final, and its open stretches (a session, or its part
    before or after a lunch break)."""

    days: np.ndarray
    day_ends: np.ndarray
    opens: np.ndarray
    closes: np.ndarray


class _Calendar:
    """What every calendar derives from its sessions; subclasses say what the sessions are."""

    name: str
    on_the_hour: bool  # hourly bars on the UTC hour grid, else every hour from each open

    def sessions(self, lo: int, hi: int) -> Sessions:
        """At least every day in [lo, hi) and every stretch overlapping it."""
        raise NotImplementedError

    def expected_opens(self, interval: str, start: datetime, end: datetime) -> pd.DatetimeIndex:
        opens, _ = self._bars(interval, _ns(start), _ns(end))
        return pd.DatetimeIndex(pd.to_datetime(opens, unit="ns", utc=True))

    def traded_between(self, start: datetime, end: datetime) -> bool:
        lo, hi = _ns(start), _ns(end)
        if hi <= lo:
            return False
        s = self.sessions(lo, hi + 1)
        i = np.searchsorted(s.closes, lo, "right")  # the first stretch still open after lo
        return bool(i < len(s.opens) and s.opens[i] <= hi)

    def is_final(self, interval: str, candle_open: datetime, now: datetime) -> bool:
        at = _ns(candle_open)
        opens, ends = self._bars(interval, at, at + 1)
        # A candle off this market's grid: final once its full interval has passed.
        end = ends[0] if len(opens) and opens[0] == at else at + _step(interval)
        return bool(_ns(now) >= end)

    def newest_due(self, interval: str, now: datetime) -> datetime | None:
        at = _ns(now)
        opens, ends = self._bars(interval, at - DUE_WINDOW_NS, at + 1)
        final = np.flatnonzero(ends <= at)
        if not len(final):
            return None
        return pd.Timestamp(int(opens[final[-1]]), unit="ns", tz="UTC").to_pydatetime()

    def _bars(self, interval: str, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
        """Open times in [lo, hi) and the moment each candle is final."""
        step = _step(interval)
        if hi <= lo:
            return _EMPTY, _EMPTY
        if step == DAY_NS:
            s = self.sessions(lo, hi)
            i, j = np.searchsorted(s.days, lo), np.searchsorted(s.days, hi)
            return s.days[i:j], s.day_ends[i:j]
        # On the hour grid a bar opens up to an hour before its stretch does.
        s = self.sessions(lo, hi + HOUR_NS)
        i = np.searchsorted(s.closes, lo, "right")
        j = np.searchsorted(s.opens, hi + (HOUR_NS if self.on_the_hour else 0))
        opens, closes = s.opens[i:j], s.closes[i:j]
        first = opens - opens % HOUR_NS if self.on_the_hour else opens
        counts = np.maximum((closes - first + HOUR_NS - 1) // HOUR_NS, 0)
        nth = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        bars = np.repeat(first, counts) + nth * HOUR_NS
        ends = np.minimum(bars + HOUR_NS, np.repeat(closes, counts))
        if self.on_the_hour and len(bars):
            # Two stretches within one hour print one bar: keep the later end.
            last = np.append(bars[1:] != bars[:-1], True)
            bars, ends = bars[last], ends[last]
        keep = (bars >= lo) & (bars < hi)
        return bars[keep], ends[keep]


@dataclass(frozen=True)
class AlwaysOpen(_Calendar):
    """Crypto: every UTC hour and every UTC day."""

    name: str = ALWAYS_OPEN
    on_the_hour: bool = True

    def sessions(self, lo: int, hi: int) -> Sessions:
        days = np.arange(lo // DAY_NS - 1, hi // DAY_NS + 2, dtype="int64") * DAY_NS
        return Sessions(days, days + DAY_NS, days, days + DAY_NS)


@dataclass(frozen=True)
class FxWeek(_Calendar):
    """Spot FX: Sunday 17:00 to Friday 17:00 New York time, no holidays.

    Hourly bars sit on the UTC hour grid (17:00 New York is always a whole UTC hour). Daily
    candles are the Monday–Friday UTC dates, as Yahoo serves EURUSD=X: Sunday evening's hours
    print hourly bars but no daily candle of their own, and Friday's daily candle is final at the
    weekly close.
    """

    name: str = FX_WEEK
    on_the_hour: bool = True

    def sessions(self, lo: int, hi: int) -> Sessions:
        first = pd.Timestamp(lo - 8 * DAY_NS, unit="ns").normalize()
        sundays = pd.date_range(first, pd.Timestamp(hi, unit="ns"), freq="W-SUN", unit="ns")
        days = pd.bdate_range(first, pd.Timestamp(hi, unit="ns"), unit="ns")
        day_ends = np.where(days.day_of_week == 4, _new_york_5pm(days), days.asi8 + DAY_NS)
        return Sessions(
            days.asi8,
            day_ends,
            _new_york_5pm(sundays),
            _new_york_5pm(sundays + pd.Timedelta(days=5)),
        )


@dataclass(frozen=True)
class SessionCalendar(_Calendar):
    """A market open at fixed UTC hours every day (or every weekday): the demo market's sessions.

    Its daily candle exists for every day with a session hour and is final when the last hour
    closes, as the demo aggregates them.
    """

    name: str
    session: Session
    on_the_hour: bool = True

    def sessions(self, lo: int, hi: int) -> Sessions:
        days = np.arange(lo // DAY_NS - 1, hi // DAY_NS + 2, dtype="int64") * DAY_NS
        if self.session.weekdays_only:
            days = days[(days // DAY_NS + 3) % 7 < 5]  # 1970-01-01 was a Thursday
        if self.session.first_hour >= self.session.end_hour:
            days = days[:0]
        opens = days + self.session.first_hour * HOUR_NS
        closes = days + self.session.end_hour * HOUR_NS
        return Sessions(days, closes, opens, closes)


@dataclass(frozen=True)
class ExchangeSessions(_Calendar):
    """An exchange's sessions from exchange-calendars: holidays, DST, early closes and breaks.

    Outside the years the library covers (2000 to two years ahead where it can) there are no
    sessions, so nothing is expected there.
    """

    name: str
    on_the_hour: bool = False
    # A daily pause before the regular close that the library's sessions include: CME Globex
    # stops for maintenance 16:00-17:00 Chicago and sources print no bar for that hour (an early
    # close has no pause). (time zone, regular close hour there, pause in nanoseconds)
    pause_before_close: tuple[str, int, int] | None = None

    def sessions(self, lo: int, hi: int) -> Sessions:
        sessions = _exchange_sessions(self.name)
        if self.pause_before_close is None:
            return sessions
        zone, hour, pause = self.pause_before_close
        local = pd.DatetimeIndex(sessions.closes, tz="UTC").tz_convert(zone)
        regular = (local.hour == hour) & (local.minute == 0)
        return replace(sessions, closes=sessions.closes - np.where(regular, pause, 0))


def calendar_for(symbol: str, asset_class: str | None, source: str | None = None) -> MarketCalendar:
    """The calendar ``symbol`` trades on: the demo's own session when the demo serves it, else
    the user's map (``data/calendars.toml``), else its asset class and ticker suffix."""
    if source is not None and source.startswith("demo") and symbol in DEMO_LISTINGS:
        listing = DEMO_LISTINGS[symbol]
        return SessionCalendar(f"demo:{listing.asset_class}", listing.session)
    user = user_map()
    if symbol in user.symbols:
        return _named(user.symbols[symbol])
    kind = asset_class or asset_class_of(symbol)
    if kind == "crypto":
        return AlwaysOpen()
    if kind == "fx":
        return FxWeek()
    if kind in ("commodity", "future") or symbol.endswith("=F"):
        return ExchangeSessions(FUTURES, True, ("America/Chicago", 17, HOUR_NS))
    base, dot, tail = symbol.rpartition(".")
    suffix = f".{tail}" if dot and base else ""
    return _named(user.suffixes.get(suffix) or SUFFIXES.get(suffix) or STOCKS)


@dataclass(frozen=True)
class UserMap:
    """The user's additions: ticker suffix → calendar code, symbol → calendar code."""

    suffixes: dict[str, str]
    symbols: dict[str, str]


def calendars_path() -> Path:
    """``$PLATFORM_CALENDARS``, else ``data/calendars.toml``; relative to the project root."""
    path = Path(os.environ.get(CALENDARS_ENV) or DEFAULT_CALENDARS).expanduser()
    return path if path.is_absolute() else PROJECT_ROOT / path


def user_map() -> UserMap:
    """The user's calendar file, read when it changes; empty when there is none."""
    path = calendars_path()
    try:
        mtime = path.stat().st_mtime_ns
    except FileNotFoundError:
        return UserMap({}, {})
    return _read_user_map(path, mtime)


@lru_cache(maxsize=8)
def _read_user_map(path: Path, mtime_ns: int) -> UserMap:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8").removeprefix("\ufeff"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not a valid TOML file: {exc}") from None
    tables: dict[str, dict[str, str]] = {"suffixes": {}, "symbols": {}}
    for section, entries in data.items():
        if section not in tables or not isinstance(entries, dict):
            raise ValueError(
                f"{path}: unknown entry {section!r}; expected the tables [suffixes] and [symbols]"
            )
        for key, code in entries.items():
            where = f"{path}: [{section}] {key!r}"
            if section == "suffixes" and (not key.startswith(".") or "." in key[1:]):
                raise ValueError(
                    f"{where}: a suffix is a dot and the ticker's last part, e.g. '.MI'"
                )
            if not isinstance(code, str) or not _known_code(code):
                raise ValueError(
                    f"{where} = {code!r} is not a calendar exchange-calendars knows "
                    "(see exchange_calendars.get_calendar_names())"
                )
            tables[section][key] = code
    return UserMap(tables["suffixes"], tables["symbols"])


def _named(code: str) -> MarketCalendar:
    if code == ALWAYS_OPEN:
        return AlwaysOpen()
    if code == FX_WEEK:
        return FxWeek()
    return ExchangeSessions(_resolve(code))


def _known_code(code: str) -> bool:
    if code in (ALWAYS_OPEN, FX_WEEK):
        return True
    try:
        _resolve(code)
    except LookupError:
        return False
    return True


@lru_cache(maxsize=256)
def _resolve(code: str) -> str:
    import exchange_calendars as xc  # slow to import: only when an exchange is asked for

    try:
        return xc.resolve_alias(code)
    except xc.errors.InvalidCalendarName:
        raise LookupError(f"exchange-calendars has no calendar {code!r}") from None


@lru_cache(maxsize=64)
def _exchange_sessions(code: str) -> Sessions:
    """The exchange's sessions from 2000 to two years ahead (narrower where the library's holiday
    records stop), built once per process: construction costs a few tenths of a second."""
    import exchange_calendars as xc

    start = pd.Timestamp("2000-01-01")
    end = pd.Timestamp.now("UTC").tz_localize(None).normalize() + pd.DateOffset(years=2)
    with warnings.catch_warnings():
        # The library still uses pandas APIs that pandas 3 deprecates; nothing for us to act on.
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        try:
            calendar = xc.get_calendar(code, start=start, end=end)
        except ValueError:
            bounds = type(xc.get_calendar(code))
            low, high = bounds.bound_min(), bounds.bound_max()
            start = max(start, low) if low is not None else start
            end = min(end, high) if high is not None else end
            calendar = xc.get_calendar(code, start=start, end=end)
        schedule = calendar.schedule
    opens, closes = _i8(schedule["open"]), _i8(schedule["close"])
    starts, ends = _i8(schedule["break_start"]), _i8(schedule["break_end"])
    pause = (schedule["break_start"].notna() & schedule["break_end"].notna()).to_numpy()
    stretch_opens = np.concatenate([opens, ends[pause]])
    stretch_closes = np.concatenate([np.where(pause, starts, closes), closes[pause]])
    order = np.argsort(stretch_opens, kind="stable")
    days = pd.DatetimeIndex(schedule.index).tz_localize("UTC").as_unit("ns").asi8
    sessions = Sessions(days, closes, stretch_opens[order], stretch_closes[order])
    for array in (sessions.days, sessions.day_ends, sessions.opens, sessions.closes):
        array.flags.writeable = False  # shared by every caller of this cached table
    return sessions


_EMPTY = np.array([], dtype="int64")


def _i8(column: pd.Series) -> np.ndarray:
    return pd.DatetimeIndex(column).as_unit("ns").asi8


def _new_york_5pm(dates: pd.DatetimeIndex) -> np.ndarray:
    local = (dates + pd.Timedelta(hours=17)).tz_localize("America/New_York")
    return local.tz_convert("UTC").as_unit("ns").asi8


def _step(interval: str) -> int:
    steps = {"1h": HOUR_NS, "1d": DAY_NS}
    if interval not in steps:
        raise ValueError(f"unknown interval {interval!r}; known: {', '.join(steps)}")
    return steps[interval]


def _ns(moment: datetime) -> int:
    stamp = pd.Timestamp(moment)
    return (stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp).value
