"""A daily cap on DeBank units, shared by every process through a small locked state file.

``PLATFORM_DEBANK_UNITS_BUDGET`` units per UTC day: before each paid call a sync asks whether the
call (priced at the most a call has cost so far, measured from the free balance endpoint) still
fits; one that would not stops the sync before the call. What was spent is recorded as it is
measured, so concurrent runs see one total.
"""

from __future__ import annotations

import fcntl
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from pathlib import Path


class BudgetExhausted(Exception):
    """The next call would pass the daily units budget (or DeBank said the units ran out)."""

    def __init__(self, message: str, until: datetime):
        super().__init__(message)
        self.until = until
        self.reason = message


def next_reset(now: datetime) -> datetime:
    """When a UTC day's budget starts again: the next midnight UTC."""
    return datetime.combine(now.date() + timedelta(days=1), time(0), tzinfo=UTC)


@dataclass
class UnitsBudget:
    """Units spent per UTC day against ``per_day`` (None: no cap, spending is still recorded)."""

    path: Path
    per_day: float | None

    @contextmanager
    def _state(self, now: datetime) -> Iterator[dict]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a+") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                fh.seek(0)
                raw = fh.read()
                state = json.loads(raw) if raw.strip() else {}
                day = now.date().isoformat()
                if state.get("day") != day:
                    state = {"day": day, "spent": 0.0, "per_call": state.get("per_call", 0.0)}
                yield state
                fh.seek(0)
                fh.truncate()
                fh.write(json.dumps(state))
                fh.flush()
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def spent_today(self, now: datetime) -> float:
        with self._state(now) as state:
            return float(state["spent"])

    def check(self, now: datetime) -> None:
        """Raise :class:`BudgetExhausted` when one more call would pass today's budget."""
        if self.per_day is None:
            return
        with self._state(now) as state:
            spent, price = float(state["spent"]), float(state.get("per_call", 0.0))
        # Before any call was priced (price 0), a spent budget (or one of 0) still stops it.
        if spent + price > self.per_day or spent >= self.per_day:
            until = next_reset(now)
            raise BudgetExhausted(
                f"the DeBank units budget of {self.per_day:g} units a day "
                f"(PLATFORM_DEBANK_UNITS_BUDGET) is spent: {spent:g} used today and a call costs "
                f"{price:g}; it resets at {until:%Y-%m-%d %H:%M} UTC",
                until,
            )

    def spend(self, now: datetime, units: float, calls: int = 1) -> None:
        """Record ``units`` spent by ``calls`` paid calls; the price of a call is the most seen."""
        if units <= 0 and calls <= 0:
            return
        with self._state(now) as state:
            state["spent"] = float(state["spent"]) + max(units, 0.0)
            if calls > 0:
                state["per_call"] = max(float(state.get("per_call", 0.0)), units / calls)
