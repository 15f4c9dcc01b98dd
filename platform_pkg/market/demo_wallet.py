"""The built-in demo wallet: a deterministic, offline on-chain history served as DeBank serves it.

Each (address, chain) has a seeded history of about three transactions a day from ``first_day``
for three years; a call only sees what has happened by the clock's "now", so an incremental sync
finds new transactions as time passes. The wallet receives and sends ETH and an obscure ERC-20
(DEMO), approves and swaps on Uniswap V3 and pays the gas of what it sends in ETH, so its ETH
never goes negative. Now and then a transaction fails (gas paid, nothing moved) or a scam token is
airdropped, and about one transaction in seven shares its second with the one before, so page
boundaries fall inside a second. Calls behave like DeBank's ``all_history_list``: newest first,
strictly before ``start_time``, at most ``page_limit`` items, each call paid in units.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import IntEnum
from functools import lru_cache
from typing import Any

import numpy as np

from platform_pkg.market.demo_exchange import _demo_price
from platform_pkg.market.source import Clock, RequestMeter, system_clock
from platform_pkg.wallets.source import HistoryPage, Item, UnitsExhausted

METER_KEY = "demo-wallet"
DEMO_TOKEN_PRICE = 0.0421  # USD, fixed: an obscure token nobody trades
_HORIZON = timedelta(days=3 * 365 + 1)
_PER_DAY = 3.0
_SAME_SECOND = 1 / 6  # drawn per transaction, never twice running: ~1 in 7 shares a second
_MIN_ETH = 0.001  # below this (or four times the gas) the wallet only receives
_SWAP_FEE = 0.003
_PEERS = 8  # recurring counterparties per (address, chain), then two scam airdroppers
_ROUTER = "0xe592427a0aece92de3edee1f18e0157c05861564"  # Uniswap V3 SwapRouter, on both chains
_JUNK_AMOUNTS = np.array([1_000.0, 2_500.0, 5_000.0, 10_000.0, 88_888.0])


def _address(label: str) -> str:
    return "0x" + hashlib.sha256(label.encode()).hexdigest()[:40]


@dataclass(frozen=True)
class DemoChain:
    """A demo chain: its native token's DeBank id, the DEMO and junk contracts, typical gas."""

    id: str
    native: str
    native_since: float  # the native token's ``time_at``
    demo_token: str
    junk_token: str
    gas: float  # median gas fee in ETH


DEMO_CHAINS: dict[str, DemoChain] = {
    c.id: c
    for c in [
        DemoChain("eth", "eth", 1438269973.0, _address("demo:eth"), _address("junk:eth"), 4e-4),
        DemoChain("arb", "arb", 1622243344.0, _address("demo:arb"), _address("junk:arb"), 1.5e-5),
    ]
}


class Kind(IntEnum):
    RECEIVE_ETH = 0
    SEND_ETH = 1
    RECEIVE_DEMO = 2
    SEND_DEMO = 3
    APPROVE = 4
    SWAP = 5
    FAILED = 6  # a Uniswap swap that reverted
    SCAM = 7


_WEIGHTS = [0.28, 0.22, 0.16, 0.10, 0.05, 0.06, 0.05, 0.08]  # by Kind
_PAYS_GAS = {Kind.SEND_ETH, Kind.SEND_DEMO, Kind.APPROVE, Kind.SWAP, Kind.FAILED}


@dataclass(frozen=True)
class _Table:
    """One (address, chain)'s history over the whole horizon, ascending by time."""

    address: str
    chain: DemoChain
    seconds: np.ndarray  # unix seconds
    kind: np.ndarray
    amount: np.ndarray  # ETH (ETH kinds, swaps), DEMO (DEMO kinds, approvals) or junk (scams)
    bought: np.ndarray  # the DEMO a swap received
    gas: np.ndarray
    usd_gas: np.ndarray
    peer: np.ndarray  # index into ``peers``
    hashes: np.ndarray  # (n, 32) bytes
    peers: tuple[str, ...]


