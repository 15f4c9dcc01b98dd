"""The exchange_trades asset through real ccxt and the fake Binance: exact trades, fewest requests."""

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

from platform_pkg.accounts.resources import Accounts
from platform_pkg.market.candles import to_ms
from platform_pkg.market.demo import DEMO_LISTINGS, DemoMarket
from platform_pkg.prices.schedules import RefreshSettings
from platform_pkg.trades.assets import exchange_trades
from platform_pkg.warehouse.io_manager import run_figures
from platform_tests.conftest import NOW, range_tags, resources_for, rows, warehouse_text
from platform_tests.fakes.binance import DAY_MS, FakeBinance, make_trades
from platform_tests.fakes.market import clear_market_env, failure_message, real_market
from platform_tests.fakes.server import HTML_503, Fault

KEY, SECRET = "tk-7Hq2Vx9PzR4mWs3", "ts-Bn5Lc8Ya3Ke6Jd1"
KEY_ENV, SECRET_ENV = "TEST_BINANCE_KEY", "TEST_BINANCE_SECRET"
T0 = to_ms(NOW - timedelta(days=3))
TODAY = "2026-11-24"
BTC_ETH = {
    "dagster/asset_partition_range_start": f"{TODAY}|BTC-USDT",
    "dagster/asset_partition_range_end": f"{TODAY}|ETH-USDT",
}
INTERNAL = {"code": -1001, "msg": "Internal error; unable to process your request."}


@pytest.fixture(autouse=True)
def _credentials(monkeypatch):
    clear_market_env(monkeypatch)
    monkeypatch.setenv(KEY_ENV, KEY)
    monkeypatch.setenv(SECRET_ENV, SECRET)


@pytest.fixture
def binance():
    with FakeBinance(DemoMarket(clock=lambda: NOW), api_key=KEY, api_secret=SECRET) as fake:
        yield fake


def exchange_account(
    url: str,
    *,
    name: str = "binance-main",
    markets: tuple[str, ...] = ("BTC-USDT", "ETH-USDT"),
    key_env: str = KEY_ENV,
    secret_env: str = SECRET_ENV,
    paging: str | None = None,
) -> str:
    """One ``[[exchange]]`` table of the accounts file."""
    lines = [
        "[[exchange]]",
        f'name = "{name}"',
        'exchange = "binance"',
        f'api_key_env = "{key_env}"',
        f'secret_env = "{secret_env}"',
        f'api_url = "{url}"',
        "markets = [" + ", ".join(f'"{m}"' for m in markets) + "]",
    ]
    if paging is not None:
        lines.append(f'paging = "{paging}"')
    return "\n".join(lines) + "\n"


def write_accounts(tmp_path: Path, *tables: str) -> Path:
    path = tmp_path / "accounts.toml"
    path.write_text("\n".join(tables))
    return path


def sync(
    instance,
    warehouse_file: Path,
    tmp_path: Path,
    accounts: Path,
    tags: dict[str, str],
    *,
    ok: bool = True,
    reconcile: bool = False,
    now: datetime = NOW,
    **market_fields,
):
    """Materialise ``exchange_trades`` for ``tags``; returns (result, first materialisation's
    metadata or None)."""
    resources = resources_for(warehouse_file, real_market(tmp_path, now=now, **market_fields))
    resources |= {"accounts": Accounts(path=str(accounts)), "refresh": RefreshSettings()}
    config = {"ops": {"exchange_trades": {"config": {"reconcile": True}}}} if reconcile else None
    result = dg.materialize(
        [exchange_trades],
        instance=instance,
        resources=resources,
        tags=tags,
        run_config=config,
        raise_on_error=False,
    )
    assert result.success is ok, [e.message for e in result.all_events if e.is_failure]
    mats = result.asset_materializations_for_node("exchange_trades")
    meta = run_figures(mats)
    return result, meta


COLUMNS = ["trade_id", "ts", "price", "amount", "fee", "fee_currency"]


def stored(path: Path, symbol: str = "BTC-USDT", account: str = "binance-main") -> pd.DataFrame:
    """The live stored trades of one (account, market), by id."""
    frame = pd.DataFrame(
        rows(
            path,
            f"SELECT {', '.join(COLUMNS)} FROM exchange_trades "
            "WHERE account = ? AND symbol = ? AND NOT is_deleted ORDER BY trade_id::HUGEINT",
            [account, symbol],
        ),
        columns=COLUMNS,
    )
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
    return frame


