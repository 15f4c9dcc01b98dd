"""A local server speaking DeBank Cloud OpenAPI's wallet-history dialect, for tests and benchmarks.

``/v1/user/history_list`` (one chain) and ``/v1/user/all_history_list`` (several) answer one page
of a wallet's history, newest first: the newest ≤ ``page_count`` (≤ 20) items whose ``time_at``
is strictly before ``start_time``, with the ``token_dict`` naming their tokens. Every answered
history call costs units from the account's balance, as DeBank charges them; a call the balance
cannot pay gets 403. ``/v1/account/units`` is free. The history is what a test puts in
``wallets`` (see :func:`make_history`); helpers change it afterwards (a failed tx, a reorg, a late
arrival), and a settable clock hides what has not happened yet.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import random
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from platform_tests.fakes.server import FakeServer, Request, Response

HISTORY = "/v1/user/history_list"
ALL_HISTORY = "/v1/user/all_history_list"
UNITS = "/v1/account/units"
PAGE_MAX = 20
UNITS_PER_CALL = {HISTORY: 5, ALL_HISTORY: 20}
ACCESS_KEY = "debank-test-key"
CATEGORIES = {"send": "Send", "receive": "Receive", "approve": "Approve"}
PROJECTS = {
    "uniswap3": {
        "id": "uniswap3",
        "chain": "eth",
        "name": "Uniswap V3",
        "site_url": "https://app.uniswap.org",
        "logo_url": None,
    }
}

Item = dict[str, Any]


class DebankError(Exception):
    """A refusal in DeBank's shape: HTTP status, ``error_code`` and ``error_msg``."""

    def __init__(self, status: int, msg: str, code: int = 1):
        super().__init__(msg)
        self.response = Response(status, {"error_code": code, "error_msg": msg})


@dataclass(frozen=True)
class Charge:
    """One history call paid for: when (the fake's clock), where, for whom, the balance after."""

    at: float
    path: str
    address: str
    units: float
    balance: float


