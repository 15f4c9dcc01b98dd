"""On-chain wallets: DeBank units spent by the platform against a full re-export on every sync,
and the first sync of 5,000 transactions.

  saved      a wallet with ~3 transactions a day on each of 3 chains and a year of history, synced
             once, then hourly for 30 days on a simulated clock against the local DeBank server
             (new transactions arriving as the clock moves): history calls and units the server
             charged, per sync and in all, against what exporting the whole history on every
             sync would cost (ceil(transactions/20) + 1 calls a sync, all chains in one call a
             page as the platform asks, at the same price a call);
  first      a first sync of 5,000 transactions in a fresh process: calls against the minimum the
             page size allows (ceil(n/20) + the empty page that ends the history), wall time,
             peak RSS.

Usage: wallet_units.py [--days 30] [--first 5000]
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import _common

sys.path.insert(0, str(_common.ROOT))

from platform_pkg.accounts.model import WalletAccount  # noqa: E402
from platform_pkg.market.resources import MarketData  # noqa: E402
from platform_pkg.partitions import SymbolWindow  # noqa: E402
from platform_pkg.wallets.assets import _read_marks, onchain_transactions  # noqa: E402
from platform_pkg.wallets.ingest import WalletSync, WalletTask  # noqa: E402
from platform_pkg.wallets.resources import Debank  # noqa: E402
from platform_pkg.warehouse.io_manager import DuckDBUpsertIOManager, table_spec  # noqa: E402
from platform_pkg.warehouse.resources import Warehouse  # noqa: E402
from platform_tests.fakes.debank import ACCESS_KEY, FakeDebank, make_history  # noqa: E402

ADDRESS = "0x3333333333333333333333333333333333333333"
CHAINS = ("eth", "arb", "base")
START = datetime(2025, 11, 1, tzinfo=UTC)  # a year of history before the first sync
FIRST_SYNC = datetime(2026, 11, 1, 0, 30, tzinfo=UTC)
SPEC = table_spec(
    dict(onchain_transactions.metadata_by_key[onchain_transactions.key]), "onchain_transactions"
)
PAGE = 20


class Platform:
    """The platform's wallet sync against a fake DeBank, one call of :meth:`sync` per tick."""

    def __init__(self, fake: FakeDebank, tmp: Path):
        self.fake = fake
        self.warehouse = Warehouse(path=str(tmp / "warehouse.duckdb"))
        self.state = tmp / "state"
        self.wallet = WalletAccount("bench", ADDRESS, chains=CHAINS)

    def sync(self, now: datetime) -> dict:
        self.fake.set_now(now.timestamp())
        market = MarketData(now=now.isoformat(), state_dir=str(self.state))
        debank = Debank(api_url=self.fake.url, access_key=ACCESS_KEY)
        window = SymbolWindow("bench", START - timedelta(days=1), now)
        stream = WalletSync(
            tasks=[WalletTask(self.wallet, window)],
            source_for=lambda wallet, meter: debank.source(market, wallet, meter),
            read_marks=lambda name: _read_marks(self.warehouse, name),
            now=now,
            budget=debank.budget(market),
        )
        calls, charged = len(self.fake.history_requests), self.fake.charged
        started = time.perf_counter()
        DuckDBUpsertIOManager(warehouse=self.warehouse)._commit_stream(SPEC, stream, "bench")
        for result in stream.results:
            assert result.entry.status == "success", result.entry.error
        return {
            "calls": len(self.fake.history_requests) - calls,
            "units": self.fake.charged - charged,
            "units_recorded": sum(r.entry.api_units for r in stream.results),
            "new": sum(r.changes.new for r in stream.results),
            "wall_s": time.perf_counter() - started,
        }


def spacing(per_day: int) -> int:
    """Seconds between transactions for ``per_day`` a day, one in seven sharing its predecessor's
    second (which takes no time)."""
    return int(86_400 * 7 / (6 * per_day))