@dataclass
class DemoWallet:
    """The demo wallet source: any address's deterministic history on the demo chains.

    ``clock`` is injectable so tests are reproducible; ``balance`` is the account's paid units,
    ``units_per_call`` what each history call costs (DeBank charges per call). Addresses are
    case-insensitive and items carry them lower-cased, as DeBank's do.
    """

    clock: Clock = system_clock
    meter: RequestMeter = field(default_factory=RequestMeter)
    page_limit: int = 20
    units_per_call: float = 5.0
    balance: float = 1_000_000.0
    first_day: date = date(2026, 3, 2)
    name: str = field(default="demo", init=False)

    def __post_init__(self) -> None:
        if self.page_limit < 1:
            raise ValueError("page_limit must be at least 1")

    def history(
        self, address: str, chains: Sequence[str] | None, start_time: int | None
    ) -> HistoryPage:
        if self.balance < self.units_per_call:
            raise UnitsExhausted(
                f"demo wallet: {self.balance} units left, a call costs {self.units_per_call}"
            )
        self.meter.count(METER_KEY, self.units_per_call)
        self.balance -= self.units_per_call
        now = self.clock()
        items = _select(self._tables(address, chains), start_time, now, self.page_limit)
        return HistoryPage(items, _tokens(items, now))

    def units_balance(self) -> float:
        return self.balance

    def all_items(
        self, address: str, chains: Sequence[str] | None = None, until: datetime | None = None
    ) -> list[Item]:
        """Every item of ``address`` up to ``until`` (default: now), newest first, uncounted."""
        return _select(self._tables(address, chains), None, until or self.clock(), None)

    def _tables(self, address: str, chains: Sequence[str] | None) -> list[_Table]:
        # A chain the demo does not have is one where the wallet has no history.
        wanted = DEMO_CHAINS if chains is None else set(chains)
        return [_generate(address.lower(), c, self.first_day) for c in DEMO_CHAINS if c in wanted]


def _select(
    tables: list[_Table], start_time: float | None, now: datetime, limit: int | None
) -> list[Item]:
    """The newest ``limit`` items strictly before ``start_time`` and at or before ``now``."""
    now_s = now.timestamp()
    picked: list[tuple[int, int, int, _Table]] = []
    for rank, table in enumerate(tables):
        hi = int(np.searchsorted(table.seconds, now_s, "right"))
        if start_time is not None:
            hi = min(hi, int(np.searchsorted(table.seconds, start_time, "left")))
        lo = 0 if limit is None else max(0, hi - limit)
        picked += [(int(table.seconds[k]), rank, k, table) for k in range(lo, hi)]
    picked.sort(key=lambda p: p[:3], reverse=True)
    return [_item(table, k) for _, _, k, table in picked[:limit]]


def _tokens(items: list[Item], now: datetime) -> dict[str, dict[str, Any]]:
    """DeBank's ``token_dict`` for ``items``: every token they send, receive or approve."""
    referenced = sorted(
        {
            (item["chain"], move["token_id"])
            for item in items
            for move in item["sends"] + item["receives"] + [item["token_approve"] or {}]
            if move
        }
    )
    if not referenced:
        return {}
    now_ms = (now - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)
    eth_usd = float(_demo_price("ETH-USDT", np.array([now_ms], dtype=np.int64))[0])
    return {token: _token(DEMO_CHAINS[chain], token, eth_usd) for chain, token in referenced}


def _token(chain: DemoChain, token: str, eth_usd: float) -> dict[str, Any]:
    if token == chain.native:
        name, symbol, core, price, since = "ETH", "ETH", True, eth_usd, chain.native_since
    elif token == chain.demo_token:
        name, symbol, core, price, since = "Demo Token", "DEMO", False, DEMO_TOKEN_PRICE, 1.75e9
    else:
        name, symbol, core, price, since = "VISIT-CLAIM.XYZ", "VISIT-CLAIM.XYZ", False, 0.0, 1.77e9
    return {
        "id": token,
        "chain": chain.id,
        "name": name,
        "symbol": symbol,
        "optimized_symbol": symbol,
        "decimals": 18,
        "is_core": core,
        "is_verified": core,
        "price": round(price, 6),
        "time_at": since,
    }


