"""``python -m platform_pkg.cli symbols search TEXT``: the asset catalogue at a terminal.

Read-only and without Dagster, like ``sql``: the warehouse is opened read-only for the query.
Only argparse is imported with this module, so registering the command costs the CLI nothing.
"""

from __future__ import annotations

import argparse
import sys

# Exit statuses, as ``sql``'s: no warehouse (or catalogue) yet, a writer kept the file locked.
NOT_BUILT, WAREHOUSE_BUSY = 1, 3


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("text", help="part of a symbol, name or source id, any case")
    parser.add_argument("--limit", type=int, default=25, metavar="N", help="default 25")
    parser.add_argument("--format", choices=["table", "csv", "json"], default="table")
    parser.add_argument("--wait", type=float, default=30.0, metavar="SECONDS")
    parser.add_argument(
        "--warehouse", help="default $PLATFORM_WAREHOUSE, else data/warehouse.duckdb"
    )


def search(args: argparse.Namespace) -> int:
    from platform_pkg.catalog import lookup
    from platform_pkg.warehouse import query
    from platform_pkg.warehouse.connection import warehouse_path

    path = warehouse_path(args.warehouse)
    try:
        with query.open_read_only(path, wait_seconds=args.wait) as con:
            if not lookup.exists(con):
                print(lookup.NOT_BUILT, file=sys.stderr)
                return NOT_BUILT
            result = lookup.search(con, args.text, max(args.limit, 0))
    except query.WarehouseMissingError as exc:
        print(f"{exc}; {lookup.NOT_BUILT}", file=sys.stderr)
        return NOT_BUILT
    except query.WarehouseBusyError as exc:
        print(exc, file=sys.stderr)
        return WAREHOUSE_BUSY
    if not result.rows and not result.omitted:
        print(f"no listing's symbol, name or source id contains {args.text!r}")
        return 0
    sys.stdout.write(query.render(result, query.Format(args.format)))
    if result.omitted:
        note = f"({result.omitted:,} more match(es): --limit shows more, or narrow the text)"
        print(note, file=sys.stdout if args.format == "table" else sys.stderr)
    return 0
