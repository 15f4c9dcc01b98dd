"""``symbols search``: matches, no catalogue yet, a busy warehouse, no Dagster import."""

import subprocess
import sys
from datetime import UTC, datetime

import duckdb
import pytest

from platform_pkg.catalog.model import Listing, SourceResult
from platform_pkg.cli import main
from platform_tests.catalog.conftest import refresh
from platform_tests.warehouse.test_connection import hold_lock

AT = datetime(2026, 11, 23, 4, 10, tzinfo=UTC)
LISTINGS = [
    Listing("BTC-USD", "Bitcoin", "crypto", None, "USD", "coingecko", "bitcoin"),
    Listing("WBTC-USD", "Wrapped Bitcoin", "crypto", None, "USD", "coingecko", "wrapped-bitcoin"),
    Listing("ETH-USD", "Ethereum", "crypto", None, "USD", "coingecko", "ethereum"),
]


@pytest.fixture
def catalogue(warehouse_file):
    refresh(warehouse_file, [SourceResult("coingecko", LISTINGS, AT, AT)], AT)
    return warehouse_file


def search(capsys, *args):
    status = main(["symbols", "search", *args])
    out, err = capsys.readouterr()
    return status, out, err


def test_prints_the_matches_with_class_source_and_whether_active(capsys, catalogue):
    status, out, err = search(capsys, "BITCOIN")
    assert (status, err) == (0, "")
    lines = out.splitlines()
    assert lines[0].split() == [
        "asset_id", "name", "class", "exchange", "source", "source_id", "active", "last_seen",
        "delisted_at",
    ]  # fmt: skip
    assert lines[2].split()[:8] == [
        "BTC-USD", "Bitcoin", "crypto", "NULL", "coingecko", "bitcoin", "True", "2026-11-23",
    ]  # fmt: skip
    assert lines[3].startswith("WBTC-USD  Wrapped Bitcoin")
    assert lines[-1] == "(2 rows)"
    status, out, _ = search(capsys, "coin", "--limit", "1", "--format", "csv")
    assert out.splitlines()[1].startswith("BTC-USD,Bitcoin,crypto,,coingecko,bitcoin,True,")
    assert main(["symbols", "search", "nothing-like-it"]) == 0
    assert (
        "no listing's symbol, name or source id contains 'nothing-like-it'"
        in capsys.readouterr().out
    )


def test_says_how_to_build_the_catalogue(capsys, warehouse_file):
    status, _, err = search(capsys, "btc")
    assert status == 1 and "there is no warehouse" in err and "materialise asset_catalog" in err
    duckdb.connect(str(warehouse_file)).close()
    status, _, err = search(capsys, "btc")
    assert status == 1 and err.startswith("the asset catalogue has not been built yet")


def test_a_writer_holding_the_file_is_reported_once_the_wait_is_over(capsys, catalogue):
    holder = hold_lock(catalogue, 30)
    try:
        status, out, err = search(capsys, "btc", "--wait", "0.2")
    finally:
        holder.kill()
        holder.wait(timeout=30)
    assert (status, out) == (3, "") and "is open for writing" in err


def test_the_search_does_not_import_dagster(catalogue):
    code = (
        "import sys; from platform_pkg.cli import main; status = main(['symbols', 'search', "
        "'eth']); print(status, 'dagster' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.splitlines()[-1] == "0 False"