@lru_cache(maxsize=64)
def _generate(address: str, chain: str, first_day: date) -> _Table:
    spec = DEMO_CHAINS[chain]
    seed = int.from_bytes(hashlib.sha256(f"{address}:{chain}".encode()).digest()[:8], "little")
    rng = np.random.default_rng(seed)
    horizon_s = int(_HORIZON.total_seconds())
    draws = int(horizon_s / 86_400 * _PER_DAY * 1.3) + 64
    same = rng.random(draws) < _SAME_SECOND
    same[1:] &= ~same[:-1]
    same[0] = False
    mean_gap = 86_400 / _PER_DAY / (1 - _SAME_SECOND * (1 - _SAME_SECOND))
    gaps = np.maximum(1, np.rint(rng.exponential(mean_gap, draws))).astype(np.int64)
    offsets = np.cumsum(np.where(same, 0, gaps))
    offsets = offsets[offsets < horizon_s]
    n = len(offsets)
    seconds = int(datetime.combine(first_day, time.min, tzinfo=UTC).timestamp()) + offsets
    drawn = rng.choice(len(Kind), n, p=_WEIGHTS)
    drawn[0] = Kind.RECEIVE_ETH
    eth_in = np.round(np.exp(rng.uniform(np.log(0.02), np.log(3.0), n)), 6)
    demo_in = np.round(np.exp(rng.uniform(np.log(50.0), np.log(50_000.0), n)), 2)
    junk_in = rng.choice(_JUNK_AMOUNTS, n)
    share = rng.uniform(0.05, 0.5, n)
    gas = np.round(spec.gas * np.exp(rng.normal(0.0, 0.5, n)), 12)
    peer = rng.integers(0, _PEERS, n)
    hashes = rng.integers(0, 256, (n, 32), dtype=np.uint8)
    eth_usd = _demo_price("ETH-USDT", seconds * 1000)
    kind, amount, bought = _settle(drawn, eth_in, demo_in, junk_in, share, gas, eth_usd)
    peer = np.where(kind == Kind.SCAM, _PEERS + peer % 2, peer)
    peers = tuple(_address(f"{address}:{chain}:peer:{i}") for i in range(_PEERS + 2))
    arrays = [seconds, kind, amount, bought, gas, np.round(gas * eth_usd, 6), peer, hashes]
    for array in arrays:
        array.flags.writeable = False
    return _Table(address, spec, *arrays, peers=peers)