class FakeDebank(FakeServer):
    """DeBank Cloud's history and units endpoints over the wallets and tokens a test holds."""

    def __init__(
        self,
        wallets: dict[str, list[Item]] | None = None,
        tokens: dict[str, dict] | None = None,
        *,
        access_key: str = ACCESS_KEY,
        balance: float = 1_000_000,
        units_per_call: dict[str, float] | None = None,
    ):
        super().__init__(self.route)
        self.access_key = access_key
        self.balance = balance
        self.units_per_call = dict(UNITS_PER_CALL if units_per_call is None else units_per_call)
        # lower-case address → raw history items in any order, served as stored (malformed too).
        self.wallets = {a.lower(): list(items) for a, items in (wallets or {}).items()}
        self.tokens = dict(tokens or {})  # token id → DeBank token object
        self.history_short: int | None = None  # at most this many items per answer
        self.charges: list[Charge] = []
        self._now: float | None = None
        self._state = threading.RLock()

    # -- what the account and the chains hold -------------------------------------------------
    @property
    def charged(self) -> float:
        """Units charged so far."""
        return sum(c.units for c in self.charges)

    @property
    def history_requests(self) -> list[Request]:
        """Every history call received (refused and faulted ones too)."""
        return [r for r in self.requests if r.path in (HISTORY, ALL_HISTORY)]

    def now(self) -> float:
        return time.time() if self._now is None else self._now

    def set_now(self, seconds: float | None) -> None:
        """Freeze the clock at ``seconds`` (None: the wall clock). Later items are invisible."""
        self._now = seconds

    def set_status(self, tx_id: str, chain: str, status: int) -> None:
        """Set ``tx.status`` of (chain, tx_id) in every wallet holding it (on a copy of the item)."""
        with self._state:
            found = False
            for items in self.wallets.values():
                for k, item in enumerate(items):
                    if _is(item, tx_id, chain):
                        changed = copy.deepcopy(item)
                        if not isinstance(changed.get("tx"), dict):
                            changed["tx"] = {}
                        changed["tx"]["status"] = status
                        items[k], found = changed, True
            if not found:
                raise KeyError((chain, tx_id))

    def remove(self, tx_id: str, chain: str) -> None:
        """A reorg: (chain, tx_id) vanishes from every wallet."""
        with self._state:
            found = False
            for items in self.wallets.values():
                kept = [item for item in items if not _is(item, tx_id, chain)]
                found = found or len(kept) < len(items)
                items[:] = kept
            if not found:
                raise KeyError((chain, tx_id))

    def add(self, item: Item, address: str | None = None) -> None:
        """A late arrival in ``address``'s history (None: the only wallet held)."""
        with self._state:
            if address is None:
                if len(self.wallets) != 1:
                    raise ValueError("add() needs an address when the fake holds several wallets")
                address = next(iter(self.wallets))
            self.wallets.setdefault(address.lower(), []).append(item)

    # -- the API ------------------------------------------------------------------------------
    def route(self, request: Request) -> Response:
        try:
            if request.path not in (HISTORY, ALL_HISTORY, UNITS):
                raise DebankError(404, f"fake debank has no {request.path}")
            if request.headers.get("accesskey") != self.access_key:
                raise DebankError(401, "invalid access key")
            if request.path == UNITS:
                return Response(body=self._units())
            return Response(body=self._history(request))
        except DebankError as refusal:
            return refusal.response

    def _history(self, request: Request) -> str:
        q = request.query
        address = (q.get("id") or "").lower()
        if not address:
            raise DebankError(400, "id is required")
        if request.path == HISTORY:
            if not q.get("chain_id"):
                raise DebankError(400, "chain_id is required")
            chains: set[str] | None = {q["chain_id"]}
        else:
            chains = {c.strip() for c in q.get("chain_ids", "").split(",") if c.strip()} or None
        start, page_count = _start_time(q.get("start_time")), _page_count(q.get("page_count"))
        with self._state:
            page = self._page(address, chains, start, page_count)
            # Encoded under the lock, so a mutation racing the answer cannot tear it.
            body = json.dumps(self._answer(page))
            cost = self.units_per_call.get(request.path, 0)
            if cost > self.balance:
                raise DebankError(
                    403, "Your units have reached the capacity limit, please recharge", 403
                )
            self.balance -= cost
            self.charges.append(Charge(self.now(), request.path, address, cost, self.balance))
        return body

    def _page(
        self, address: str, chains: set[str] | None, start: float | None, page_count: int
    ) -> list[Item]:
        now = self.now()
        rows = [
            (at, position, item)
            for at, position, item in _keyed(self.wallets.get(address, []))
            if at <= now
            and (start is None or at < start)
            and (chains is None or _field(item, "chain") in chains)
        ]
        rows.sort(key=lambda k: (-k[0], k[1]))
        page = [item for _, _, item in rows[:page_count]]
        return page if self.history_short is None else page[: self.history_short]

    def _answer(self, page: list[Item]) -> dict:
        token_ids: list[str] = []
        cates: dict[str, dict] = {}
        projects: dict[str, dict] = {}
        for item in page:
            for side in ("sends", "receives"):
                moves = _field(item, side)
                for move in moves if isinstance(moves, list) else []:
                    token_ids.append(_field(move, "token_id"))
            token_ids.append(_field(_field(item, "token_approve"), "token_id"))
            cate, project = _field(item, "cate_id"), _field(item, "project_id")
            if isinstance(cate, str):
                cates[cate] = {"id": cate, "name": CATEGORIES.get(cate, cate.title())}
            if isinstance(project, str):
                projects[project] = PROJECTS.get(project, {"id": project, "name": project})
        return {
            "cate_dict": cates,
            "cex_dict": {},
            "history_list": page,
            "project_dict": projects,
            "token_dict": {t: self.tokens[t] for t in token_ids if t in self.tokens},
        }

    def _units(self) -> dict:
        with self._state:
            days: dict[str, dict] = {}
            for c in self.charges:
                day = _day(c.at)
                entry = days.setdefault(day, {"usage": 0, "remains": c.balance, "date": day})
                entry["usage"] += c.units
                entry["remains"] = c.balance
            today = _day(self.now())
            days.setdefault(today, {"usage": 0, "remains": self.balance, "date": today})
            return {"balance": self.balance, "stats": [days[d] for d in sorted(days)]}


