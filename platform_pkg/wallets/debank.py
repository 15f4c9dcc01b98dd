"""DeBank Cloud's OpenAPI: a wallet's history, one paid call per page, and the units balance.

The access key travels only in the ``AccessKey`` header and is redacted from every error. Every
call passes the shared token bucket (DeBank's 429 carries no ``Retry-After``: backoff), 5xx and
timeouts are retried, and a 403 — DeBank's answer when the account's units run out — raises
:class:`~platform_pkg.wallets.source.UnitsExhausted` at once: retrying would not buy units.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from platform_pkg.market.http import Gate, JsonApi, classify_http
from platform_pkg.market.ratelimit import SharedTokenBucket
from platform_pkg.market.retry import RetryPolicy, SourceRequestError, call_with_retries
from platform_pkg.market.source import RequestMeter
from platform_pkg.wallets.source import HistoryPage, UnitsExhausted

DEFAULT_URL = "https://pro-openapi.debank.com"
HISTORY = "/v1/user/history_list"  # one chain
ALL_HISTORY = "/v1/user/all_history_list"  # several chains in one call
UNITS = "/v1/account/units"


class MalformedAnswer(ValueError):
    """DeBank answered with something that is not a history page."""


class DebankSource:
    """A DeBank account's view of wallets. Secrets live only in the HTTP client's headers."""

    name = "debank"
    page_limit = 20

    def __init__(
        self,
        *,
        base_url: str,
        access_key: str,
        meter: RequestMeter,
        bucket: SharedTokenBucket,
        policy: RetryPolicy,
        timeout: float,
    ):
        self.meter, self.bucket, self.policy = meter, bucket, policy
        self._key = access_key
        self._gate = Gate(self.name, bucket, meter, policy)
        self._api = JsonApi(
            base_url,
            self._gate,
            timeout=timeout,
            headers={"AccessKey": access_key, "Accept": "application/json"},
            secrets=(access_key,),
        )

    def __repr__(self) -> str:
        return f"DebankSource({self._api!r})"

    def history(
        self, address: str, chains: Sequence[str] | None, start_time: int | None
    ) -> HistoryPage:
        params: dict[str, Any] = {"id": address, "page_count": self.page_limit}
        if start_time is not None:
            params["start_time"] = int(start_time)
        if chains is not None and len(chains) == 1:
            path, params["chain_id"] = HISTORY, chains[0]
        else:
            path = ALL_HISTORY
            if chains:
                params["chain_ids"] = ",".join(chains)
        body = self._call(path, params, f"{address} history before {start_time or 'now'}")
        if not isinstance(body, dict) or not isinstance(body.get("history_list"), list):
            raise MalformedAnswer(f"{path} answered without a history_list: {str(body)[:200]}")
        tokens = body.get("token_dict") if isinstance(body.get("token_dict"), dict) else {}
        return HistoryPage(body["history_list"], tokens)

    def units_balance(self) -> float | None:
        """The units left (a free call: counted as a request, not as units)."""
        body = self._call(UNITS, {}, "units balance", units=0.0)
        try:
            return float(body["balance"])
        except (KeyError, TypeError, ValueError):
            raise MalformedAnswer(
                f"{UNITS} answered without a balance: {str(body)[:200]}"
            ) from None

    def _call(self, path: str, params: dict[str, Any], what: str, units: float = 1.0) -> Any:
        try:
            return call_with_retries(
                lambda: self._api.get(path, params, units),
                classify=classify_http,
                policy=self.policy,
                bucket=self.bucket,
                on_throttled=lambda: self.meter.throttle(self.name),
                what=what,
                secrets=(self._key,),
            )
        except SourceRequestError as exc:
            if exc.status == 403:
                raise UnitsExhausted(str(exc)) from None
            raise

    def close(self) -> None:
        self._api.close()
