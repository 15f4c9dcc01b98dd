"""Retrying one source request: rate limits, transient faults, deferral and the final failure.

Every real source turns what went wrong into one of three verdicts — *throttled* (HTTP 429, or
Binance's 418 ban; honour ``Retry-After``), *transient* (5xx, timeouts, dropped connections:
exponential backoff with jitter) or *fatal* (anything else: raised as it is) — and
:func:`call_with_retries` does the rest. A cooldown is written to the source's shared bucket so
every process waits it out; one longer than ``max_cooldown`` raises :class:`SourceDeferred`
rather than blocking the run. When the attempts run out, :class:`SourceUnavailable` names the
source, symbol, range and cause (redacted of secrets).
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TypeVar

from platform_pkg.market.ratelimit import CooldownTooLong, SharedTokenBucket

T = TypeVar("T")

THROTTLED, TRANSIENT, FATAL = "throttled", "transient", "fatal"


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try: attempts per request, backoff bounds, and the longest cooldown to wait."""

    attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_cooldown: float = 120.0

    def backoff(self, attempt: int) -> float:
        """Exponential, capped, with jitter over the upper half (never zero, never above cap)."""
        ceiling = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        return ceiling * random.uniform(0.5, 1.0)


@dataclass(frozen=True)
class Verdict:
    kind: str
    retry_after: float | None = None
    detail: str = ""


class SourceDeferred(Exception):
    """The source asked us to stay away for longer than we wait in a run: defer this work."""

    def __init__(self, source: str, until: datetime, reason: str):
        super().__init__(f"{source} is rate limited until {until:%Y-%m-%d %H:%M:%S} UTC: {reason}")
        self.source, self.until, self.reason = source, until, reason


class SourceUnavailable(RuntimeError):
    """A request still failed after its last attempt (the cause is in the message, redacted)."""

    def __init__(self, source: str, message: str):
        super().__init__(message)
        self.source = source


class SourceRequestError(SourceUnavailable):
    """The source refused a request outright (a 4xx, a bad response): retrying will not help."""

    def __init__(self, source: str, message: str, status: int | None = None):
        super().__init__(source, message)
        self.status = status  # the HTTP status, when the refusal was one


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if value is None or str(value).strip() == "":
        return None
    text = str(value).strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def verdict_for_status(status: int, retry_after: str | None = None) -> Verdict | None:
    """The verdict an HTTP status implies, or None for a success."""
    if status in (418, 429):
        return Verdict(THROTTLED, parse_retry_after(retry_after), f"HTTP {status}")
    if status == 408 or status >= 500:
        return Verdict(TRANSIENT, None, f"HTTP {status}")
    if status >= 400:
        return Verdict(FATAL, None, f"HTTP {status}")
    return None


_SIGNED = re.compile(r"(signature|apiKey|api_key|x_cg_[a-z]+_api_key|crumb)=[^&\s]+", re.I)


def redact(text: str, secrets: Iterable[str | None] = (), limit: int = 400) -> str:
    """``text`` without secret values or signed query parameters, cut to ``limit`` characters."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    text = _SIGNED.sub(lambda m: f"{m[1]}=***", text)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def call_with_retries(
    request: Callable[[], T],
    *,
    classify: Callable[[BaseException], Verdict],
    policy: RetryPolicy,
    bucket: SharedTokenBucket,
    what: str,
    secrets: Iterable[str | None] = (),
    sleep: Callable[[float], None] = time.sleep,
    on_throttled: Callable[[], None] | None = None,
) -> T:
    """Run ``request`` (which takes its tokens from ``bucket`` for each HTTP call it makes) until
    it succeeds, a fatal error occurs, the cooldown is too long, or the attempts run out.
    ``on_throttled`` is told of each answer that throttled it (a 429 or 418)."""
    secrets = tuple(secrets)
    last: tuple[BaseException, Verdict] | None = None
    for attempt in range(1, policy.attempts + 1):
        try:
            return request()
        except CooldownTooLong as exc:
            raise SourceDeferred(bucket.source, exc.until, exc.reason) from None
        except SourceDeferred:
            raise
        except Exception as exc:  # noqa: BLE001 - classified below, fatal ones re-raised
            verdict = classify(exc)
            if verdict.kind == FATAL:
                if isinstance(exc, LookupError):  # the source does not list the symbol
                    raise
                cause = redact(f"{type(exc).__name__}: {exc}", secrets)
                raise SourceRequestError(
                    bucket.source,
                    f"{bucket.source}: {what}: {cause}",
                    status=getattr(exc, "status", None),
                ) from None
            last = (exc, verdict)
            if verdict.kind == THROTTLED:
                if on_throttled is not None:
                    on_throttled()
                delay = (
                    verdict.retry_after
                    if verdict.retry_after is not None
                    else policy.backoff(attempt)
                )
                reason = f"{verdict.detail or 'throttled'}, Retry-After {delay:g} s"
                until = bucket.block(delay, reason)
                if delay > policy.max_cooldown:
                    raise SourceDeferred(bucket.source, until, reason) from None
                # The next attempt's token request waits the cooldown out (shared by processes).
            elif attempt < policy.attempts:
                sleep(policy.backoff(attempt))
    assert last is not None
    exc, verdict = last
    cause = redact(f"{type(exc).__name__}: {exc}", secrets)
    detail = f" ({verdict.detail})" if verdict.detail and verdict.detail not in cause else ""
    raise SourceUnavailable(
        bucket.source,
        f"{bucket.source}: {what}: gave up after {policy.attempts} attempts; last error{detail}: "
        f"{cause}",
    ) from None
