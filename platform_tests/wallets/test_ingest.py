"""onchain_transactions through real httpx and the fake DeBank: exact history, fewest paid calls."""

from __future__ import annotations

import math
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from platform_pkg.accounts.model import DEBANK_KEY_ENV
from platform_pkg.accounts.resources import Accounts
from platform_pkg.prices.schedules import RefreshSettings
from platform_pkg.wallets.assets import onchain_transactions
from platform_pkg.wallets.resources import BUDGET_ENV, RATE_ENV, URL_ENV, Debank
from platform_pkg.warehouse.io_manager import run_figures
from platform_tests.conftest import NOW, resources_for, rows, warehouse_text
from platform_tests.fakes.debank import (
    ACCESS_KEY,
    ALL_HISTORY,
    HISTORY,
    FakeDebank,
    make_history,
)
from platform_tests.fakes.market import clear_market_env, failure_message, real_market
from platform_tests.fakes.server import HTML_503, Fault

ADDRESS = "0x" + "5a" * 20
COLD = "0x" + "c0" * 20
RANGE_START, RANGE_END = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"
TAGS = {RANGE_START: "2026-06-01|hot", RANGE_END: "2026-11-24|hot"}
WINDOW = (datetime(2026, 6, 1, tzinfo=UTC), datetime(2026, 11, 25, tzinfo=UTC))
MIDNIGHT = datetime(2026, 11, 25, tzinfo=UTC)
BEGINNING = datetime(1970, 1, 1, tzinfo=UTC)
HOUR = 3600


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    clear_market_env(monkeypatch)
    for var in (DEBANK_KEY_ENV, BUDGET_ENV, URL_ENV, RATE_ENV):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def instance(tmp_path, monkeypatch):
    """An instance recording a ranged run's per-partition events in bulk, as the deployed one
    does: half a year of wallet partitions then costs no more than the sync."""
    monkeypatch.setenv("DAGSTER_EVENT_BATCH_SIZE", "1000")
    home = tmp_path / "dagster_home"
    home.mkdir()
    storage = {
        "module": "platform_pkg.event_log_storage",
        "class": "BatchingSqliteEventLogStorage",
        "config": {"base_dir": str(home / "runs")},
    }
    with dg.instance_for_test(temp_dir=str(home), overrides={"event_log_storage": storage}) as inst:
        inst.add_dynamic_partitions("wallets", ["hot"])
        yield inst


@pytest.fixture
def debank():
    with FakeDebank() as fake:
        fake.set_now(NOW.timestamp())
        yield fake


def hold(fake: FakeDebank, count: int, address: str = ADDRESS, **kwargs) -> list[dict]:
    """``count`` transactions of ``address`` on the fake (one an hour up to ~now by default)."""
    kwargs.setdefault("spacing", HOUR)
    kwargs.setdefault("start", int(NOW.timestamp()) - count * kwargs["spacing"])
    items, tokens = make_history(address, count, **kwargs)
    fake.wallets[address] = list(items)
    fake.tokens.update(tokens)
    return items


def wallet(name: str = "hot", address: str = ADDRESS, chains=("eth",), **extra: str) -> str:
    lines = ["[[wallet]]", f'name = "{name}"', f'address = "{address}"']
    if chains is not None:
        lines.append("chains = [" + ", ".join(f'"{c}"' for c in chains) + "]")
    lines += [f'{k} = "{v}"' for k, v in extra.items()]
    return "\n".join(lines) + "\n"


def write_accounts(tmp_path: Path, *tables: str) -> Path:
    path = tmp_path / "accounts.toml"
    path.write_text("\n".join(tables or (wallet(),)))
    return path


def sync(
    instance,
    warehouse_file: Path,
    tmp_path: Path,
    fake: FakeDebank,
    *,
    ok: bool | None = True,
    now: datetime = NOW,
    reconcile: bool = False,
    budget: float | None = None,
    finality: int = 60,
    access_key: str | None = ACCESS_KEY,
    tags: dict[str, str] = TAGS,
    accounts: Path | None = None,
    **market_fields,
):
    """Materialise ``onchain_transactions`` with the fake's clock at ``now``; returns (result,
    the first materialisation's metadata or None). ``ok`` None: the run may fail or not."""
    fake.set_now(now.timestamp())
    debank = Debank(
        api_url=fake.url, access_key=access_key, units_budget=budget, finality_minutes=finality
    )
    accounts = accounts or tmp_path / "accounts.toml"
    if not accounts.exists():
        write_accounts(tmp_path)
    resources = resources_for(warehouse_file, real_market(tmp_path, now=now, **market_fields))
    resources |= {
        "accounts": Accounts(path=str(accounts)),
        "refresh": RefreshSettings(),
        "debank": debank,
    }
    config = {"ops": {"onchain_transactions": {"config": {"reconcile": True}}}}
    result = dg.materialize(
        [onchain_transactions],
        instance=instance,
        resources=resources,
        tags=tags,
        run_config=config if reconcile else None,
        raise_on_error=False,
    )
    if ok is not None:
        assert result.success is ok, [e.message for e in result.all_events if e.is_failure]
    mats = result.asset_materializations_for_node("onchain_transactions")
    meta = run_figures(mats)
    return result, meta


