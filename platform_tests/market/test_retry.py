"""Retrying a request: Retry-After, backoff bounds, deferral, the final failure, redaction."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from platform_pkg.market.ratelimit import RateLimit, SharedTokenBucket
from platform_pkg.market.retry import (
    FATAL,
    THROTTLED,
    TRANSIENT,
    RetryPolicy,
    SourceDeferred,
    SourceRequestError,
    SourceUnavailable,
    Verdict,
    call_with_retries,
    parse_retry_after,
    redact,
    verdict_for_status,
)
from platform_pkg.market.source import UnknownSymbolError

POLICY = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.02, max_cooldown=1.0)


class Boom(Exception):
    def __init__(self, verdict: Verdict):
        super().__init__(f"boom {verdict.kind} signature=abc123 key=SECRETKEY")
        self.verdict = verdict


def script(*outcomes):
    calls = []

    def request():
        outcome = outcomes[len(calls)]
        calls.append(time.monotonic())
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    return request, calls


def run(request, tmp_path, policy=POLICY):
    bucket = SharedTokenBucket("src", tmp_path / "b.json", RateLimit(1000, 1))
    return call_with_retries(
        request,
        classify=lambda e: getattr(e, "verdict", Verdict(FATAL)),
        policy=policy,
        bucket=bucket,
        what="BTC-USDT 1h [2026-01-01 00:00, 2026-01-02 00:00)",
        secrets=["SECRETKEY"],
    ), bucket


def test_retry_after_in_seconds_or_as_a_date():
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    later = datetime.now(UTC) + timedelta(seconds=30)
    assert 25 < parse_retry_after(format_datetime(later, usegmt=True)) <= 30


def test_status_verdicts():
    assert verdict_for_status(429, "3") == Verdict(THROTTLED, 3.0, "HTTP 429")
    assert verdict_for_status(418, "120").kind == THROTTLED
    assert verdict_for_status(503).kind == TRANSIENT and verdict_for_status(408).kind == TRANSIENT
    assert verdict_for_status(400).kind == FATAL and verdict_for_status(200) is None


def test_backoff_grows_and_stays_bounded():
    policy = RetryPolicy(base_delay=1, max_delay=5)
    for attempt, ceiling in [(1, 1), (2, 2), (3, 4), (4, 5), (9, 5)]:
        delays = [policy.backoff(attempt) for _ in range(50)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(set(delays)) > 1  # jittered


def test_throttled_then_served_waits_retry_after_in_the_shared_bucket(tmp_path):
    request, calls = script(Boom(Verdict(THROTTLED, 0.3, "HTTP 429")), "ok")
    result, bucket = run(request, tmp_path)
    assert result == "ok" and calls[1] - calls[0] < 0.1  # the wait is in the bucket, not here
    assert bucket.blocked_until() is not None  # another process would wait too


def test_a_long_cooldown_defers(tmp_path):
    request, calls = script(Boom(Verdict(THROTTLED, 300, "HTTP 418")))
    with pytest.raises(SourceDeferred, match="src is rate limited until .*HTTP 418") as err:
        run(request, tmp_path)
    assert len(calls) == 1 and err.value.until > datetime.now(UTC) + timedelta(seconds=290)


def test_transient_faults_are_retried_then_fail_clearly_and_redacted(tmp_path):
    transient = Boom(Verdict(TRANSIENT, None, "HTTP 503"))
    request, calls = script(transient, transient, transient)
    with pytest.raises(SourceUnavailable) as err:
        run(request, tmp_path)
    message = str(err.value)
    assert len(calls) == 3
    assert message.startswith("src: BTC-USDT 1h [2026-01-01 00:00, 2026-01-02 00:00): gave up")
    assert "HTTP 503" in message
    assert "SECRETKEY" not in message and "abc123" not in message
    assert err.value.__cause__ is None and err.value.__suppress_context__


def test_fatal_errors_are_not_retried(tmp_path):
    request, calls = script(Boom(Verdict(FATAL)), "never")
    with pytest.raises(SourceRequestError, match="boom fatal signature=\\*\\*\\* key=\\*\\*\\*"):
        run(request, tmp_path)
    assert len(calls) == 1
    request, _ = script(UnknownSymbolError("no such pair"))
    with pytest.raises(UnknownSymbolError):
        run(request, tmp_path)


def test_redact_cuts_and_hides():
    text = redact("GET /x?apiKey=abc&signature=def&crumb=ghi " + "y" * 500, ["zzz"])
    assert "abc" not in text and "def" not in text and "ghi" not in text and len(text) == 400