def served(raw: list[dict]) -> pd.DataFrame:
    """What the exchange holds, in the columns :func:`stored` returns."""
    frame = pd.DataFrame(
        [
            {
                "trade_id": str(r["id"]),
                "ts": pd.Timestamp(r["time"], unit="ms", tz="UTC"),
                "price": float(r["price"]),
                "amount": float(r["qty"]),
                "fee": float(r["commission"]),
                "fee_currency": r["commissionAsset"],
            }
            for r in sorted(raw, key=lambda r: r["id"])
        ],
        columns=COLUMNS,
    )
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
    return frame


def assert_holds_exactly(
    path: Path, raw: list[dict], symbol: str = "BTC-USDT", account: str = "binance-main"
) -> None:
    got, want = stored(path, symbol, account), served(raw)
    assert got["trade_id"].is_unique
    pd.testing.assert_frame_equal(got, want, check_dtype=False)


def from_ids(fake: FakeBinance, pair: str = "BTCUSDT") -> list[str | None]:
    return [r.query.get("fromId") for r in fake.trade_requests if r.query.get("symbol") == pair]


def log_rows(path: Path) -> dict[str, tuple]:
    """asset id → (status, api_requests, api_units, rows_inserted, rows_rejected, error)."""
    found = rows(
        path,
        "SELECT symbol, status, api_requests, api_units, rows_inserted, rows_rejected, error "
        "FROM sync_log ORDER BY started_at",
    )
    return {r[0]: r[1:] for r in found}


def cursor(path: Path, asset_id: str, data_type: str) -> tuple | None:
    found = rows(
        path,
        "SELECT last_id, last_timestamp FROM ingestion_state WHERE asset_id = ? AND data_type = ?",
        [asset_id, data_type],
    )
    return found[0] if found else None


# -- id paging -------------------------------------------------------------------------------


def test_a_first_sync_stores_exactly_the_exchanges_trades_in_pages_of_1000(
    instance, warehouse_file, tmp_path, binance
):
    raw = make_trades("BTCUSDT", 2_500, start_ms=T0, step_ms=60_000)
    assert raw[0]["id"] > 2**31
    binance.trades["BTCUSDT"] = raw
    accounts = write_accounts(tmp_path, exchange_account(binance.url, markets=("BTC-USDT",)))
    _, meta = sync(
        instance, warehouse_file, tmp_path, accounts, range_tags("BTC-USDT", TODAY, TODAY)
    )
    assert_holds_exactly(warehouse_file, raw)
    # A page ends the walk only when it brings nothing new; each next page starts just after the
    # last page's newest id.
    after = [str(r["id"] + 1) for r in raw]
    assert from_ids(binance) == ["0", after[999], after[1999], after[2499]]
    assert len(from_ids(binance)) == math.ceil(len(raw) / 1000) + 1
    assert cursor(warehouse_file, "binance-main:BTC-USDT", "trades") == (
        str(raw[-1]["id"]),
        datetime.fromtimestamp(raw[-1]["time"] / 1000, UTC),
    )
    # The whole history is in: an id sync starts from the account's first trade.
    assert cursor(warehouse_file, "binance-main:BTC-USDT", "trades_oldest") == (
        "0",
        datetime(1970, 1, 1, tzinfo=UTC),
    )
    assert meta["rows_inserted"] == meta["rows_fetched"] == 2_500 and meta["rows_rejected"] == 0
    (status, requests, units, inserted, rejected, error) = log_rows(warehouse_file)[
        "binance-main:BTC-USDT"
    ]
    assert (status, inserted, rejected, error) == ("success", 2_500, 0, None)
    # Four myTrades requests and the markets (exchangeInfo), each weighing 20.
    assert (requests, units) == (5, 5 * 20)


@pytest.fixture
def batching_instance(tmp_path, monkeypatch):
    """An instance that records a ranged run's per-partition events in bulk, as the deployed one
    does (dagster.yaml): a year of partitions then costs no more than the sync itself."""
    monkeypatch.setenv("DAGSTER_EVENT_BATCH_SIZE", "1000")
    home = tmp_path / "dagster_home"
    home.mkdir()
    storage = {
        "module": "platform_pkg.event_log_storage",
        "class": "BatchingSqliteEventLogStorage",
        "config": {"base_dir": str(home / "runs")},
    }
    with dg.instance_for_test(temp_dir=str(home), overrides={"event_log_storage": storage}) as inst:
        inst.add_dynamic_partitions("symbols", list(DEMO_LISTINGS))
        yield inst