COLUMNS = ["chain", "tx_id", "ts", "status", "is_scam"]


def stored(path: Path, name: str = "hot", deleted: bool = False) -> pd.DataFrame:
    """A wallet's stored transactions (live ones, or the soft-deleted), by chain and id."""
    found = rows(
        path,
        f"SELECT {', '.join(COLUMNS)} FROM onchain_transactions "
        "WHERE wallet = ? AND is_deleted = ? ORDER BY chain, tx_id",
        [name, deleted],
    )
    frame = pd.DataFrame(found, columns=COLUMNS)
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
    return frame


def served(items: list[dict]) -> pd.DataFrame:
    """What DeBank holds, in :func:`stored`'s shape."""
    frame = pd.DataFrame(
        [
            (
                i["chain"],
                i["id"],
                datetime.fromtimestamp(i["time_at"], UTC),
                "failed" if i["tx"]["status"] == 0 else "success",
                i["is_scam"],
            )
            for i in sorted(items, key=lambda i: (i["chain"], i["id"]))
        ],
        columns=COLUMNS,
    )
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
    return frame


def assert_holds_exactly(path: Path, items: list[dict], name: str = "hot") -> None:
    got = stored(path, name)
    assert not got.duplicated(["chain", "tx_id"]).any()
    pd.testing.assert_frame_equal(got, served(items), check_dtype=False)


def visible(fake: FakeDebank, address: str = ADDRESS) -> list[dict]:
    """The history the fake serves now (its clock hides later items)."""
    return [i for i in fake.wallets[address] if i["time_at"] <= fake.now()]


def start_times(fake: FakeDebank, since: int = 0) -> list[int | None]:
    found = [r.query.get("start_time") for r in fake.history_requests[since:]]
    return [int(s) if s is not None else None for s in found]


def log_rows(path: Path, name: str = "hot") -> list[tuple]:
    """(status, api_requests, api_units, rows_inserted, rows_rejected, error) per sync."""
    return rows(
        path,
        "SELECT status, api_requests, api_units, rows_inserted, rows_rejected, error "
        "FROM sync_log WHERE symbol = ? ORDER BY started_at",
        [name],
    )


def marks(path: Path, name: str = "hot") -> dict[str, tuple]:
    found = rows(
        path,
        "SELECT data_type, last_id, last_timestamp FROM ingestion_state WHERE asset_id = ?",
        [name],
    )
    return {data_type: (last_id, ts) for data_type, last_id, ts in found}


def at(item: dict) -> datetime:
    return datetime.fromtimestamp(item["time_at"], UTC)


# -- the first sync ----------------------------------------------------------------------------


def test_a_first_sync_stores_exactly_the_servers_history_in_close_to_the_fewest_calls(
    instance, warehouse_file, tmp_path, debank
):
    n = 300
    items = hold(debank, n, same_second_every=3, failed_every=11, scam_every=13)
    # Pairs of transactions share a second, some of them across a page boundary.
    times = [i["time_at"] for i in items]
    assert len(times) - len(set(times)) == n // 3
    _, meta = sync(instance, warehouse_file, tmp_path, debank)
    assert_holds_exactly(warehouse_file, items)
    assert {"failed", "success"} == set(stored(warehouse_file)["status"])
    assert stored(warehouse_file)["is_scam"].sum() == sum(i["is_scam"] for i in items)

    # Each page is asked from the last one's oldest second + 1 (that second's items come again),
    # so a page brings 18-19 new items; then the oldest second is asked once more (nothing new,
    # a short page: below it) and the empty page proves the history's start.
    calls = len(debank.history_requests)
    assert calls == meta["history_calls"]
    fewest = math.ceil(n / 20) + 1  # 16: full pages of new items, then the empty page
    assert fewest < calls <= math.ceil(n / 18) + 2  # measured: 19, ceil(300 / 20) = 15
    starts = start_times(debank)
    assert starts[0] is None and starts[1:] == sorted(set(starts[1:]), reverse=True)
    assert [r.path for r in debank.history_requests] == [HISTORY] * calls

    newest, oldest = marks(warehouse_file)["onchain"], marks(warehouse_file)["onchain_oldest"]
    assert newest[1] == at(items[0])
    assert newest[0] in {i["id"] for i in items if i["time_at"] == items[0]["time_at"]}
    assert oldest == (None, BEGINNING)  # the empty page: the whole history is in
    status, requests, units, inserted, rejected, error = log_rows(warehouse_file)[0]
    assert (status, inserted, rejected, error) == ("success", n, 0, None)
    assert units == debank.charged == 5 * calls
    assert requests == 1 + calls  # the free balance read first, then the history calls
    assert meta["rows_inserted"] == meta["rows_fetched"] == n and meta["rows_rejected"] == 0
    # DeBank's nulls stay nulls (not the text 'nan').
    assert rows(
        warehouse_file, "SELECT count(*) FROM onchain_transactions WHERE cate_id = 'nan'"
    ) == [(0,)]


