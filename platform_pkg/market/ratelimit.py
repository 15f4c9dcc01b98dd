"""A token bucket per source, shared by every process on the machine through a locked state file.

Dagster runs steps in separate processes (and a backfill runs several runs at once), so a limiter
held in memory would let each process spend the whole allowance. Each source has one small JSON
file holding its tokens and, after a 429/418, the time until which nobody may call it; every
process takes the file's lock (``fcntl.flock``), refills, takes what it needs and lets go.

A limit ``N/S`` means *at most N units in any S seconds*: the bucket holds a burst of 10% of N and
refills at the other 90% per S, so a full burst plus a window's refill never exceed N.
"""

from __future__ import annotations

import fcntl
import json
import random
import re
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

BURST_SHARE = 0.1


@dataclass(frozen=True)
class RateLimit:
    """At most ``units`` request units in any ``seconds`` seconds."""

    units: float
    seconds: float

    @classmethod
    def parse(cls, raw: str) -> RateLimit:
        """``"6000/60"`` → 6000 units per 60 s. A bare number means per second."""
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(?:/\s*(\d+(?:\.\d+)?)\s*)?", raw)
        if not match:
            raise ValueError(f"rate limit {raw!r} is not of the form UNITS/SECONDS, e.g. 6000/60")
        units, seconds = float(match[1]), float(match[2] or 1)
        if units <= 0 or seconds <= 0:
            raise ValueError(f"rate limit {raw!r} must be positive")
        return cls(units, seconds)

    @property
    def capacity(self) -> float:
        return self.units * BURST_SHARE

    @property
    def refill_per_second(self) -> float:
        return self.units * (1 - BURST_SHARE) / self.seconds

    def __str__(self) -> str:
        return f"{self.units:g}/{self.seconds:g}s"


class CooldownTooLong(Exception):
    """The source is cooling down (after a 429/418) for longer than this process may wait."""

    def __init__(self, source: str, until: datetime, reason: str):
        super().__init__(f"{source} is rate limited until {until:%Y-%m-%d %H:%M:%S} UTC ({reason})")
        self.source, self.until, self.reason = source, until, reason


@dataclass
class SharedTokenBucket:
    """The shared bucket of one source; ``path`` is its state file (created on first use)."""

    source: str
    path: Path
    limit: RateLimit
    sleep: Callable[[float], None] = time.sleep
    waited: float = 0.0  # seconds this process spent waiting for tokens or a cooldown

    @contextmanager
    def _state(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a+") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                fh.seek(0)
                raw = fh.read()
                state = json.loads(raw) if raw.strip() else {}
                now = time.time()
                tokens = float(state.get("tokens", self.limit.capacity))
                elapsed = max(0.0, now - float(state.get("at", now)))
                state["tokens"] = min(
                    self.limit.capacity, tokens + elapsed * self.limit.refill_per_second
                )
                state["at"] = now
                yield state, now
                fh.seek(0)
                fh.truncate()
                fh.write(json.dumps(state))
                fh.flush()
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def acquire(self, units: float, max_cooldown: float) -> None:
        """Take ``units`` tokens, waiting for them; a cooldown longer than ``max_cooldown``
        seconds raises :class:`CooldownTooLong` at once instead of blocking the process."""
        # A request dearer than the burst may start once the bucket is full (it goes into debt).
        need = min(units, self.limit.capacity)
        while True:
            with self._state() as (state, now):
                blocked_until = float(state.get("blocked_until", 0.0))
                if blocked_until > now:
                    wait = blocked_until - now
                    if wait > max_cooldown:
                        until = datetime.fromtimestamp(blocked_until, UTC)
                        raise CooldownTooLong(self.source, until, state.get("reason", "cooldown"))
                elif state["tokens"] >= need:
                    state["tokens"] -= units
                    return
                else:
                    wait = (need - state["tokens"]) / self.limit.refill_per_second
            # A little jitter so processes woken together do not collide on the lock.
            pause = wait * random.uniform(1.0, 1.05) + 0.001
            self.waited += pause
            self.sleep(pause)

    def block(self, seconds: float, reason: str) -> datetime:
        """Nobody may call the source for ``seconds`` (never shortens a longer cooldown)."""
        with self._state() as (state, now):
            until = max(float(state.get("blocked_until", 0.0)), now + seconds)
            state["blocked_until"] = until
            state["reason"] = reason
        return datetime.fromtimestamp(until, UTC)

    def blocked_until(self) -> datetime | None:
        with self._state() as (state, now):
            until = float(state.get("blocked_until", 0.0))
        return datetime.fromtimestamp(until, UTC) if until > now else None


def bucket_file(directory: Path, source: str) -> Path:
    """The state file of ``source`` (one per source name, e.g. ``ccxt-binance.json``)."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", source).strip("-")
    return directory / f"{safe}.json"