def test_nothing_new_costs_one_request_per_market_for_a_day_or_a_year(
    batching_instance, warehouse_file, tmp_path, binance
):
    instance = batching_instance
    binance.trades["BTCUSDT"] = make_trades("BTCUSDT", 40, start_ms=T0)
    binance.trades["ETHUSDT"] = make_trades("ETHUSDT", 25, start_ms=T0)
    accounts = write_accounts(tmp_path, exchange_account(binance.url))
    sync(instance, warehouse_file, tmp_path, accounts, BTC_ETH)
    year = {
        "dagster/asset_partition_range_start": "2025-11-25|BTC-USDT",
        "dagster/asset_partition_range_end": f"{TODAY}|ETH-USDT",
    }
    for tags in (BTC_ETH, year):
        binance.requests.clear()
        _, meta = sync(instance, warehouse_file, tmp_path, accounts, tags)
        assert [r.path for r in binance.requests] == ["/api/v3/myTrades"] * 2  # markets cached
        assert meta["api_requests"] == 2 and meta["api_units"] == 2 * 20
        assert meta["rows_inserted"] == 0
    newest = {pair: str(binance.trades[pair][-1]["id"]) for pair in ("BTCUSDT", "ETHUSDT")}
    assert from_ids(binance, "BTCUSDT") == [newest["BTCUSDT"]]
    assert from_ids(binance, "ETHUSDT") == [newest["ETHUSDT"]]
    latest = log_rows(warehouse_file)  # the last row of each: one request weighing 20
    assert latest["binance-main:BTC-USDT"][:3] == ("success", 1, 20.0)
    assert latest["binance-main:ETH-USDT"][:3] == ("success", 1, 20.0)


def test_new_trades_are_fetched_from_the_newest_stored_id_and_only_they(
    instance, warehouse_file, tmp_path, binance
):
    raw = make_trades("BTCUSDT", 60, start_ms=T0)
    binance.trades["BTCUSDT"] = raw[:45]
    accounts = write_accounts(tmp_path, exchange_account(binance.url, markets=("BTC-USDT",)))
    tags = range_tags("BTC-USDT", TODAY, TODAY)
    sync(instance, warehouse_file, tmp_path, accounts, tags)
    binance.trades["BTCUSDT"] = raw
    binance.requests.clear()
    _, meta = sync(instance, warehouse_file, tmp_path, accounts, tags)
    # From the stored newest id (it comes back and is dropped), then just after the new ones.
    assert from_ids(binance) == [str(raw[44]["id"]), str(raw[59]["id"] + 1)]
    assert meta["rows_inserted"] == meta["rows_fetched"] == 15
    assert_holds_exactly(warehouse_file, raw)
    assert rows(warehouse_file, "SELECT count(*) FROM exchange_trades") == [(60,)]


def test_ids_are_compared_as_integers_across_nine_to_ten_digits(
    instance, warehouse_file, tmp_path, binance
):
    raw = make_trades("BTCUSDT", 20, start_ms=T0, first_id=999_999_970)
    first, newest = raw[:3], str(raw[-1]["id"])
    # The first sync stores 9-digit ids; the next page holds both 9- and 10-digit new ones.
    assert all(r["id"] < 10**9 for r in raw[:4]) and len(newest) == 10
    binance.trades["BTCUSDT"] = first
    accounts = write_accounts(tmp_path, exchange_account(binance.url, markets=("BTC-USDT",)))
    tags = range_tags("BTC-USDT", TODAY, TODAY)
    sync(instance, warehouse_file, tmp_path, accounts, tags)
    assert cursor(warehouse_file, "binance-main:BTC-USDT", "trades")[0] == str(first[-1]["id"])
    binance.trades["BTCUSDT"] = raw
    binance.requests.clear()
    _, meta = sync(instance, warehouse_file, tmp_path, accounts, tags)
    # As strings, "1000000002" < "999999999": the watermark would stay at 9 digits.
    assert cursor(warehouse_file, "binance-main:BTC-USDT", "trades")[0] == newest
    assert from_ids(binance) == [str(first[-1]["id"]), str(int(newest) + 1)]
    assert meta["rows_inserted"] == len(raw) - len(first)
    assert_holds_exactly(warehouse_file, raw)
    binance.requests.clear()
    sync(instance, warehouse_file, tmp_path, accounts, tags)
    assert from_ids(binance) == [newest]