def test_one_chain_asks_history_list_several_all_history_list_and_none_every_chain(
    instance, warehouse_file, tmp_path, debank
):
    addresses = {"all": "0x" + "a1" * 20, "one": "0x" + "b2" * 20, "two": "0x" + "c3" * 20}
    held = {
        name: hold(debank, 9, address, chains=("eth", "arb", "bsc"), seed=n)
        for n, (name, address) in enumerate(addresses.items())
    }
    accounts = write_accounts(
        tmp_path,
        wallet("all", addresses["all"], chains=None),
        wallet("one", addresses["one"], chains=("eth",)),
        wallet("two", addresses["two"], chains=("eth", "arb")),
    )
    instance.add_dynamic_partitions("wallets", ["all", "one", "two"])
    tags = {RANGE_START: "2026-11-01|all", RANGE_END: "2026-11-24|two"}
    sync(instance, warehouse_file, tmp_path, debank, tags=tags, accounts=accounts)

    def asked(name: str) -> list[tuple]:
        return sorted(
            {
                (r.path, r.query.get("chain_id"), r.query.get("chain_ids"), r.query["page_count"])
                for r in debank.history_requests
                if r.query["id"] == addresses[name]
            }
        )

    assert asked("one") == [(HISTORY, "eth", None, "20")]
    assert asked("two") == [(ALL_HISTORY, None, "eth,arb", "20")]
    assert asked("all") == [(ALL_HISTORY, None, None, "20")]
    assert_holds_exactly(warehouse_file, held["all"], "all")
    assert_holds_exactly(warehouse_file, [i for i in held["one"] if i["chain"] == "eth"], "one")
    two = [i for i in held["two"] if i["chain"] in ("eth", "arb")]
    assert_holds_exactly(warehouse_file, two, "two")
    # Each wallet's units are what the server charged for its calls (all_history_list: 20).
    for name, address in addresses.items():
        charged = sum(c.units for c in debank.charges if c.address == address)
        assert log_rows(warehouse_file, name)[0][2] == charged > 0
    assert {c.units for c in debank.charges if c.address == addresses["all"]} == {20}


# -- incremental syncs -------------------------------------------------------------------------


def test_an_incremental_sync_fetches_only_what_is_new_and_nothing_new_costs_one_call(
    instance, warehouse_file, tmp_path, debank
):
    # One every 30 minutes; the 19 after NOW happen only later.
    start = int(NOW.timestamp()) - 80 * 1800
    items = hold(debank, 100, start=start, spacing=1800)
    sync(instance, warehouse_file, tmp_path, debank)
    assert_holds_exactly(warehouse_file, items[19:])
    first_calls = len(debank.history_requests)

    later = NOW + timedelta(hours=10)
    _, meta = sync(instance, warehouse_file, tmp_path, debank, now=later)
    assert_holds_exactly(warehouse_file, items)
    # 19 new and the last hour re-read: the second page reaches below it and the walk stops.
    assert start_times(debank, first_calls) == [None, int(NOW.timestamp()) + 1]
    assert meta["rows_inserted"] == 19 and meta["history_calls"] == 2
    assert marks(warehouse_file)["onchain"] == (items[0]["id"], at(items[0]))
    assert marks(warehouse_file)["onchain_oldest"] == (None, BEGINNING)

    # An hour on, nothing new: one call.
    calls, charged = len(debank.history_requests), debank.charged
    _, meta = sync(instance, warehouse_file, tmp_path, debank, now=later + timedelta(hours=1))
    assert start_times(debank, calls) == [None]
    assert debank.charged - charged == 5 == meta["units_spent"]
    assert meta["rows_inserted"] == 0 and meta["history_calls"] == 1
    assert_holds_exactly(warehouse_file, items)


def test_units_recorded_are_the_units_the_server_charged(
    instance, warehouse_file, tmp_path, debank
):
    # With a budget each call is measured on its own (without one, the wallet's total is: the
    # first sync and incremental tests check those units).
    budget = 10_000.0
    items = hold(debank, 70, chains=("eth", "arb"))
    accounts = write_accounts(tmp_path, wallet(chains=("eth", "arb")))
    spent = []
    for moment in (NOW, NOW + timedelta(hours=2)):
        if moment > NOW:
            debank.add({**items[0], "id": "0x" + "77" * 32, "time_at": moment.timestamp() - 60})
        charged = debank.charged
        _, meta = sync(instance, warehouse_file, tmp_path, debank, now=moment, budget=budget,
                       accounts=accounts)  # fmt: skip
        spent.append(debank.charged - charged)
        assert meta["units_spent"] == spent[-1] == 20 * meta["history_calls"]  # all_history_list
        assert log_rows(warehouse_file)[-1][2] == spent[-1]
        assert meta["units_remaining"] == debank.balance
        assert meta["units_today"] == meta["units_this_month"] == sum(spent)
    assert spent[1] == 20  # one call: the new transaction and the finality re-read
    state = (tmp_path / "sources" / "debank-units.json").read_text()
    assert f'"spent": {float(sum(spent))}' in state  # the day's budget counts it too