def _day(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).date().isoformat()


def _start_time(value: str | None) -> float | None:
    if value in (None, "", "0"):
        return None
    try:
        start = float(value)
    except ValueError:
        raise DebankError(400, "start_time must be a unix timestamp in seconds") from None
    if not math.isfinite(start) or start < 0:
        raise DebankError(400, "start_time must be a unix timestamp in seconds")
    return start or None


def _page_count(value: str | None) -> int:
    if value in (None, ""):
        return PAGE_MAX
    if not (value.isascii() and value.isdigit()) or int(value) < 1:
        raise DebankError(400, "page_count must be a positive integer")
    if int(value) > PAGE_MAX:
        raise DebankError(400, f"page_count should be less than or equal to {PAGE_MAX}")
    return int(value)


def _field(value: object, name: str) -> Any:
    return value.get(name) if isinstance(value, dict) else None


def _is(item: object, tx_id: str, chain: str) -> bool:
    return _field(item, "id") == tx_id and _field(item, "chain") == chain


def _time(item: object) -> float | None:
    at = _field(item, "time_at")
    if isinstance(at, bool) or not isinstance(at, int | float) or not math.isfinite(at):
        return None
    return float(at)


def _keyed(items: list) -> list[tuple[float, int, object]]:
    """``(time, position, item)`` per item. An item without a usable ``time_at`` takes the time
    of the item stored before it (the first ones: of the first timed item), so it is served
    right after its stored predecessor, whatever the page."""
    times = [_time(item) for item in items]
    last = next((t for t in times if t is not None), -math.inf)
    keyed = []
    for position, (at, item) in enumerate(zip(times, items, strict=True)):
        last = last if at is None else at
        keyed.append((last, position, item))
    return keyed


# -- history items ------------------------------------------------------------------------------
ROUTER = "0xe592427a0aece92de3edee1f18e0157c05861564"  # Uniswap V3 SwapRouter
_NATIVE = {
    "eth": ("ETH", "Ether", 3000.0),
    "arb": ("ETH", "Ether", 3000.0),
    "op": ("ETH", "Ether", 3000.0),
    "base": ("ETH", "Ether", 3000.0),
    "bsc": ("BNB", "BNB", 600.0),
    "matic": ("MATIC", "Polygon", 0.5),
}
_USDC = {
    "eth": ("0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48", 6),
    "arb": ("0xaf88d065e77c8cc2239327c5edb3a432268e5831", 6),
    "op": ("0x0b2c639c533813f4aa9d7837caf62653d097ff85", 6),
    "base": ("0x833589fcd6edb6e08f4c7c32d4f71b54bda02913", 6),
    "bsc": ("0x8ac76a51cc950d9822d68b83fe1ad97a32cd580d", 18),
    "matic": ("0x3c499c542cef5e3811e1192ce70d8cc03d5c3359", 6),
}
KINDS = (
    "send_native",
    "receive_native",
    "send_usdc",
    "receive_usdc",
    "receive_obscure",
    "approve",
    "swap",
)
WALLET_KINDS = ("send_native", "send_usdc", "approve", "swap")  # the wallet signs and pays gas


def _hex_address(label: str) -> str:
    return "0x" + hashlib.sha256(label.encode()).hexdigest()[:40]


