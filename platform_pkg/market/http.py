"""HTTP plumbing shared by the real sources: the gate every request passes, and fault verdicts.

The gate takes the request's units from the source's shared token bucket and counts the request
on the run's meter *before* it is sent, so retries are counted and limited like any request.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from platform_pkg.market.ratelimit import SharedTokenBucket
from platform_pkg.market.retry import (
    FATAL,
    TRANSIENT,
    RetryPolicy,
    Verdict,
    redact,
    verdict_for_status,
)
from platform_pkg.market.source import RequestMeter


@dataclass
class Gate:
    """What a source does before each HTTP request: wait for tokens, then count it."""

    source: str
    bucket: SharedTokenBucket
    meter: RequestMeter
    policy: RetryPolicy

    def __call__(self, units: float = 1.0) -> None:
        self.bucket.acquire(units, self.policy.max_cooldown)
        self.meter.count(self.source, units)


class HttpStatusError(Exception):
    """A response whose status says throttled, transient or fatal (body excerpt redacted)."""

    def __init__(
        self,
        verdict: Verdict,
        url: str,
        body: str,
        secrets: Iterable[str | None] = (),
        status: int | None = None,
    ):
        path = url.split("?", 1)[0]
        super().__init__(f"{verdict.detail} from {path}: {redact(body, secrets, limit=200)}")
        self.verdict = verdict
        self.status = status


# Transport failures worth another attempt, whichever client raised them.
_TRANSIENT_NAMES = {
    "Timeout",
    "TimeoutError",
    "ConnectTimeout",
    "ReadTimeout",
    "ConnectionError",
    "RemoteDisconnected",
    "ChunkedEncodingError",
    "IncompleteRead",
    "JSONDecodeError",  # a 200 whose body is an HTML error page (proxies do that)
}


def classify_http(exc: BaseException) -> Verdict:
    """The verdict for an exception raised around an HTTP call by httpx, curl_cffi or the OS."""
    if isinstance(exc, HttpStatusError):
        return exc.verdict
    httpx = sys.modules.get("httpx")  # not imported: none of its errors can have been raised
    transport = (httpx.TransportError,) if httpx is not None else ()
    if isinstance(exc, (*transport, ConnectionError, TimeoutError)):
        return Verdict(TRANSIENT, None, type(exc).__name__)
    names = {cls.__name__ for cls in type(exc).__mro__}
    if names & _TRANSIENT_NAMES or "curl: (" in str(exc):
        return Verdict(TRANSIENT, None, type(exc).__name__)
    return Verdict(FATAL)


class JsonApi:
    """A small JSON-over-HTTP client on httpx whose every request passes the gate."""

    def __init__(
        self,
        base_url: str,
        gate: Gate,
        *,
        timeout: float,
        headers: dict[str, str] | None = None,
        secrets: Iterable[str | None] = (),
    ):
        import httpx  # here, not at the top: it imports rich, ~0.1 s for every run process

        self.gate = gate
        self.secrets = tuple(secrets)
        self._client = httpx.Client(
            base_url=base_url.rstrip("/"), timeout=timeout, headers=headers or {}
        )

    def __repr__(self) -> str:  # never the headers: they may hold an API key
        return f"JsonApi({self._client.base_url})"

    def get(self, path: str, params: dict[str, Any], units: float = 1.0) -> Any:
        """GET ``path``; ``units`` is what the call costs (0 for a free call: counted, not paid)."""
        self.gate(units)
        response = self._client.get(path, params=params)
        verdict = verdict_for_status(response.status_code, response.headers.get("retry-after"))
        if verdict is not None:
            raise HttpStatusError(
                verdict, str(response.url), response.text, self.secrets, response.status_code
            )
        return response.json()

    def close(self) -> None:
        self._client.close()