# -- the units budget --------------------------------------------------------------------------


def test_a_spent_budget_stops_before_the_call_keeps_what_was_fetched_and_the_next_day_resumes(
    instance, warehouse_file, tmp_path, debank
):
    items = hold(debank, 100)
    # 5 units a call: five calls fit in 27, the sixth would pass it.
    result, _ = sync(instance, warehouse_file, tmp_path, debank, budget=27, ok=False)
    assert debank.charged == 25 and len(debank.history_requests) == 5
    newest, oldest = marks(warehouse_file)["onchain"], marks(warehouse_file)["onchain_oldest"]
    # Five pages: 20 new, then 19 a page (each repeats the boundary second). The oldest
    # watermark is the last committed page's boundary second + 1: all after it is stored.
    assert oldest[1] == at(items[95]) + timedelta(seconds=1)
    assert newest == (items[0]["id"], at(items[0]))
    assert_holds_exactly(warehouse_file, items[:96])

    message = failure_message(result)
    assert "RateLimitedError" in message
    assert "1 of 1 fetches deferred (budget_exhausted) until 2026-11-25 00:00:00 UTC" in message
    assert "PLATFORM_DEBANK_UNITS_BUDGET" in message
    assert "resets at 2026-11-25 00:00 UTC" in message
    status, _, units, inserted, _, error = log_rows(warehouse_file)[0]
    assert (status, units, inserted) == ("budget_exhausted", 25, 96)
    assert "PLATFORM_DEBANK_UNITS_BUDGET" in error
    deferred = rows(
        warehouse_file,
        "SELECT symbol, data_type, source, retry_after, requested_start, requested_end, reason "
        "FROM deferred_fetches",
    )
    assert [d[:6] for d in deferred] == [("hot", "onchain", "debank", MIDNIGHT, *WINDOW)]
    assert "PLATFORM_DEBANK_UNITS_BUDGET" in deferred[0][6]

    # The same day: not one more call.
    sync(instance, warehouse_file, tmp_path, debank, budget=27, ok=False)
    assert debank.charged == 25 and len(debank.history_requests) == 5
    assert log_rows(warehouse_file)[-1][0::2] == ("budget_exhausted", 0.0, 0)

    # The next UTC day: the top of the history once (nothing new), then on from the oldest
    # watermark: no committed page is asked again.
    tomorrow = MIDNIGHT + timedelta(minutes=30)
    sync(instance, warehouse_file, tmp_path, debank, budget=27, now=tomorrow)
    assert_holds_exactly(warehouse_file, items)
    again = start_times(debank, 5)
    assert again[0] is None and again[1] == int(oldest[1].timestamp())
    assert all(s < int(oldest[1].timestamp()) for s in again[2:])
    assert debank.charged - 25 == 5 * len(again) <= 27
    assert marks(warehouse_file)["onchain_oldest"] == (None, BEGINNING)
    assert rows(warehouse_file, "SELECT count(*) FROM deferred_fetches") == [(0,)]
    assert log_rows(warehouse_file)[-1][0] == "success"


def test_debanks_own_403_takes_the_budget_path_and_a_recharge_resumes(
    instance, warehouse_file, tmp_path, debank
):
    items = hold(debank, 60)
    debank.balance = 12  # two calls, then DeBank answers 403
    result, _ = sync(instance, warehouse_file, tmp_path, debank, ok=False)
    assert debank.charged == 10 and len(debank.history_requests) == 3
    message = failure_message(result)
    assert "RateLimitedError" in message and "(budget_exhausted)" in message
    assert "units ran out" in message and "capacity limit" in message
    assert log_rows(warehouse_file)[0][0] == "budget_exhausted"
    (deferred,) = rows(warehouse_file, "SELECT symbol, retry_after FROM deferred_fetches")
    assert deferred == ("hot", MIDNIGHT)
    oldest = marks(warehouse_file)["onchain_oldest"][1]
    assert oldest == at(items[38]) + timedelta(seconds=1)
    assert_holds_exactly(warehouse_file, items[:39])

    debank.balance = 1_000  # recharged
    before = len(debank.history_requests)
    sync(instance, warehouse_file, tmp_path, debank)
    assert_holds_exactly(warehouse_file, items)
    again = start_times(debank, before)
    assert again[:2] == [None, int(oldest.timestamp())]
    assert all(s < int(oldest.timestamp()) for s in again[2:])
    assert rows(warehouse_file, "SELECT count(*) FROM deferred_fetches") == [(0,)]