def _token(chain: str, token_id: str, symbol: str, name: str, **extra: Any) -> dict:
    token = {
        "id": token_id,
        "chain": chain,
        "name": name,
        "symbol": symbol,
        "display_symbol": None,
        "optimized_symbol": symbol,
        "decimals": 18,
        "logo_url": None,
        "protocol_id": "",
        "is_core": True,
        "is_verified": True,
        "is_wallet": True,
        "price": 1.0,
        "time_at": 1_483_200_000.0,
    }
    token.update(extra)
    return token


def chain_tokens(chain: str, junk_born: float = 1_690_000_000.0) -> dict[str, dict]:
    """The tokens :func:`make_history` uses on ``chain``: ``native``, ``usdc``, ``obscure``,
    ``junk`` (the scam airdrop)."""
    symbol, name, price = _NATIVE.get(chain, (chain.upper(), chain.title(), 1.0))
    usdc, usdc_decimals = _USDC.get(chain, (_hex_address(f"usdc:{chain}"), 6))
    return {
        "native": _token(chain, chain, symbol, name, price=price),
        "usdc": _token(chain, usdc, "USDC", "USD Coin", decimals=usdc_decimals),
        "obscure": _token(
            chain,
            _hex_address(f"obscure:{chain}"),
            "ZRKL",
            "Zorkle Finance",
            decimals=9,
            price=0.00042,
            is_core=False,
            is_verified=False,
            time_at=1_650_000_000.0,
        ),
        "junk": _token(
            chain,
            _hex_address(f"junk:{chain}"),
            "$ usdc-claim.top",
            "Visit usdc-claim.top to claim rewards",
            decimals=0,
            price=0.0,
            is_core=False,
            is_verified=False,
            is_wallet=False,
            time_at=junk_born,
        ),
    }


def make_history(
    address: str,
    count: int,
    *,
    chains: tuple[str, ...] = ("eth",),
    start: int,
    spacing: int = 3600,
    seed: int = 0,
    same_second_every: int | None = None,
    failed_every: int | None = None,
    scam_every: int | None = None,
) -> tuple[list[Item], dict[str, dict]]:
    """``count`` well-formed history items of ``address`` and the tokens they name, newest first
    (as DeBank lists them), the same for the same arguments.

    Item ``i`` (0 the oldest) is at ``start + i * spacing`` on ``chains[i % len(chains)]``, except
    that with ``same_second_every=k`` every k-th item has its predecessor's ``time_at``. Kinds
    come in shuffled rounds of native and USDC sends and receives, an obscure token received, a
    USDC approval and a Uniswap swap; the wallet pays the gas (``tx.from_addr == address``) of
    what it sends. Every ``scam_every``-th item is an ``is_scam`` airdrop of a junk token; every
    ``failed_every``-th other one a transaction the wallet sent that failed: status 0, gas paid,
    nothing moved (no sends or receives).
    """
    address = address.lower()
    rng = random.Random(f"{address}:{seed}")
    peers = [_random_address(rng) for _ in range(6)]
    spammer = _random_address(rng)
    used_ids: set[str] = set()
    rounds: list[str] = []
    tokens: dict[str, dict] = {}
    items: list[Item] = []
    by_chain = {c: chain_tokens(c, junk_born=float(start - 7 * 86_400)) for c in chains}
    at = start
    for i in range(count):
        if i and not (same_second_every and (i + 1) % same_second_every == 0):
            at += spacing
        chain = chains[i % len(chains)]
        if not rounds:
            rounds.extend(rng.sample(KINDS, len(KINDS)))
        kind = rounds.pop()
        scam = bool(scam_every and (i + 1) % scam_every == 0)
        failed = not scam and bool(failed_every and (i + 1) % failed_every == 0)
        if failed and kind not in WALLET_KINDS:
            kind = WALLET_KINDS[i % len(WALLET_KINDS)]
        tx_id = _tx_id(rng, used_ids)
        chain_set = by_chain[chain]
        peer = spammer if scam else rng.choice(peers)
        item = _item(rng, "scam" if scam else kind, address, chain, chain_set, peer)
        item.update(id=tx_id, time_at=float(at))
        if failed:
            item.update(sends=[], receives=[], token_approve=None)
            item["tx"]["status"] = 0
        for move in item["sends"] + item["receives"] + [item["token_approve"] or {}]:
            if "token_id" in move:
                token = next(t for t in chain_set.values() if t["id"] == move["token_id"])
                tokens[token["id"]] = token
        items.append(_ordered(item))
    return items[::-1], tokens


