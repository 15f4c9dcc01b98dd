"""The shared token bucket: limits, cooldowns, and two processes sharing one allowance."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time

import pytest

from platform_pkg.market.ratelimit import CooldownTooLong, RateLimit, SharedTokenBucket


def test_parse_and_shape():
    limit = RateLimit.parse("6000/60")
    assert (limit.units, limit.seconds) == (6000, 60)
    assert limit.capacity == 600 and limit.refill_per_second == pytest.approx(90)
    assert RateLimit.parse("5") == RateLimit(5, 1)
    # A full burst plus a window's refill is exactly the limit.
    assert limit.capacity + limit.refill_per_second * limit.seconds == pytest.approx(6000)
    for bad in ("", "x/60", "10/0", "-1/5"):
        with pytest.raises(ValueError):
            RateLimit.parse(bad)


def test_waits_for_tokens_beyond_the_burst(tmp_path):
    bucket = SharedTokenBucket("s", tmp_path / "s.json", RateLimit(20, 1))  # burst 2, 18/s
    started = time.monotonic()
    for _ in range(11):
        bucket.acquire(1, max_cooldown=5)
    elapsed = time.monotonic() - started
    assert 0.4 < elapsed < 1.5  # 9 tokens beyond the burst at 18/s
    assert bucket.waited == pytest.approx(elapsed, abs=0.2)


def test_a_cooldown_is_shared_and_a_long_one_is_refused(tmp_path):
    path = tmp_path / "s.json"
    one = SharedTokenBucket("s", path, RateLimit(100, 1))
    other = SharedTokenBucket("s", path, RateLimit(100, 1))
    one.block(0.3, "HTTP 429")
    started = time.monotonic()
    other.acquire(1, max_cooldown=1)  # waits the short cooldown out
    assert time.monotonic() - started >= 0.28
    one.block(60, "HTTP 418")
    with pytest.raises(CooldownTooLong, match="rate limited until .*HTTP 418") as err:
        other.acquire(1, max_cooldown=1)
    assert err.value.until == other.blocked_until()


def test_a_cooldown_never_shrinks(tmp_path):
    bucket = SharedTokenBucket("s", tmp_path / "s.json", RateLimit(10, 1))
    long = bucket.block(30, "ban")
    assert bucket.block(1, "short") == long


WORKER = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    from platform_pkg.market.ratelimit import RateLimit, SharedTokenBucket
    path, out, n = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
    bucket = SharedTokenBucket("s", path, RateLimit(20, 1))
    stamps = []
    for _ in range(n):
        bucket.acquire(1, max_cooldown=5)
        stamps.append(time.time())
    out.write_text(json.dumps(stamps))
    """
)


def _busiest_second(stamps: list[float]) -> int:
    stamps = sorted(stamps)
    return max(sum(1 for t in stamps if s <= t < s + 1.0) for s in stamps)


@pytest.mark.parametrize("shared", [True, False])
def test_two_processes_share_one_allowance(tmp_path, shared):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    procs = []
    for i in range(2):
        state = tmp_path / ("shared.json" if shared else f"own{i}.json")
        out = tmp_path / f"out{i}.json"
        procs.append(
            (
                subprocess.Popen([sys.executable, str(script), str(state), str(out), "25"]),
                out,
            )
        )
    stamps = []
    for proc, out in procs:
        assert proc.wait(timeout=60) == 0
        stamps += json.loads(out.read_text())
    if shared:
        assert _busiest_second(stamps) <= 20
    else:  # the control: two private buckets together overrun the limit
        assert _busiest_second(stamps) > 20