def test_short_pages_are_not_the_end(instance, warehouse_file, tmp_path, binance):
    raw = make_trades("BTCUSDT", 700, start_ms=T0)
    binance.trades["BTCUSDT"] = raw
    binance.trades_short = 300
    accounts = write_accounts(tmp_path, exchange_account(binance.url, markets=("BTC-USDT",)))
    sync(instance, warehouse_file, tmp_path, accounts, range_tags("BTC-USDT", TODAY, TODAY))
    assert_holds_exactly(warehouse_file, raw)
    # 300, 300 and 100 new, then an empty page: a short page is not the end.
    assert len(from_ids(binance)) == math.ceil(700 / 300) + 1


# -- faults ----------------------------------------------------------------------------------


def test_short_retry_afters_of_429_and_418_are_waited_out(
    instance, warehouse_file, tmp_path, binance
):
    raw = make_trades("BTCUSDT", 1_100, start_ms=T0)
    binance.trades["BTCUSDT"] = raw
    binance.faults += [
        Fault("myTrades", 429, headers={"Retry-After": "1"}, body={"code": -1003, "msg": "slow"}),
        Fault("myTrades"),
        Fault("myTrades", 418, headers={"Retry-After": "0.5"}, body={"code": -1003, "msg": "ban"}),
    ]
    accounts = write_accounts(tmp_path, exchange_account(binance.url, markets=("BTC-USDT",)))
    started = time.monotonic()
    sync(
        instance,
        warehouse_file,
        tmp_path,
        accounts,
        range_tags("BTC-USDT", TODAY, TODAY),
        max_cooldown=5.0,
    )
    assert time.monotonic() - started >= 1.4  # 1 s + 0.5 s
    assert_holds_exactly(warehouse_file, raw)
    page2, end = str(raw[999]["id"] + 1), str(raw[-1]["id"] + 1)
    assert from_ids(binance) == ["0", "0", page2, page2, end]  # each throttled page asked again
    assert log_rows(warehouse_file)["binance-main:BTC-USDT"][:2] == ("success", 1 + 5)


def test_a_long_retry_after_defers_the_exchanges_markets_and_a_later_run_syncs_them(
    instance, warehouse_file, tmp_path, binance
):
    btc, eth = make_trades("BTCUSDT", 30, start_ms=T0), make_trades("ETHUSDT", 20, start_ms=T0)
    binance.trades |= {"BTCUSDT": btc, "ETHUSDT": eth}
    binance.faults.append(
        Fault("myTrades", 429, headers={"Retry-After": "1.2"}, body={"code": -1003, "msg": "slow"})
    )
    demo = '[[exchange]]\nname = "demo-exchange"\nexchange = "demo"\nmarkets = ["ETH-USDT"]\n'
    accounts = write_accounts(tmp_path, exchange_account(binance.url), demo)
    result, _ = sync(instance, warehouse_file, tmp_path, accounts, BTC_ETH, ok=False)
    message = failure_message(result)
    assert "RateLimitedError" in message
    assert "2 of 3 fetches deferred (rate_limited)" in message
    assert "binance-main:BTC-USDT, binance-main:ETH-USDT" in message
    statuses = {k: v[0] for k, v in log_rows(warehouse_file).items()}
    assert statuses == {
        "binance-main:BTC-USDT": "rate_limited",
        # Binance limits per IP: the cooldown holds for every market of the exchange, so ETH is
        # deferred without a request.
        "binance-main:ETH-USDT": "rate_limited",
        "demo-exchange:ETH-USDT": "success",  # another exchange goes on
    }
    assert from_ids(binance, "BTCUSDT") == ["0"] and from_ids(binance, "ETHUSDT") == []
    deferred = rows(
        warehouse_file,
        "SELECT symbol, data_type, source, requested_start, reason FROM deferred_fetches "
        "ORDER BY symbol",
    )
    assert [d[:4] for d in deferred] == [
        ("binance-main:BTC-USDT", "trades", "ccxt-binance", datetime(2026, 11, 24, tzinfo=UTC)),
        ("binance-main:ETH-USDT", "trades", "ccxt-binance", datetime(2026, 11, 24, tzinfo=UTC)),
    ]
    assert all("HTTP 429, Retry-After 1.2" in d[4] for d in deferred)
    assert stored(warehouse_file).empty
    assert not stored(warehouse_file, "ETH-USDT", "demo-exchange").empty

    time.sleep(1.3)  # the cooldown is over
    binance.requests.clear()
    sync(instance, warehouse_file, tmp_path, accounts, BTC_ETH)
    assert rows(warehouse_file, "SELECT count(*) FROM deferred_fetches") == [(0,)]
    assert_holds_exactly(warehouse_file, btc)
    assert_holds_exactly(warehouse_file, eth, "ETH-USDT")


