"""The holdings sensor through the real machinery: each portfolio change, its runs and its cursor."""

from datetime import UTC, datetime, timedelta

import dagster as dg
import pandas as pd
import pytest
from dagster._core.storage.dagster_run import DagsterRun

from platform_pkg.accounts.resources import Accounts
from platform_pkg.definitions import defs
from platform_pkg.ledger.assets import holdings, transactions
from platform_pkg.market.demo import DemoMarket
from platform_pkg.market.resources import MarketData
from platform_pkg.portfolio.assets import TRACKING_VERSION, portfolio_transactions, tracked_assets
from platform_pkg.portfolio.resources import PortfolioFile
from platform_pkg.portfolio.sensors import holdings_sensor, sensor_interval_seconds
from platform_pkg.portfolio.tracking import HoldingsCursor
from platform_pkg.portfolio.valuation import daily_balances, portfolio_value
from platform_pkg.prices.assets import prices_1d, prices_1h
from platform_pkg.prices.schedules import RefreshSettings
from platform_pkg.trades.assets import exchange_trades
from platform_tests.conftest import range_tags, resources_for, rows, stored

NOW = datetime(2026, 6, 15, 10, 30, tzinfo=UTC)
HEADER = "date,account,symbol,asset_class,side,quantity,price,currency,fee\n"
ASSETS = [
    prices_1d,
    prices_1h,
    portfolio_transactions,
    exchange_trades,
    transactions,
    holdings,
    tracked_assets,
    daily_balances,
    portfolio_value,
]


class Portfolio:
    """A portfolio file, an instance with no symbols yet, and a sensor ticking over them.

    :meth:`tick` evaluates the sensor once and runs what it asked for; :meth:`settle` ticks until
    the ledger run it asked for has been followed by the tick acting on the new holdings."""

    def __init__(self, tmp_path, instance, history_days=365):
        self.history_days = history_days
        self.path = tmp_path / "portfolio.csv"
        self.path.write_text(HEADER)
        self.warehouse = tmp_path / "warehouse.duckdb"
        self.accounts = tmp_path / "accounts.toml"
        self.instance = instance
        self.cursor: str | None = None

    def resources(self, now=NOW):
        return resources_for(self.warehouse, MarketData(now=now.isoformat())) | {
            "portfolio": PortfolioFile(path=str(self.path), history_days=self.history_days),
            "accounts": Accounts(path=str(self.accounts)),
            "refresh": RefreshSettings(),
        }

    def append(self, *lines):
        with self.path.open("a") as f:
            f.writelines(f"{line}\n" for line in lines)

    def tick(self, now=NOW, run=True):
        with dg.build_sensor_context(
            instance=self.instance,
            cursor=self.cursor,
            resources=self.resources(now),
            definitions=defs,
        ) as context:
            result = holdings_sensor(context)
        if isinstance(result, dg.SkipReason):
            return result
        for request in result.dynamic_partitions_requests:
            self.instance.add_dynamic_partitions(
                request.partitions_def_name, request.partition_keys
            )
        self.cursor = result.cursor
        for request in self.ledger_requests(result):
            self.execute(request, now)
        if run:
            for request in self.price_requests(result):
                self.execute(request, now)
        return result

    def settle(self, now=NOW, run=True):
        """A change's ledger run, then the tick that acts on the holdings it wrote; with the
        price runs of both (the file's new symbols are asked for alongside the ledger run)."""
        first = self.tick(now, run)
        assert not isinstance(first, dg.SkipReason), first
        assert self.ledger_requests(first), "a changed input asks for a ledger run"
        second = self.tick(now, run)
        early = self.price_requests(first)
        if not early:
            return second
        later = [] if isinstance(second, dg.SkipReason) else second
        return dg.SensorResult(
            run_requests=early + list(getattr(later, "run_requests", [])),
            dynamic_partitions_requests=list(first.dynamic_partitions_requests)
            + list(getattr(later, "dynamic_partitions_requests", [])),
            cursor=self.cursor,
        )

    @staticmethod
    def price_requests(result):
        return [r for r in result.run_requests if r.run_key.startswith("prices_")]

    @staticmethod
    def ledger_requests(result):
        return [r for r in result.run_requests if r.run_key.startswith("ledger:")]

    def execute(self, request, now=NOW, tags=None):
        selection = list(request.asset_selection)
        outcome = dg.materialize(
            ASSETS,
            selection=selection,
            instance=self.instance,
            resources=self.resources(now),
            tags={**request.tags, **(tags or {})},
        )
        assert outcome.success
        return outcome

    def tracked(self):
        if not rows(
            self.warehouse,
            "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'tracked_assets'",
        )[0][0]:
            return []
        return rows(
            self.warehouse,
            "SELECT asset_id, is_active, tracking_users FROM tracked_assets ORDER BY asset_id",
        )


