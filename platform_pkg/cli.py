"""Command line helpers: ``python -m platform_pkg.cli symbols add|list``.

Adding symbols here goes through the same validation as every other path, so a key Dagster
cannot handle is refused before it becomes a partition.
"""

from __future__ import annotations

import argparse
import sys

import dagster as dg

from platform_pkg.market.demo import DEMO_LISTINGS
from platform_pkg.partitions import add_symbols, symbols_partitions
from platform_pkg.symbols import InvalidSymbolError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m platform_pkg.cli")
    sub = parser.add_subparsers(dest="command", required=True)
    symbols = sub.add_parser("symbols", help="the symbol partitions of the Dagster instance")
    actions = symbols.add_subparsers(dest="action", required=True)
    add = actions.add_parser("add", help="add symbol partitions (validated)")
    add.add_argument("keys", nargs="*", help="symbol keys, e.g. BTC-USDT AAPL EURUSD=X")
    add.add_argument("--demo", action="store_true", help="add every symbol the demo market lists")
    actions.add_parser("list", help="list the symbol partitions")
    args = parser.parse_args(argv)

    instance = dg.DagsterInstance.get()
    if args.action == "list":
        for key in sorted(instance.get_dynamic_partitions(symbols_partitions.name)):
            print(key)
        return 0
    keys = list(args.keys) + (list(DEMO_LISTINGS) if args.demo else [])
    if not keys:
        parser.error("name at least one symbol, or --demo")
    try:
        added = add_symbols(instance, keys)
    except InvalidSymbolError as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 2
    print(
        f"added {len(added)} symbol(s): {' '.join(added)}" if added else "all symbols already known"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
