"""The interface every source of on-chain wallet history implements (DeBank's Cloud API, the demo).

A call returns one page of a wallet's history in DeBank's own shape, newest first: the items of
``history_list`` and the ``token_dict`` that names their tokens. Paging is by ``start_time``, a
strict upper bound in unix seconds: a page holds the newest transactions strictly before it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from platform_pkg.market.source import RequestMeter

Item = dict[str, Any]


@dataclass(frozen=True)
class HistoryPage:
    """One answer: ``items`` newest first (DeBank ``history_list`` items: ``id``, ``chain``,
    ``time_at`` (float seconds), ``cate_id``, ``project_id``, ``is_scam``, ``sends``,
    ``receives``, ``tx`` {``status``, ``eth_gas_fee``, ``usd_gas_fee``, ``from_addr``, ...}),
    and ``tokens``: DeBank's ``token_dict`` (token id → {``symbol``, ``chain``, ...})."""

    items: list[Item]
    tokens: dict[str, dict[str, Any]] = field(default_factory=dict)


class UnitsExhausted(Exception):
    """The source refused a call because the account's paid units ran out (DeBank: HTTP 403)."""


class WalletSource(Protocol):
    name: str  # "debank", "demo"
    page_limit: int  # the most items one call returns (DeBank: 20)
    meter: RequestMeter

    def history(
        self, address: str, chains: Sequence[str] | None, start_time: int | None
    ) -> HistoryPage:
        """One paid call: the newest ≤ ``page_limit`` transactions of ``address`` strictly before
        ``start_time`` (unix seconds; None: up to now) on ``chains`` (None: every chain)."""
        ...

    def units_balance(self) -> float | None:
        """The account's remaining units (a free call), or None for a source without units."""
        ...