@pytest.fixture
def pf(tmp_path):
    """Ranges of a few weeks: a year costs ~5 s per run in Dagster's own bookkeeping alone."""
    with dg.instance_for_test() as instance:
        yield Portfolio(tmp_path, instance, history_days=20)


@pytest.fixture
def year(tmp_path, monkeypatch):
    # As scripts/dev.sh: one planned event per ranged run, not 366.
    monkeypatch.setenv("DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS", "1")
    with dg.instance_for_test() as instance:
        yield Portfolio(tmp_path, instance)


def spans(result):
    return sorted(
        (
            "+".join(k.path[-1] for k in r.asset_selection),
            r.tags["dagster/asset_partition_range_start"],
            r.tags["dagster/asset_partition_range_end"],
        )
        for r in Portfolio.price_requests(result)
    )


def quiet(result) -> bool:
    """The tick asked for nothing (a skip, or only a cursor update)."""
    return isinstance(result, dg.SkipReason) or not (
        result.run_requests or result.dynamic_partitions_requests
    )


def demo(symbol, interval, first, now=NOW):
    start = datetime.fromisoformat(first).replace(tzinfo=UTC)
    frame = DemoMarket(clock=lambda: now).candles(symbol, interval, start, now + timedelta(days=1))
    return frame.drop(columns="source").reset_index(drop=True)


def test_a_new_symbol_gets_its_partition_and_one_ranged_run_for_both_assets(year):
    pf = year
    pf.append("2026-05-01,broker,ETH-USDT,crypto,buy,1,3000,USDT,0")
    first = pf.tick(run=False)
    (ledger,) = pf.ledger_requests(first)
    assert [k.path[-1] for k in ledger.asset_selection] == [
        "portfolio_transactions",
        "portfolio_rejects",
        "transactions",
        "holdings",
        "tracked_assets",
        "daily_balances",
        "portfolio_value",
    ]
    # The file's new symbol gets its partition and its history alongside the ledger run.
    assert [r.partition_keys for r in first.dynamic_partitions_requests] == [["ETH-USDT"]]
    assert spans(first) == [
        ("prices_1d+prices_1h", "2025-05-01|ETH-USDT", "2026-06-15|ETH-USDT"),
    ]
    assert pf.tracked() == [("ETH-USDT", True, 1)]
    assert quiet(pf.tick(run=False)), "the holdings the ledger wrote agree: nothing more to ask"
    for request in pf.price_requests(first):
        pf.execute(request)
    for table, interval in (("prices_1d", "1d"), ("prices_1h", "1h")):
        pd.testing.assert_frame_equal(
            stored(pf.warehouse, table, "ETH-USDT"),
            demo("ETH-USDT", interval, "2025-05-01"),
            check_dtype=False,
        )
    assert quiet(pf.tick())  # nothing changed since
    # The price runs moved last_price_update with their watermarks; the sensor wrote nothing.
    assert rows(pf.warehouse, "SELECT last_price_update IS NOT NULL FROM tracked_assets") == [
        (True,)
    ]