def test_5xx_answers_are_retried(instance, warehouse_file, tmp_path, binance):
    raw = make_trades("BTCUSDT", 1_200, start_ms=T0)
    binance.trades["BTCUSDT"] = raw
    binance.faults += [
        Fault("myTrades", 503, body=HTML_503, content_type="text/html"),
        Fault("myTrades", 500, body=INTERNAL),
        Fault("myTrades"),  # the first page is served
        Fault("myTrades", 503, body=INTERNAL),
        Fault("myTrades", 502, body=HTML_503, content_type="text/html"),
    ]
    accounts = write_accounts(tmp_path, exchange_account(binance.url, markets=("BTC-USDT",)))
    _, meta = sync(
        instance, warehouse_file, tmp_path, accounts, range_tags("BTC-USDT", TODAY, TODAY)
    )
    assert_holds_exactly(warehouse_file, raw)
    assert len(from_ids(binance)) == 3 + 4  # three pages, four answers retried
    status, requests, units = log_rows(warehouse_file)["binance-main:BTC-USDT"][:3]
    assert (status, requests, units) == ("success", 1 + 7, (1 + 7) * 20)
    assert meta["api_requests"] == 8


def test_malformed_trades_are_rejected_and_the_rest_of_the_page_stored(
    instance, warehouse_file, tmp_path, binance
):
    good = make_trades("BTCUSDT", 6, start_ms=T0)
    binance.trades["BTCUSDT"] = [
        good[0],
        {k: v for k, v in good[1].items() if k != "id"},
        good[1],
        {**good[2], "qty": "abc"},
        {**good[3], "price": "-50000.00000000"},
        {**good[4], "time": "soon"},
        good[5],
    ]
    accounts = write_accounts(tmp_path, exchange_account(binance.url, markets=("BTC-USDT",)))
    tags = range_tags("BTC-USDT", TODAY, TODAY)
    _, meta = sync(instance, warehouse_file, tmp_path, accounts, tags)
    assert_holds_exactly(warehouse_file, [good[0], good[1], good[5]])
    reasons = rows(
        warehouse_file,
        "SELECT symbol, data_type, reason FROM rejected_rows ORDER BY fetched_at, reason",
    )
    assert len(reasons) == 4
    assert {r[:2] for r in reasons} == {("binance-main:BTC-USDT", "trades")}
    text = " | ".join(r[2] for r in reasons)
    for why in ("no trade id", "amount None", "price -50000.0", "no usable time"):
        assert why in text, text
    assert meta["rows_rejected"] == 4
    assert log_rows(warehouse_file)["binance-main:BTC-USDT"][4] == 4  # sync_log.rows_rejected
    # The next sync starts past them all and rejects nothing again.
    sync(instance, warehouse_file, tmp_path, accounts, tags)
    assert rows(warehouse_file, "SELECT count(*) FROM rejected_rows") == [(4,)]
    assert cursor(warehouse_file, "binance-main:BTC-USDT", "trades")[0] == str(good[5]["id"])


# -- secrets -----------------------------------------------------------------------------------


def test_the_api_key_and_secret_never_reach_logs_metadata_errors_or_the_warehouse(
    instance, warehouse_file, tmp_path, binance
):
    binance.trades["BTCUSDT"] = make_trades("BTCUSDT", 20, start_ms=T0)
    binance.trades["ETHUSDT"] = make_trades("ETHUSDT", 5, start_ms=T0)
    # ETH fails for good (a 401 echoes what was sent), BTC is served after a 5xx.
    binance.faults += [
        Fault("myTrades", 503, body=INTERNAL),
        Fault("myTrades"),
        Fault("myTrades"),
        Fault("myTrades", 401, body={"code": -2015, "msg": f"Invalid API-key {KEY}"}),
    ]
    accounts = write_accounts(tmp_path, exchange_account(binance.url))
    result, meta = sync(instance, warehouse_file, tmp_path, accounts, BTC_ETH, ok=False)
    assert "binance-main:ETH-USDT" in failure_message(result)
    texts = [warehouse_text(warehouse_file), str(meta), failure_message(result)]
    texts += [repr(record) for record in instance.all_logs(result.run_id)]
    for file in Path(instance.root_directory).rglob("*"):
        if file.is_file():
            texts.append(file.read_bytes().decode("utf-8", "replace"))
    assert "Invalid API-key ***" in texts[0]  # the sync_log error, redacted
    for text in texts:
        assert KEY not in text and SECRET not in text