def _settle(
    drawn: np.ndarray,
    eth_in: np.ndarray,
    demo_in: np.ndarray,
    junk_in: np.ndarray,
    share: np.ndarray,
    gas: np.ndarray,
    eth_usd: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each transaction's kind and amounts, keeping the ETH and DEMO held above zero.

    A send takes at most ``share`` (< half) of what is held after gas, a swap half that; a
    transaction the wallet cannot afford becomes a receive, so the history starts with receives.
    """
    n = len(drawn)
    kind = np.empty(n, dtype=np.int8)
    amount, bought = np.zeros(n), np.zeros(n)
    eth = demo = 0.0
    for k, (want, g, s) in enumerate(
        zip(drawn.tolist(), gas.tolist(), share.tolist(), strict=True)
    ):
        todo = Kind(want)
        if todo in _PAYS_GAS and eth < max(4 * g, _MIN_ETH):
            todo = Kind.RECEIVE_ETH
        elif todo is Kind.SEND_DEMO and demo < 1.0:
            todo = Kind.RECEIVE_DEMO
        a = 0.0
        match todo:
            case Kind.RECEIVE_ETH:
                a = float(eth_in[k])
                eth += a
            case Kind.SEND_ETH:
                a = math.floor((eth - g) * s * 1e6) / 1e6
                eth -= a + g
            case Kind.RECEIVE_DEMO:
                a = float(demo_in[k])
                demo += a
            case Kind.SEND_DEMO:
                a = math.floor(demo * s * 100) / 100
                demo -= a
                eth -= g
            case Kind.APPROVE:
                a = float(demo_in[k])
                eth -= g
            case Kind.SWAP | Kind.FAILED:
                a = math.floor((eth - g) * s / 2 * 1e6) / 1e6
                eth -= g
                if todo is Kind.SWAP:
                    eth -= a
                    bought[k] = round(a * eth_usd[k] / DEMO_TOKEN_PRICE * (1 - _SWAP_FEE), 2)
                    demo += bought[k]
            case Kind.SCAM:
                a = float(junk_in[k])
        kind[k], amount[k] = todo, a
    return kind, amount, bought


def _item(table: _Table, k: int) -> Item:
    chain, me = table.chain, table.address
    kind, a = Kind(int(table.kind[k])), float(table.amount[k])
    peer = table.peers[int(table.peer[k])]
    cate, project, approve = None, None, None
    sends: list[dict[str, Any]] = []
    receives: list[dict[str, Any]] = []
    sender, to, other, value = me, peer, peer, 0.0
    name, selector = "transfer", "0xa9059cbb"  # ERC-20 transfer(address,uint256)
    match kind:
        case Kind.RECEIVE_ETH:
            cate, sender, to, value, selector = "receive", peer, me, a, "0x"
            receives = [{"amount": a, "from_addr": peer, "token_id": chain.native}]
        case Kind.SEND_ETH:
            cate, value, selector = "send", a, "0x"
            sends = [{"amount": a, "to_addr": peer, "token_id": chain.native}]
        case Kind.RECEIVE_DEMO:
            cate, sender, to = "receive", peer, chain.demo_token
            receives = [{"amount": a, "from_addr": peer, "token_id": chain.demo_token}]
        case Kind.SEND_DEMO:
            cate, to = "send", chain.demo_token
            sends = [{"amount": a, "to_addr": peer, "token_id": chain.demo_token}]
        case Kind.APPROVE:
            cate, project, to, other = "approve", "uniswap3", chain.demo_token, _ROUTER
            name, selector = "approve", "0x095ea7b3"
            approve = {"spender": _ROUTER, "token_id": chain.demo_token, "value": a}
        case Kind.SWAP | Kind.FAILED:
            project, to, other, value = "uniswap3", _ROUTER, _ROUTER, a
            name, selector = "exactInputSingle", "0x414bf389"
            if kind is Kind.SWAP:
                sends = [{"amount": a, "to_addr": _ROUTER, "token_id": chain.native}]
                bought = float(table.bought[k])
                receives = [{"amount": bought, "from_addr": _ROUTER, "token_id": chain.demo_token}]
        case Kind.SCAM:
            cate, sender, to = "receive", peer, chain.junk_token
            name, selector = "airdrop", "0x729ad39e"
            receives = [{"amount": a, "from_addr": peer, "token_id": chain.junk_token}]
    return {
        "id": "0x" + table.hashes[k].tobytes().hex(),
        "chain": chain.id,
        "time_at": float(table.seconds[k]),
        "cate_id": cate,
        "project_id": project,
        "is_scam": kind is Kind.SCAM,
        "other_addr": other,
        "cex_id": None,
        "sends": sends,
        "receives": receives,
        "token_approve": approve,
        "tx": {
            "eth_gas_fee": float(table.gas[k]),
            "usd_gas_fee": float(table.usd_gas[k]),
            "from_addr": sender,
            "to_addr": to,
            "name": name,
            "params": [],
            "status": 0 if kind is Kind.FAILED else 1,
            "value": value,
            "selector": selector,
        },
    }