def test_buying_more_raises_the_count_and_fetches_nothing(pf):
    pf.append("2026-05-01,broker,ETH-USDT,crypto,buy,1,3000,USDT,0")
    pf.settle()
    pf.append("2026-06-01,wallet,ETH-USDT,crypto,buy,2,3100,USDT,0")
    again = pf.settle()
    assert spans(again) == [] and again.dynamic_partitions_requests == []
    assert pf.tracked() == [("ETH-USDT", True, 2)]
    # The ledger run's tracked_assets keeps its data version: the prices it drives stay in sync.
    (record,) = pf.instance.fetch_materializations(tracked_assets.key, limit=1).records
    assert record.asset_materialization.tags["dagster/data_version"] == TRACKING_VERSION.value


def test_an_earlier_purchase_backfills_only_the_older_range(pf):
    pf.append("2026-05-01,broker,ETH-USDT,crypto,buy,1,3000,USDT,0")
    pf.settle()
    pf.append("2026-03-10,wallet,ETH-USDT,crypto,buy,2,2500,USDT,0")
    older = pf.settle()
    assert spans(older) == [
        ("prices_1d+prices_1h", "2026-02-18|ETH-USDT", "2026-04-10|ETH-USDT"),
    ]
    pd.testing.assert_frame_equal(
        stored(pf.warehouse, "prices_1h", "ETH-USDT"),
        demo("ETH-USDT", "1h", "2026-02-18"),
        check_dtype=False,
    )
    oldest = rows(
        pf.warehouse,
        "SELECT last_timestamp FROM ingestion_state WHERE asset_id = 'ETH-USDT' AND data_type = 'prices_1h_oldest'",
    )
    assert oldest == [(datetime(2026, 2, 18, tzinfo=UTC),)]


def test_sold_to_zero_stops_tracking_and_bought_again_fills_the_gap(pf):
    pf.append("2026-05-01,broker,ETH-USDT,crypto,buy,1,3000,USDT,0")
    pf.settle()
    pf.append("2026-06-15T09:00:00Z,broker,ETH-USDT,crypto,sell,1,3200,USDT,0")
    sold = pf.settle()
    assert spans(sold) == []
    assert pf.tracked() == [("ETH-USDT", False, 0)]
    later = NOW + timedelta(days=5)
    pf.append("2026-06-20T09:00:00Z,broker,ETH-USDT,crypto,buy,1,3300,USDT,0")
    again = pf.settle(now=later)
    assert spans(again) == [
        ("prices_1d+prices_1h", "2026-06-15|ETH-USDT", "2026-06-20|ETH-USDT"),
    ]
    assert pf.tracked() == [("ETH-USDT", True, 1)]
    pd.testing.assert_frame_equal(
        stored(pf.warehouse, "prices_1h", "ETH-USDT"),
        demo("ETH-USDT", "1h", "2026-04-11", now=later),
        check_dtype=False,
    )


def test_bad_lines_are_logged_and_the_good_ones_still_tracked(pf, capfd):
    pf.append(
        "2026-05-01,broker,ETH-USDT,crypto,buy,1,3000,USDT,0",
        "2026-05-02,broker,NOPE,stock,buy,1,1,USD,0",
    )
    result = pf.settle(run=False)
    assert {r.tags["dagster/asset_partition_range_start"] for r in pf.price_requests(result)} == {
        "2026-04-11|ETH-USDT"
    }
    assert "line 3, symbol: unknown symbol 'NOPE'" in capfd.readouterr().err