# -- a killed run ------------------------------------------------------------------------------

# Syncs BTC-USDT from the fake Binance at argv[3] into the shared instance and warehouse.
WRITER = textwrap.dedent(
    """
    import sys
    import dagster as dg
    from platform_pkg.accounts.resources import Accounts
    from platform_pkg.prices.schedules import RefreshSettings
    from platform_pkg.trades.assets import exchange_trades
    from platform_tests.conftest import range_tags, resources_for
    from platform_tests.fakes.market import real_market
    from pathlib import Path

    home, path, accounts, state = sys.argv[1:5]
    market = real_market(Path(state), request_timeout=120.0)
    with dg.DagsterInstance.from_config(home) as instance:
        dg.materialize(
            [exchange_trades],
            instance=instance,
            resources=resources_for(Path(path), market)
            | {"accounts": Accounts(path=accounts), "refresh": RefreshSettings()},
            tags=range_tags("BTC-USDT", "2026-11-24", "2026-11-24"),
        )
    """
)


def test_a_killed_run_resumes_without_refetching_committed_pages(
    instance, warehouse_file, tmp_path, binance
):
    raw = make_trades("BTCUSDT", 2_500, start_ms=T0)
    binance.trades["BTCUSDT"] = raw
    # Two pages are served; the third hangs, as a stalled connection would.
    binance.faults += [Fault("myTrades", times=2), Fault("myTrades", delay=60.0)]
    accounts = write_accounts(tmp_path, exchange_account(binance.url, markets=("BTC-USDT",)))
    writer = subprocess.Popen(
        [
            sys.executable,
            "-c",
            WRITER,
            instance.root_directory,
            str(warehouse_file),
            str(accounts),
            str(tmp_path),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while len(binance.trade_requests) < 3:  # page 2 is committed before page 3 is asked
            assert writer.poll() is None, writer.stderr.read()[-3000:]
            assert time.monotonic() < deadline, "the writer never asked for the third page"
            time.sleep(0.05)
    finally:
        writer.kill()
        writer.wait(timeout=30)
    ids = [str(r["id"]) for r in raw]
    after = [str(r["id"] + 1) for r in raw]
    assert from_ids(binance) == ["0", after[999], after[1999]]
    assert len(stored(warehouse_file)) == 2_000
    assert cursor(warehouse_file, "binance-main:BTC-USDT", "trades")[0] == ids[1999]

    sync(instance, warehouse_file, tmp_path, accounts, range_tags("BTC-USDT", TODAY, TODAY))
    assert_holds_exactly(warehouse_file, raw)
    # Dagster still has the killed run as started, so its log row is left open.
    assert rows(
        warehouse_file, "SELECT status, rows_inserted FROM sync_log ORDER BY started_at"
    ) == [
        ("running", 2_000),
        ("success", 500),
    ]
    # Only the continuation: from the stored newest id (it comes back and is dropped), then the
    # page that brings nothing new.
    assert from_ids(binance) == ["0", after[999], after[1999], ids[1999], after[2499]]


# -- reconcile ---------------------------------------------------------------------------------


def test_reconcile_soft_deletes_updates_and_restores(instance, warehouse_file, tmp_path, binance):
    raw = make_trades("BTCUSDT", 20, start_ms=T0, step_ms=3 * 3_600_000)
    binance.trades["BTCUSDT"] = list(raw)
    accounts = write_accounts(tmp_path, exchange_account(binance.url, markets=("BTC-USDT",)))
    tags = range_tags("BTC-USDT", TODAY, TODAY)
    sync(instance, warehouse_file, tmp_path, accounts, tags)
    gone, changed = raw[7], {**raw[12], "commission": "0.12345678"}
    binance.trades["BTCUSDT"] = [changed if r is raw[12] else r for r in raw if r is not gone]
    _, meta = sync(instance, warehouse_file, tmp_path, accounts, tags, reconcile=True)
    assert (meta["trades_deleted"], meta["trades_changed"], meta["trades_restored"]) == (1, 1, 0)
    assert meta["deleted"] == f"- binance-main BTC-USDT {gone['id']}"
    assert_holds_exactly(warehouse_file, binance.trades["BTCUSDT"])
    (deleted,) = rows(
        warehouse_file,
        "SELECT is_deleted, deleted_at IS NOT NULL FROM exchange_trades WHERE trade_id = ?",
        [str(gone["id"])],
    )
    assert deleted == (True, True)
    history = rows(
        warehouse_file,
        "SELECT trade_id, change, fee FROM exchange_trades_history ORDER BY trade_id",
    )
    assert history == sorted(
        [
            (str(gone["id"]), "delete", float(gone["commission"])),
            (str(raw[12]["id"]), "update", float(raw[12]["commission"])),
        ]
    )

    binance.trades["BTCUSDT"] = [changed if r is raw[12] else r for r in raw]  # it comes back
    _, meta = sync(instance, warehouse_file, tmp_path, accounts, tags, reconcile=True)
    assert (meta["trades_deleted"], meta["trades_changed"], meta["trades_restored"]) == (0, 0, 1)
    assert_holds_exactly(warehouse_file, binance.trades["BTCUSDT"])
    assert rows(warehouse_file, "SELECT count(*) FROM exchange_trades WHERE is_deleted") == [(0,)]
    changes = rows(warehouse_file, "SELECT change FROM exchange_trades_history ORDER BY ALL")
    assert changes == [("delete",), ("restore",), ("update",)]


# -- time paging -------------------------------------------------------------------------------


def test_time_paging_walks_windows_of_at_most_24_hours_forward_then_back(
    instance, warehouse_file, tmp_path, binance
):
    start = to_ms(datetime(2026, 11, 19, 0, 10, tzinfo=UTC))
    raw = make_trades("BTCUSDT", 64, start_ms=start, step_ms=2 * 3_600_000, same_ms_every=5)
    assert raw[-1]["time"] < to_ms(NOW)
    binance.trades["BTCUSDT"] = raw
    binance.trades_short = 7  # many pages per window, with trades sharing the boundary ms
    accounts = write_accounts(
        tmp_path, exchange_account(binance.url, markets=("BTC-USDT",), paging="time")
    )
    asset = "binance-main:BTC-USDT"
    sync(instance, warehouse_file, tmp_path, accounts, range_tags("BTC-USDT", "2026-11-21", TODAY))
    range_start = datetime(2026, 11, 21, tzinfo=UTC)
    assert binance.trade_requests[0].query["startTime"] == str(to_ms(range_start))
    assert_holds_exactly(warehouse_file, [r for r in raw if r["time"] >= to_ms(range_start)])
    assert cursor(warehouse_file, asset, "trades_synced")[1] == NOW
    assert cursor(warehouse_file, asset, "trades_oldest")[1] == range_start

    # An older range is walked backward from the oldest watermark, nothing forward.
    sync(instance, warehouse_file, tmp_path, accounts, range_tags("BTC-USDT", "2026-11-19", TODAY))
    assert_holds_exactly(warehouse_file, raw)
    assert cursor(warehouse_file, asset, "trades_oldest")[1] == datetime(2026, 11, 19, tzinfo=UTC)

    # Later, new trades come from the synced watermark on.
    later = NOW + timedelta(hours=3)
    more = make_trades(
        "BTCUSDT", 9, start_ms=to_ms(NOW) + 60_000, step_ms=10 * 60_000, first_id=raw[-1]["id"] + 7
    )
    binance.trades["BTCUSDT"] = raw + more
    before = len(binance.trade_requests)
    _, meta = sync(
        instance,
        warehouse_file,
        tmp_path,
        accounts,
        range_tags("BTC-USDT", TODAY, TODAY),
        now=later,
    )
    assert meta["rows_inserted"] == 9
    assert_holds_exactly(warehouse_file, raw + more)
    assert cursor(warehouse_file, asset, "trades_synced")[1] == later
    assert binance.trade_requests[before].query["startTime"] == str(to_ms(NOW))

    spans = [int(r.query["endTime"]) - int(r.query["startTime"]) for r in binance.trade_requests]
    assert spans and max(spans) < DAY_MS
    assert all("fromId" not in r.query for r in binance.trade_requests)
