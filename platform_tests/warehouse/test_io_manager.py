"""The upsert IO manager on a table of its own: declared key, symbol and time columns."""

import dagster as dg
import pandas as pd

from platform_pkg.partitions import symbol_date_partitions
from platform_pkg.warehouse.io_manager import (
    KEY_METADATA,
    SYMBOL_COLUMN_METADATA,
    TIME_COLUMN_METADATA,
)
from platform_tests.conftest import range_tags, resources_for, rows

DAYS = pd.date_range("2026-11-01", "2026-11-05", freq="D", tz="UTC")


@dg.asset(
    partitions_def=symbol_date_partitions,
    metadata={
        KEY_METADATA: ["asset_id", "as_of"],
        SYMBOL_COLUMN_METADATA: "asset_id",
        TIME_COLUMN_METADATA: "as_of",
    },
)
def valuations() -> pd.DataFrame:
    """A keyed table whose symbol and time columns have other names."""
    return pd.DataFrame(
        [(symbol, day, float(i)) for symbol in ("AAPL", "MSFT") for i, day in enumerate(DAYS)],
        columns=["asset_id", "as_of", "value"],
    )


@dg.asset(partitions_def=symbol_date_partitions, ins={"stored": dg.AssetIn("valuations")})
def consumer(stored: pd.DataFrame) -> None:
    assert set(stored["asset_id"]) == {"MSFT"}
    assert list(stored["as_of"]) == list(DAYS[1:3])


def test_a_downstream_asset_loads_its_partitions_by_the_declared_columns(instance, warehouse_file):
    resources = resources_for(warehouse_file)
    # The output holds both symbols and five days: the upsert stores what it is given.
    written = dg.materialize(
        [valuations], instance=instance, resources=resources, tags=range_tags("MSFT", "2026-11-01", "2026-11-05")
    )  # fmt: skip
    assert written.success
    assert rows(warehouse_file, "SELECT count(*) FROM valuations") == [(10,)]
    loaded = dg.materialize(
        [consumer, valuations.to_source_asset()],
        instance=instance,
        resources=resources,
        tags=range_tags("MSFT", "2026-11-02", "2026-11-03"),
    )
    assert loaded.success