def test_a_trade_on_the_exchange_makes_its_symbol_tracked_like_a_file_line(pf):
    pf.accounts.write_text(
        '[[exchange]]\nname = "demo-exchange"\nexchange = "demo"\nmarkets = ["SOL-USDT"]\n'
    )
    pf.tick()  # the empty portfolio file: nothing held yet
    assert pf.tracked() == []
    pf.instance.add_dynamic_partitions("symbols", ["SOL-USDT"])
    synced = dg.materialize(
        [exchange_trades],
        instance=pf.instance,
        resources=pf.resources(),
        tags=range_tags("SOL-USDT", "2026-06-15", "2026-06-15"),
    )
    assert synced.success
    result = pf.settle(run=False)
    assert pf.tracked() == [("SOL-USDT", True, 1)]
    first_trade = rows(pf.warehouse, "SELECT min(ts)::DATE FROM exchange_trades")[0][0]
    start = (first_trade - timedelta(days=20)).isoformat()
    assert spans(result) == [
        ("prices_1d+prices_1h", f"{start}|SOL-USDT", "2026-06-15|SOL-USDT"),
    ]
    # A sync that brings nothing new asks for no ledger run.
    again = dg.materialize(
        [exchange_trades],
        instance=pf.instance,
        resources=pf.resources(),
        tags=range_tags("SOL-USDT", "2026-06-15", "2026-06-15"),
    )
    assert again.success
    assert quiet(pf.tick())


def test_no_second_ledger_run_while_one_is_in_flight(pf):
    busy = DagsterRun(
        job_name="__ASSET_JOB",
        status=dg.DagsterRunStatus.STARTED,
        tags={"platform/ledger": "1"},
    )
    pf.instance.add_run(busy)
    pf.append("2026-05-01,broker,ETH-USDT,crypto,buy,1,3000,USDT,0")
    assert quiet(pf.tick(run=False)), "the file's change waits for the ledger run in flight"
    pf.instance.handle_run_event(
        busy.run_id,
        dg.DagsterEvent(
            event_type_value="PIPELINE_SUCCESS", job_name="__ASSET_JOB", message="done"
        ),
    )
    assert pf.ledger_requests(pf.tick(run=False)), "then it is acted on"


def test_a_failed_tick_loses_no_change(pf, tmp_path):
    pf.tick(run=False)
    pf.append("2026-05-01,broker,ETH-USDT,crypto,buy,1,3000,USDT,0")
    before = pf.cursor
    moved = tmp_path / "elsewhere.duckdb"
    pf.warehouse.rename(moved)
    pf.warehouse.mkdir()  # the warehouse cannot be opened: the tick fails reading the coverage
    with pytest.raises(Exception, match="warehouse"):
        pf.tick(run=False)
    assert pf.cursor == before
    pf.warehouse.rmdir()
    moved.rename(pf.warehouse)
    retried = pf.tick(run=False)
    assert len(spans(retried)) == 1 and pf.ledger_requests(retried)


def test_run_keys_name_the_range_so_a_repeated_tick_is_deduplicated(pf):
    pf.tick(run=False)
    pf.append("2026-05-01,broker,ETH-USDT,crypto,buy,1,3000,USDT,0")
    before = pf.cursor
    first = pf.tick(run=False)
    pf.cursor = before  # as if the daemon died before storing the cursor
    second = pf.tick(run=False)
    assert [r.run_key for r in first.run_requests] == [r.run_key for r in second.run_requests]
    assert (
        pf.price_requests(first)[0].run_key == "prices_1d+prices_1h:ETH-USDT:2026-04-11:2026-06-15"
    )


def test_a_delisted_symbol_gets_no_history_and_the_log_says_why(pf, capfd):
    import duckdb

    from platform_tests.portfolio.test_tracked import delist

    with duckdb.connect(str(pf.warehouse)) as con:
        delist(con, "ETH-USDT", datetime(2026, 6, 1, tzinfo=UTC))
    pf.tick(run=False)
    pf.append(
        "2026-05-01,broker,ETH-USDT,crypto,buy,1,3000,USDT,0",
        "2026-05-02,broker,SOL-USDT,crypto,buy,1,150,USDT,0",
    )
    result = pf.settle(run=False)
    assert [s for _, s, _ in spans(result)] == ["2026-04-12|SOL-USDT"]
    assert pf.tracked() == [("ETH-USDT", True, 1), ("SOL-USDT", True, 1)]
    assert (
        "ETH-USDT: delisted on 2026-06-01 (ccxt:binance no longer lists it); its history is kept "
        "and no longer refreshed" in capfd.readouterr().err
    )