def history(days: int, per_day_per_chain: int) -> tuple[list, dict]:
    count = days * per_day_per_chain * len(CHAINS)
    return make_history(
        ADDRESS, count, chains=CHAINS, start=int(START.timestamp()),
        spacing=spacing(per_day_per_chain * len(CHAINS)), seed=7, same_second_every=7,
        failed_every=29, scam_every=31,
    )  # fmt: skip


def saved(days: int) -> dict:
    total_days = (FIRST_SYNC - START).days + days + 1
    items, tokens = history(total_days, 3)
    times = sorted(i["time_at"] for i in items)
    with (
        tempfile.TemporaryDirectory(prefix="bench-wallet-") as tmpdir,
        FakeDebank({ADDRESS: items}, tokens) as fake,
    ):
        platform = Platform(fake, Path(tmpdir))
        first = platform.sync(FIRST_SYNC)
        hourly = [platform.sync(FIRST_SYNC + timedelta(hours=h)) for h in range(1, days * 24 + 1)]
        stored = platform.warehouse.query("SELECT count(*) AS n FROM onchain_transactions")
        per_call = fake.units_per_call["/v1/user/all_history_list"]
    ticks = [FIRST_SYNC + timedelta(hours=h) for h in range(0, days * 24 + 1)]
    visible = [sum(1 for t in times if t <= tick.timestamp()) for tick in ticks]
    # The same way of asking (all chains in one call a page), for the whole history every time.
    export_calls = [math.ceil(n / PAGE) + 1 for n in visible]
    platform_units = first["units"] + sum(s["units"] for s in hourly)
    export_units = sum(export_calls) * per_call
    return {
        "transactions_at_first_sync": visible[0],
        "transactions_at_end": visible[-1],
        "stored_at_end": int(stored["n"].iloc[0]),
        "syncs": 1 + len(hourly),
        "first_sync_calls": first["calls"],
        "first_sync_units": first["units"],
        "hourly_calls": sorted({s["calls"] for s in hourly}),
        "hourly_calls_total": sum(s["calls"] for s in hourly),
        "hourly_with_one_call": sum(1 for s in hourly if s["calls"] == 1),
        "platform_units": platform_units,
        "units_recorded_equal_charged": all(
            s["units_recorded"] == s["units"] for s in [first, *hourly]
        ),
        "full_export_calls": sum(export_calls),
        "full_export_units": export_units,
        "units_saved_pct": round(100 * (1 - platform_units / export_units), 3),
        "hourly_sync_wall_s_median": round(
            sorted(s["wall_s"] for s in hourly)[len(hourly) // 2], 3
        ),
    }


def child_first(count: int) -> dict:
    """In a fresh process: the first sync of ``count`` transactions."""
    days = math.ceil(count / (3 * len(CHAINS)))
    items, tokens = make_history(
        ADDRESS, count, chains=CHAINS, start=int(START.timestamp()),
        spacing=spacing(3 * len(CHAINS)), seed=11, same_second_every=7,
    )  # fmt: skip
    end = START + timedelta(days=days + 1)
    with (
        tempfile.TemporaryDirectory(prefix="bench-wallet-first-") as tmpdir,
        FakeDebank({ADDRESS: items}, tokens) as fake,
    ):
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        platform = Platform(fake, Path(tmpdir))
        first = platform.sync(end)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "transactions": count,
        "calls": first["calls"],
        "minimum_calls": math.ceil(count / PAGE) + 1,
        "units": first["units"],
        "stored": first["new"],
        "wall_s": round(first["wall_s"], 2),
        "peak_rss_mb": round(peak / 1024),
        "rss_before_mb": round(rss_before / 1024),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--first", type=int, default=5000)
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child_first(args.child)))
        return
    done = subprocess.run(
        [_common.python(), __file__, "--child", str(args.first)],
        capture_output=True, text=True, check=True, cwd=_common.ROOT,
    )  # fmt: skip
    figures = {"first_sync": json.loads(done.stdout.strip().splitlines()[-1])}
    print("first_sync", figures["first_sync"])
    figures["saved"] = saved(args.days)
    print("saved", figures["saved"])
    _common.record("wallet_units", figures)


if __name__ == "__main__":
    main()