# -- faults and bad items ----------------------------------------------------------------------


def test_throttles_and_5xx_answers_are_retried(instance, warehouse_file, tmp_path, debank):
    items = hold(debank, 45)
    slow = {"error_code": 429, "error_msg": "Too Many Requests"}
    debank.faults += [
        Fault(HISTORY, 429, body=slow),  # DeBank sends no Retry-After
        Fault(HISTORY),  # the first page
        Fault(HISTORY, 503, body=HTML_503, content_type="text/html"),
        Fault(HISTORY, 500, body={"error_code": 500, "error_msg": "internal error"}),
        Fault(HISTORY),  # the second page
        Fault(HISTORY, 502, body={"error_code": 502, "error_msg": "bad gateway"}),
    ]
    sync(instance, warehouse_file, tmp_path, debank, retry_base_delay=0.2, retry_max_delay=0.4)
    assert_holds_exactly(warehouse_file, items)
    sent = debank.history_requests
    pages = len(debank.charges)
    assert len(sent) == pages + 4  # four answers retried, each page charged once
    assert sent[1].at - sent[0].at >= 0.1, "the 429 was not backed off"
    assert sent[0].query == sent[1].query and sent[2].query == sent[4].query
    # The balance read, then every history request, retries included; units only for answers.
    assert log_rows(warehouse_file)[0][:3] == ("success", 1 + len(sent), 5.0 * pages)


def test_short_pages_are_not_the_end(instance, warehouse_file, tmp_path, debank):
    items = hold(debank, 45, same_second_every=4)
    debank.history_short = 7
    _, meta = sync(instance, warehouse_file, tmp_path, debank)
    assert_holds_exactly(warehouse_file, items)
    assert meta["history_calls"] <= math.ceil(45 / 5) + 2
    assert marks(warehouse_file)["onchain_oldest"] == (None, BEGINNING)


def test_malformed_items_are_rejected_with_a_reason_and_the_rest_stored(
    instance, warehouse_file, tmp_path, debank
):
    good = hold(debank, 8)
    no_time = {k: v for k, v in good[5].items() if k != "time_at"} | {"id": "0x" + "01" * 32}
    soon = good[3] | {"id": "0x" + "02" * 32, "time_at": "soon"}
    negative = good[6] | {"id": "0x" + "03" * 32, "time_at": good[6]["time_at"] - 7}
    negative["receives"] = [{"amount": -5.0, "from_addr": COLD, "token_id": "eth"}]
    debank.wallets[ADDRESS] = good[:2] + [soon] + good[2:5] + [no_time] + good[5:] + [negative]
    _, meta = sync(instance, warehouse_file, tmp_path, debank)
    assert_holds_exactly(warehouse_file, good)
    rejected = rows(
        warehouse_file,
        "SELECT symbol, data_type, source, ts, reason, raw FROM rejected_rows ORDER BY reason",
    )
    assert [r[:5] for r in rejected] == [
        ("hot", "onchain", "debank", at(negative), "a receive amount -5.0 is negative or not finite"),
        ("hot", "onchain", "debank", None, "no usable time_at ('soon')"),
        ("hot", "onchain", "debank", None, "no usable time_at (None)"),
    ]  # fmt: skip
    assert [r[5].count('"id": "0x0') for r in rejected] == [1, 1, 1]
    assert meta["rows_rejected"] == 3 and log_rows(warehouse_file)[0][4] == 3


# -- finality and reconcile ----------------------------------------------------------------------


def test_the_finality_span_catches_status_flips_late_arrivals_reorgs_and_returns(
    instance, warehouse_file, tmp_path, debank
):
    start = int(NOW.timestamp()) - 30 * 600  # one every 10 minutes, the newest 30 minutes ago
    items = hold(debank, 30, start=start, spacing=600)
    sync(instance, warehouse_file, tmp_path, debank)
    flipped, gone, old_gone = items[2], items[4], items[20]
    late = items[5] | {"id": "0x" + "1a" * 32, "time_at": items[0]["time_at"] - 15 * 60}
    debank.set_status(flipped["id"], "eth", 0)
    debank.add(late)
    debank.remove(gone["id"], "eth")  # a reorganisation, 40 minutes behind the newest
    debank.remove(old_gone["id"], "eth")  # 200 minutes behind: past the finality span
    calls = len(debank.history_requests)
    _, meta = sync(instance, warehouse_file, tmp_path, debank)
    assert start_times(debank, calls) == [None]  # one page covers the last hour
    assert (meta["rows_inserted"], meta["transactions_changed"]) == (1, 1)
    assert meta["transactions_deleted"] == 1 and meta["transactions_restored"] == 0
    assert_holds_exactly(warehouse_file, visible(debank) + [old_gone])
    assert stored(warehouse_file, deleted=True)["tx_id"].tolist() == [gone["id"]]
    (kept,) = rows(
        warehouse_file,
        "SELECT is_deleted, deleted_at IS NOT NULL, status FROM onchain_transactions "
        "WHERE tx_id = ?",
        [gone["id"]],
    )
    assert kept == (True, True, "success")
    history = rows(
        warehouse_file,
        "SELECT tx_id, change, status, is_deleted FROM onchain_transactions_history ORDER BY change",
    )
    assert history == [(gone["id"], "delete", "success", False), (flipped["id"], "update", "success", False)]  # fmt: skip
    assert rows(
        warehouse_file, "SELECT status FROM onchain_transactions WHERE tx_id = ?", [flipped["id"]]
    ) == [("failed",)]

    debank.add(gone)  # it comes back
    _, meta = sync(instance, warehouse_file, tmp_path, debank)
    assert meta["transactions_restored"] == 1 and meta["transactions_deleted"] == 0
    assert_holds_exactly(warehouse_file, visible(debank) + [old_gone])
    assert stored(warehouse_file, deleted=True).empty
    changes = rows(
        warehouse_file,
        "SELECT change FROM onchain_transactions_history WHERE tx_id = ? ORDER BY valid_to",
        [gone["id"]],
    )
    assert changes == [("delete",), ("restore",)]