def test_a_file_the_ledger_will_reject_still_gets_its_ledger_run_and_no_price_run(pf, capfd):
    pf.path.write_text("no,header,here\n2026-05-01,broker,ETH-USDT\n")
    with dg.build_sensor_context(
        instance=pf.instance, resources=pf.resources(), definitions=defs
    ) as context:
        result = holdings_sensor(context)
    assert [r.run_key.split(":")[0] for r in result.run_requests] == ["ledger"]
    assert result.dynamic_partitions_requests == []
    assert "new symbols wait for the ledger run: PortfolioFormatError" in capfd.readouterr().err


def test_no_portfolio_file_is_a_skip_naming_the_path(pf):
    pf.path.unlink()
    skip = pf.tick()
    assert quiet(skip)
    message = (
        skip.skip_message if isinstance(skip, dg.SkipReason) else skip.skip_reason.skip_message
    )
    assert str(pf.path) in message


def test_the_interval_comes_from_the_environment_and_is_checked(monkeypatch):
    monkeypatch.delenv("PLATFORM_HOLDINGS_SENSOR_SECONDS", raising=False)
    assert sensor_interval_seconds() == 5
    monkeypatch.setenv("PLATFORM_HOLDINGS_SENSOR_SECONDS", "2")
    assert sensor_interval_seconds() == 2
    monkeypatch.setenv("PLATFORM_HOLDINGS_SENSOR_SECONDS", "0")
    with pytest.raises(ValueError, match="PLATFORM_HOLDINGS_SENSOR_SECONDS='0'"):
        sensor_interval_seconds()


def test_a_history_that_never_arrived_is_asked_again_later_and_then_complete(pf):
    pf.append("2026-05-01,broker,ETH-USDT,crypto,buy,1,3000,USDT,0")
    assert len(pf.price_requests(pf.settle(run=False))) == 1  # requested; never fills
    seen = pf.tick(now=NOW + timedelta(minutes=6), run=False)
    assert seen.run_requests == []
    assert sorted(HoldingsCursor.parse(pf.cursor).repairs) == [
        "prices_1d:ETH-USDT",
        "prices_1h:ETH-USDT",
    ]
    assert quiet(pf.tick(now=NOW + timedelta(minutes=12), run=False))

    later = NOW + timedelta(minutes=22)  # 15 min after the gap was first seen
    repaired = pf.tick(now=later)
    assert spans(repaired) == [
        ("prices_1d+prices_1h", "2026-04-11|ETH-USDT", "2026-06-15|ETH-USDT"),
    ]
    assert all(r.run_key.endswith(":repair1") for r in repaired.run_requests)
    pd.testing.assert_frame_equal(
        stored(pf.warehouse, "prices_1h", "ETH-USDT"),
        demo("ETH-USDT", "1h", "2026-04-11", now=later),
        check_dtype=False,
    )
    done = pf.tick(now=later + timedelta(minutes=6), run=False)
    assert done.run_requests == [] and HoldingsCursor.parse(pf.cursor).repairs == {}


def test_a_history_run_still_in_flight_is_not_asked_again(pf):
    pf.append("2026-05-01,broker,ETH-USDT,crypto,buy,1,3000,USDT,0")
    first = pf.settle(run=False)
    for request in pf.price_requests(first):  # a slow source: the runs are still going
        pf.instance.add_run(
            DagsterRun(
                job_name="prices_job",
                status=dg.DagsterRunStatus.STARTED,
                tags=request.tags,
                asset_selection=frozenset(request.asset_selection),
            )
        )
    for minutes in (6, 30, 120):
        tick = pf.tick(now=NOW + timedelta(minutes=minutes), run=False)
        assert quiet(tick)
    assert HoldingsCursor.parse(pf.cursor).repairs == {}