def _random_address(rng: random.Random) -> str:
    return f"0x{rng.getrandbits(160):040x}"


def _tx_id(rng: random.Random, used: set[str]) -> str:
    while (tx_id := f"0x{rng.getrandbits(256):064x}") in used:
        pass
    used.add(tx_id)
    return tx_id


def _item(
    rng: random.Random, kind: str, address: str, chain: str, tokens: dict[str, dict], peer: str
) -> Item:
    native, usdc = tokens["native"], tokens["usdc"]
    amount = round(rng.uniform(0.01, 2.5), 6)
    dollars = round(rng.uniform(10, 5000), 2)
    sends: list[dict] = []
    receives: list[dict] = []
    item: Item = {"cate_id": None, "project_id": None, "is_scam": False, "token_approve": None}
    payer, other, to_addr, name, selector, value = address, peer, peer, "", "0x", 0.0
    if kind == "send_native":
        sends.append({"amount": amount, "to_addr": peer, "token_id": native["id"]})
        item["cate_id"], value = "send", amount
    elif kind == "receive_native":
        receives.append({"amount": amount, "from_addr": peer, "token_id": native["id"]})
        item["cate_id"], payer, to_addr, value = "receive", peer, address, amount
    elif kind in ("send_usdc", "receive_usdc", "receive_obscure", "scam"):
        token = {"receive_obscure": tokens["obscure"], "scam": tokens["junk"]}.get(kind, usdc)
        to_addr, name, selector = token["id"], "transfer", "0xa9059cbb"
        if kind == "send_usdc":
            sends.append({"amount": dollars, "to_addr": peer, "token_id": token["id"]})
            item["cate_id"] = "send"
        else:
            size = float(rng.choice([1000, 8888, 100000])) if kind == "scam" else dollars * 100
            receives.append({"amount": size, "from_addr": peer, "token_id": token["id"]})
            item["cate_id"], payer = "receive", peer
        if kind == "scam":
            item["is_scam"], name, selector = True, "airdrop", "0x729ad39e"
    elif kind == "approve":
        item["token_approve"] = {"spender": ROUTER, "token_id": usdc["id"], "value": dollars}
        item["cate_id"], item["project_id"] = "approve", "uniswap3"
        other, to_addr, name, selector = ROUTER, usdc["id"], "approve", "0x095ea7b3"
    else:  # swap: native in, USDC out of a Uniswap pool
        sends.append({"amount": amount, "to_addr": ROUTER, "token_id": native["id"]})
        out = round(amount * native["price"] * 0.997, 6)
        receives.append({"amount": out, "from_addr": ROUTER, "token_id": usdc["id"]})
        item["project_id"], other, to_addr, value = "uniswap3", ROUTER, ROUTER, amount
        name, selector = "exactInputSingle", "0x414bf389"
    gas = round(rng.uniform(0.0002, 0.004), 8)
    item.update(
        chain=chain,
        other_addr=other,
        cex_id=None,
        sends=sends,
        receives=receives,
        tx={
            "eth_gas_fee": gas,
            "usd_gas_fee": round(gas * native["price"], 4),
            "from_addr": payer,
            "to_addr": to_addr,
            "name": name,
            "params": [],
            "status": 1,
            "value": value,
            "selector": selector,
        },
    )
    return item


_ORDER = (
    "id",
    "chain",
    "time_at",
    "cate_id",
    "project_id",
    "is_scam",
    "other_addr",
    "cex_id",
    "sends",
    "receives",
    "token_approve",
    "tx",
)


def _ordered(item: Item) -> Item:
    return {key: item[key] for key in _ORDER}