def test_reconcile_soft_deletes_and_restores_within_reconcile_days(
    instance, warehouse_file, tmp_path, debank
):
    items = hold(debank, 40, spacing=6 * HOUR)  # ten days, the newest six hours ago
    sync(instance, warehouse_file, tmp_path, debank)
    # Behind the first page (five days), within seven days, and nine days old.
    gone, flipped, outside = items[24], items[22], items[36]
    debank.remove(gone["id"], "eth")
    debank.set_status(flipped["id"], "eth", 0)
    debank.remove(outside["id"], "eth")
    # Without reconcile, what lies behind the finality span is not read again.
    calls = len(debank.history_requests)
    _, meta = sync(instance, warehouse_file, tmp_path, debank)
    assert start_times(debank, calls) == [None] and meta["transactions_deleted"] == 0

    calls = len(debank.history_requests)
    _, meta = sync(instance, warehouse_file, tmp_path, debank, reconcile=True)
    # The top once, then seven days (28 transactions) re-read in full: two pages.
    assert len(start_times(debank, calls)) == 1 + 2
    assert (meta["transactions_deleted"], meta["transactions_changed"]) == (1, 1)
    assert_holds_exactly(warehouse_file, visible(debank) + [outside])
    assert stored(warehouse_file, deleted=True)["tx_id"].tolist() == [gone["id"]]

    debank.add(gone)
    _, meta = sync(instance, warehouse_file, tmp_path, debank, reconcile=True)
    assert (meta["transactions_restored"], meta["transactions_deleted"]) == (1, 0)
    assert_holds_exactly(warehouse_file, visible(debank) + [outside])


# -- a killed run ------------------------------------------------------------------------------