def test_a_run_already_acted_on_is_not_judged_again():
    """A ranged run's events can land over several ticks: its change asks for one ledger run."""
    from platform_pkg.portfolio.sensors import _input_changes

    key = dg.AssetKey("exchange_trades")
    with dg.instance_for_test() as instance:
        for rows_inserted in (3, 3):
            instance.report_runless_asset_event(
                dg.AssetMaterialization(key, metadata={"rows_inserted": rows_inserted})
            )
        newest, changed, runs = _input_changes(instance, key, None, set())
        assert changed and len(runs) == 1
        (run_id,) = runs
        assert _input_changes(instance, key, None, {run_id})[1] is False
        assert _input_changes(instance, key, newest, set()) == (newest, False, set())


def skip_message(result) -> str:
    if isinstance(result, dg.SkipReason):
        return result.skip_message
    assert not result.run_requests, "a tick with runs has no skip reason"
    return result.skip_reason.skip_message


def test_the_tick_acting_on_a_ledger_run_with_rejected_lines_says_so_in_its_summary(pf, capfd):
    pf.append("2026-05-01,broker,ETH-USDT,crypto,buy,1,3000,USDT,0")
    pf.settle(run=False)
    pf.append(
        "2026-05-02,broker,ETH-USDT,crypto,buy,abc,3000,USDT,0",
        "2026-05-03,broker,NOPE,stock,buy,1,1,USD,0",
    )
    capfd.readouterr()
    acted = pf.settle(run=False)  # the ledger run, then the tick acting on its holdings
    summary = skip_message(acted)
    assert summary.startswith(
        "portfolio.csv: 2 line(s) rejected — see portfolio_rejects "
        "(line 3, quantity: 'abc' is not a number; line 4, symbol: unknown symbol 'NOPE'"
    )
    assert summary.endswith("); nothing changed in the portfolio file, the trades or the holdings")
    assert "portfolio.csv: 2 line(s) rejected" in capfd.readouterr().err, "and in the tick's log"
    # Said once, by the tick that acted on that ledger run.
    assert "rejected" not in skip_message(pf.tick(run=False))


def test_a_tick_that_requests_runs_logs_the_rejected_lines(pf, capfd):
    pf.append(
        "2026-05-01,broker,ETH-USDT,crypto,buy,1,3000,USDT,0",
        "2026-05-02,broker,NOPE,stock,buy,1,1,USD,0",
    )
    pf.tick(run=False)
    capfd.readouterr()
    pf.append("2026-05-03,broker,SOL-USDT,crypto,buy,1,150,USDT,0")  # the next tick asks for runs
    acted = pf.tick(run=False)
    assert pf.price_requests(acted), "a tick with runs cannot carry a skip reason"
    assert (
        "portfolio.csv: 1 line(s) rejected — see portfolio_rejects "
        "(line 3, symbol: unknown symbol 'NOPE'" in capfd.readouterr().err
    )


def test_a_ranged_run_is_judged_by_the_partition_that_carries_its_figures():
    from platform_pkg.portfolio.sensors import _input_changes

    key = dg.AssetKey("exchange_trades")
    with dg.instance_for_test() as instance:
        # A ranged run's partitions: their own rows, the newest also the run's figures.
        for meta in ({"rows_written": 0}, {"rows_written": 0, "run_rows_inserted": 2}):
            instance.report_runless_asset_event(dg.AssetMaterialization(key, metadata=meta))
        assert _input_changes(instance, key, None, set())[1] is True
        newest = _input_changes(instance, key, None, set())[0]
        for meta in ({"rows_written": 5}, {"rows_written": 0, "run_rows_inserted": 0}):
            instance.report_runless_asset_event(dg.AssetMaterialization(key, metadata=meta))
        assert _input_changes(instance, key, newest, set())[1] is False
