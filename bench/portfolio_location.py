"""The platform's code location plus 20 synthetic demo listings, for the holdings benchmark.

The demo market lists 8 symbols; the benchmark needs 20 new ones at once. Each synthetic pair is
an ordinary demo listing (a seeded random walk, always trading) registered before the definitions
load, so the sensor, its validation and every run process see the same market.
"""

from datetime import date

from platform_pkg.market.demo import ALWAYS, DEMO_LISTINGS, DemoListing

BENCH_SYMBOLS = [f"BENCH{i:02d}-USDT" for i in range(1, 21)]

for i, symbol in enumerate(BENCH_SYMBOLS, start=1):
    DEMO_LISTINGS.setdefault(
        symbol, DemoListing(symbol, "crypto", date(2020, 1, 1), 10.0 * i, 0.01, 5000.0, ALWAYS)
    )

from platform_pkg.definitions import defs  # noqa: E402

__all__ = ["BENCH_SYMBOLS", "defs"]
