"""The accounts sensor: a new or changed exchange account gets its partitions and one ranged sync."""

from datetime import UTC, datetime

import dagster as dg
import pytest

from platform_pkg.accounts.resources import Accounts
from platform_pkg.accounts.sensors import accounts_sensor
from platform_pkg.definitions import defs
from platform_pkg.market.resources import MarketData

NOW = datetime(2026, 6, 15, 10, 30, tzinfo=UTC)
DEMO = '[[exchange]]\nname = "demo-exchange"\nexchange = "demo"\nmarkets = {markets}\n'


@pytest.fixture
def instance():
    with dg.instance_for_test() as inst:
        inst.add_dynamic_partitions("symbols", ["BTC-USDT", "AAPL"])
        yield inst


class Sensor:
    def __init__(self, tmp_path, instance):
        self.path = tmp_path / "accounts.toml"
        self.instance = instance
        self.cursor = None

    def write(self, text):
        self.path.write_text(text)

    def tick(self):
        resources = {
            "accounts": Accounts(path=str(self.path)),
            "market": MarketData(now=NOW.isoformat()),
        }
        with dg.build_sensor_context(
            instance=self.instance, cursor=self.cursor, resources=resources, definitions=defs
        ) as context:
            result = accounts_sensor(context)
        if isinstance(result, dg.SensorResult):
            self.cursor = result.cursor
            for request in result.dynamic_partitions_requests:
                self.instance.add_dynamic_partitions(
                    request.partitions_def_name, request.partition_keys
                )
        return result


def ranges(result):
    return [
        (r.tags["dagster/asset_partition_range_start"], r.tags["dagster/asset_partition_range_end"])
        for r in result.run_requests
    ]


def test_a_new_account_gets_its_markets_as_partitions_and_one_ranged_sync(tmp_path, instance):
    sensor = Sensor(tmp_path, instance)
    sensor.write(DEMO.format(markets='["BTC-USDT", "ETH-USDT", "SOL-USDT"]'))
    result = sensor.tick()
    assert [r.partition_keys for r in result.dynamic_partitions_requests] == [
        ["ETH-USDT", "SOL-USDT"]
    ]
    # BTC-USDT and the new pair are not neighbours in partition order (AAPL sits between).
    assert ranges(result) == [
        ("2020-01-01|BTC-USDT", "2026-06-15|BTC-USDT"),
        ("2020-01-01|ETH-USDT", "2026-06-15|SOL-USDT"),
    ]
    assert all(r.tags["platform/trigger"] == "accounts_sensor" for r in result.run_requests)
    assert isinstance(sensor.tick(), dg.SkipReason), "an unchanged file asks for nothing"


def test_only_a_changed_account_is_synced_again(tmp_path, instance):
    sensor = Sensor(tmp_path, instance)
    sensor.write(DEMO.format(markets='["BTC-USDT"]'))
    sensor.tick()
    other = '[[exchange]]\nname = "second"\nexchange = "demo"\nmarkets = ["BTC-USDT"]\n'
    sensor.write(DEMO.format(markets='["BTC-USDT"]') + other)
    result = sensor.tick()
    assert [r.run_key.split(":")[1] for r in result.run_requests] == ["second"]
    changed = DEMO.format(markets='["BTC-USDT"]').replace(
        "markets", 'history_from = "2025-01-01"\nmarkets'
    )
    sensor.write(changed + other)
    again = sensor.tick()
    assert [r.run_key.split(":")[1] for r in again.run_requests] == ["demo-exchange"]
    assert ranges(again) == [("2025-01-01|BTC-USDT", "2026-06-15|BTC-USDT")]


def test_errors_are_logged_and_the_valid_accounts_still_synced(tmp_path, instance, capfd):
    sensor = Sensor(tmp_path, instance)
    bad = '[[exchange]]\nname = "typo"\nexchange = "binanse"\napi_key_env = "K"\nsecret_env = "S"\n'
    sensor.write(DEMO.format(markets='["BTC-USDT"]') + bad)
    result = sensor.tick()
    assert [r.run_key.split(":")[1] for r in result.run_requests] == ["demo-exchange"]
    messages = capfd.readouterr().err
    assert (
        "line 7, exchange account 'typo', field 'exchange': unknown ccxt exchange id 'binanse'"
        in messages
    )


def test_no_file_is_a_skip_naming_the_path(tmp_path, instance):
    skip = Sensor(tmp_path, instance).tick()
    assert isinstance(skip, dg.SkipReason) and str(tmp_path / "accounts.toml") in skip.skip_message


WALLET = (
    '[[wallet]]\nname = "cold"\naddress = "0x5853ed4f26a3fcea565b3fbc698bb19cdf6deb85"\n'
    'source = "demo"\nhistory_from = "2026-03-01"\n'
)


def test_a_new_wallet_gets_its_partition_and_one_ranged_run(tmp_path, instance):
    sensor = Sensor(tmp_path, instance)
    sensor.write(WALLET)
    result = sensor.tick()
    assert [r.partition_keys for r in result.dynamic_partitions_requests] == [["cold"]]
    (run,) = result.run_requests
    assert run.job_name == "onchain_job"
    assert ranges(result) == [("2026-03-01|cold", "2026-06-15|cold")]
    assert quiet_after_change(sensor)


def quiet_after_change(sensor) -> bool:
    return isinstance(sensor.tick(), dg.SkipReason)