# Syncs wallet "hot" from the fake DeBank at argv[4] into the shared instance and warehouse.
WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path

    import dagster as dg

    from platform_pkg.accounts.resources import Accounts
    from platform_pkg.prices.schedules import RefreshSettings
    from platform_pkg.wallets.assets import onchain_transactions
    from platform_pkg.wallets.resources import Debank
    from platform_tests.conftest import resources_for
    from platform_tests.fakes.debank import ACCESS_KEY
    from platform_tests.fakes.market import real_market

    home, path, accounts, url, state = sys.argv[1:6]
    market = real_market(Path(state), request_timeout=120.0)
    with dg.DagsterInstance.from_config(home) as instance:
        dg.materialize(
            [onchain_transactions],
            instance=instance,
            resources=resources_for(Path(path), market)
            | {
                "accounts": Accounts(path=accounts),
                "refresh": RefreshSettings(),
                "debank": Debank(api_url=url, access_key=ACCESS_KEY),
            },
            tags={
                "dagster/asset_partition_range_start": "2026-11-01|hot",
                "dagster/asset_partition_range_end": "2026-11-24|hot",
            },
        )
    """
)


def test_a_killed_run_resumes_without_refetching_committed_pages(warehouse_file, tmp_path, debank):
    items = hold(debank, 100)
    # Two pages are served; the third hangs, as a stalled connection would.
    debank.faults += [Fault(HISTORY, times=2), Fault(HISTORY, delay=60.0)]
    accounts = write_accounts(tmp_path)
    with dg.instance_for_test() as plain:
        plain.add_dynamic_partitions("wallets", ["hot"])
        writer = subprocess.Popen(
            [sys.executable, "-c", WRITER, plain.root_directory, str(warehouse_file),
             str(accounts), debank.url, str(tmp_path)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 60
            while len(debank.history_requests) < 3:  # page 2 commits before page 3 is asked
                assert writer.poll() is None, writer.stderr.read()[-3000:]
                assert time.monotonic() < deadline, "the writer never asked for the third page"
                time.sleep(0.05)
        finally:
            writer.kill()
            writer.wait(timeout=30)
        first = start_times(debank)
        page2 = int(items[38]["time_at"]) + 1  # page 1: items 0-19, page 2: 19-38
        assert first == [None, int(items[19]["time_at"]) + 1, page2]
        assert_holds_exactly(warehouse_file, items[:39])
        assert marks(warehouse_file)["onchain_oldest"][1].timestamp() == page2

        tags = {RANGE_START: "2026-11-01|hot", RANGE_END: "2026-11-24|hot"}
        sync(plain, warehouse_file, tmp_path, debank, tags=tags)
    assert_holds_exactly(warehouse_file, items)
    # The top once (the incremental check), then on from the oldest watermark.
    again = start_times(debank, 3)
    assert again[:2] == [None, page2]
    assert all(s < page2 for s in again[2:])
    # Items 38-99: four pages with news (20, 19, 19, 4), the last second asked again, the end.
    assert len(again) == 1 + 4 + 1 + 1
    # Dagster still has the killed run as started, so its log row is left open.
    assert [r[0::3] for r in log_rows(warehouse_file)] == [("running", 39), ("success", 61)]


# -- bad input at run time ---------------------------------------------------------------------


def test_bad_wallets_in_the_accounts_file_fail_the_run_by_name_and_field_after_the_rest_syncs(
    instance, warehouse_file, tmp_path, debank
):
    items = hold(debank, 5)
    accounts = write_accounts(
        tmp_path,
        wallet("bad", "0x1234"),
        wallet("hot"),
        wallet("typo", COLD, chains=("ethereum",)),
    )
    instance.add_dynamic_partitions("wallets", ["bad", "typo"])
    tags = {RANGE_START: "2026-11-01|hot", RANGE_END: "2026-11-24|typo"}
    result, _ = sync(
        instance, warehouse_file, tmp_path, debank, ok=False, tags=tags, accounts=accounts
    )
    message = failure_message(result)
    assert "wallet account 'bad', field 'address'" in message
    assert "'0x1234' is not an address" in message
    assert "wallet account 'typo', field 'chains'" in message and "did you mean 'eth'" in message
    assert_holds_exactly(warehouse_file, items)
    assert rows(warehouse_file, "SELECT DISTINCT symbol, status FROM sync_log") == [
        ("hot", "success")
    ]
    assert {r.query["id"] for r in debank.history_requests} == {ADDRESS}


def test_without_an_access_key_debank_wallets_fail_by_name_and_demo_wallets_sync(
    instance, warehouse_file, tmp_path, debank
):
    hold(debank, 5)
    demo = wallet("demo-wallet", "0x5853ed4f26a3fcea565b3fbc698bb19cdf6deb85", None, source="demo")
    accounts = write_accounts(tmp_path, demo, wallet("hot"))
    instance.add_dynamic_partitions("wallets", ["demo-wallet"])
    tags = {RANGE_START: "2026-11-20|hot", RANGE_END: "2026-11-24|demo-wallet"}
    result, _ = sync(
        instance, warehouse_file, tmp_path, debank, ok=False, tags=tags, accounts=accounts,
        access_key=None,
    )  # fmt: skip
    message = failure_message(result)
    assert "PLATFORM_DEBANK_ACCESS_KEY" in message and "'hot'" in message
    assert debank.requests == []
    assert len(stored(warehouse_file, "demo-wallet")) > 0
    statuses = dict(rows(warehouse_file, "SELECT symbol, status FROM sync_log"))
    assert statuses == {"demo-wallet": "success", "hot": "failed"}


def test_the_demo_wallets_make_believe_units_leave_the_debank_budget_alone(
    instance, warehouse_file, tmp_path, debank
):
    items = hold(debank, 15)
    demo = wallet("demo-wallet", "0x5853ed4f26a3fcea565b3fbc698bb19cdf6deb85", None, source="demo")
    accounts = write_accounts(tmp_path, demo, wallet("hot"))
    instance.add_dynamic_partitions("wallets", ["demo-wallet"])
    tags = {RANGE_START: "2026-11-20|hot", RANGE_END: "2026-11-24|demo-wallet"}
    # The demo wallet is synced first; then DeBank's three calls fit in 17 units.
    _, meta = sync(
        instance, warehouse_file, tmp_path, debank, budget=17, tags=tags, accounts=accounts
    )
    assert_holds_exactly(warehouse_file, items)
    assert len(stored(warehouse_file, "demo-wallet")) > 20
    assert debank.charged == 15 == meta["units_today"] == meta["units_this_month"]
    assert log_rows(warehouse_file, "demo-wallet")[0][2] > 0  # its own units, still recorded
    state = (tmp_path / "sources" / "debank-units.json").read_text()
    assert '"spent": 15.0' in state


# -- secrets -----------------------------------------------------------------------------------


def test_the_access_key_never_reaches_logs_metadata_errors_or_the_warehouse(
    instance, warehouse_file, tmp_path, debank
):
    hold(debank, 5)
    hold(debank, 5, COLD)
    echo = {"error_code": 1, "error_msg": f"AccessKey {ACCESS_KEY} is not allowed here"}
    debank.faults += [
        Fault(HISTORY, 401, body=echo),  # cold (first by name) fails for good
        Fault(HISTORY, 503, body=echo),  # hot's first call is retried
    ]
    accounts = write_accounts(tmp_path, wallet("cold", COLD), wallet("hot"))
    instance.add_dynamic_partitions("wallets", ["cold"])
    tags = {RANGE_START: "2026-11-01|hot", RANGE_END: "2026-11-24|cold"}
    result, meta = sync(
        instance, warehouse_file, tmp_path, debank, ok=False, tags=tags, accounts=accounts
    )
    message = failure_message(result)
    assert "cold" in message and "HTTP 401" in message
    assert len(stored(warehouse_file)) == 5
    texts = [warehouse_text(warehouse_file), str(meta), message]
    texts += [repr(record) for record in instance.all_logs(result.run_id)]
    for file in [*Path(instance.root_directory).rglob("*"), *tmp_path.rglob("*")]:
        if file.is_file():
            texts.append(file.read_bytes().decode("utf-8", "replace"))
    assert "AccessKey *** is not allowed" in texts[0]  # the sync_log error, redacted
    for text in texts:
        assert ACCESS_KEY not in text


# -- progress that outlasts a run, chains added later, rejects met twice ----------------------------


def test_a_backlog_bigger_than_a_days_budget_is_caught_up_over_days(
    instance, warehouse_file, tmp_path, debank
):
    items = hold(debank, 130, start=int(NOW.timestamp()) - 10 * HOUR, spacing=300)
    debank.set_now(NOW.timestamp() - 9 * HOUR)
    first = visible(debank)
    assert len(first) == 13
    sync(instance, warehouse_file, tmp_path, debank, now=NOW - timedelta(hours=9))
    assert_holds_exactly(warehouse_file, first)
    # 117 new ones by tomorrow; 22 units a day is four calls (77 transactions a day at most).
    for day in (1, 2):
        tomorrow = NOW + timedelta(days=day, hours=-10)
        sync(instance, warehouse_file, tmp_path, debank, ok=None, budget=22, now=tomorrow)
    assert_holds_exactly(warehouse_file, items)


def test_a_chain_added_to_a_wallet_gets_its_whole_history(
    instance, warehouse_file, tmp_path, debank
):
    items = hold(debank, 40, chains=("eth", "arb"))
    sync(instance, warehouse_file, tmp_path, debank)
    assert_holds_exactly(warehouse_file, [i for i in items if i["chain"] == "eth"])
    write_accounts(tmp_path, wallet(chains=("eth", "arb")))
    sync(instance, warehouse_file, tmp_path, debank)
    assert_holds_exactly(warehouse_file, items)


def test_a_malformed_item_read_again_by_later_syncs_is_rejected_once(
    instance, warehouse_file, tmp_path, debank
):
    good = hold(debank, 8)
    negative = good[6] | {"id": "0x" + "03" * 32, "time_at": good[6]["time_at"] - 7}
    negative["receives"] = [{"amount": -5.0, "from_addr": COLD, "token_id": "eth"}]
    debank.wallets[ADDRESS] = good + [negative]
    for hours in range(2):
        sync(instance, warehouse_file, tmp_path, debank, now=NOW + timedelta(hours=hours))
    assert [r[4] for r in log_rows(warehouse_file)] == [1, 0]
    assert rows(warehouse_file, "SELECT count(*) FROM rejected_rows") == [(1,)]


def test_a_chain_dropped_keeps_its_rows_and_named_again_is_read_back(
    instance, warehouse_file, tmp_path, debank
):
    items = hold(debank, 40, chains=("eth", "arb"))
    write_accounts(tmp_path, wallet(chains=("eth", "arb")))
    sync(instance, warehouse_file, tmp_path, debank)
    assert_holds_exactly(warehouse_file, items)
    # arb dropped: its stored rows are not the finality re-read's to delete.
    write_accounts(tmp_path, wallet(chains=("eth",)))
    later = NOW + timedelta(hours=3)
    new = {**items[0], "id": "0x" + "88" * 32, "chain": "arb", "time_at": later.timestamp() - 60}
    debank.add(new)
    sync(instance, warehouse_file, tmp_path, debank, now=later)
    assert stored(warehouse_file, deleted=True).empty
    assert new["id"] not in set(stored(warehouse_file)["tx_id"])
    # arb named again: what it missed meanwhile is read back.
    write_accounts(tmp_path, wallet(chains=("eth", "arb")))
    sync(instance, warehouse_file, tmp_path, debank, now=later)
    assert_holds_exactly(warehouse_file, items + [new])
