"""Command line helpers: ``python -m platform_pkg.cli symbols add|list|search``, ``sql``,
``anomalies list|review`` and ``status``.

Adding symbols here goes through the same validation as every other path, so a key Dagster
cannot handle is refused before it becomes a partition. ``sql`` reads the warehouse and never
imports Dagster, which takes about a second to import.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from platform_pkg.catalog import cli as catalog_cli
from platform_pkg.status import cli as status_cli

# Exit statuses of ``sql`` (argparse exits 2 on a usage error too).
NO_WAREHOUSE, SQL_ERROR, WAREHOUSE_BUSY = 1, 2, 3


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m platform_pkg.cli")
    sub = parser.add_subparsers(dest="command", required=True)
    symbols = sub.add_parser("symbols", help="the symbol partitions of the Dagster instance")
    actions = symbols.add_subparsers(dest="action", required=True)
    add = actions.add_parser("add", help="add symbol partitions (validated)")
    add.add_argument("keys", nargs="*", help="symbol keys, e.g. BTC-USDT AAPL EURUSD=X")
    add.add_argument("--demo", action="store_true", help="add every symbol the demo market lists")
    actions.add_parser("list", help="list the symbol partitions")
    catalog_cli.add_arguments(
        actions.add_parser("search", help="search the asset catalogue (read-only, no Dagster)")
    )
    sql = sub.add_parser(
        "sql",
        help="run a read-only query on the warehouse",
        description="Run one read-only query on the warehouse and print its rows. Exit status: "
        "1 when there is no warehouse yet, 2 for an SQL error, 3 when a writer keeps the file "
        "locked past --wait.",
    )
    sql.add_argument("query", help='e.g. "select * from sync_log order by started_at desc"')
    sql.add_argument("--format", choices=["table", "csv", "json"], default="table")
    sql.add_argument("--max-rows", type=int, default=1000, metavar="N", help="default 1000")
    sql.add_argument(
        "--wait",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="how long to wait for a writer to release the file (default 30)",
    )
    sql.add_argument(
        "--warehouse", type=Path, help="default $PLATFORM_WAREHOUSE, else data/warehouse.duckdb"
    )
    anomalies = sub.add_parser(
        "anomalies", help="price moves the spike check recorded for review (price_anomalies)"
    )
    review = anomalies.add_subparsers(dest="action", required=True)
    listing = review.add_parser("list", help="the anomalies nobody has reviewed yet")
    listing.add_argument("--all", action="store_true", help="reviewed ones too")
    mark = review.add_parser(
        "review", help="mark anomalies reviewed (their candles stay as they are)"
    )
    mark.add_argument("ids", nargs="+", help="anomaly ids, as listed")
    mark.add_argument("--note", help="why it is fine, or what was done")
    for command in (listing, mark):
        command.add_argument("--wait", type=float, default=30.0, metavar="SECONDS")
        command.add_argument("--warehouse", type=Path)
    status_cli.add_parser(sub)
    args = parser.parse_args(argv)
    if args.command == "status":
        return status_cli.run(args)
    if args.command == "sql":
        return _sql(args)
    if args.command == "anomalies":
        return _anomalies(args)
    if args.action == "search":
        return catalog_cli.search(args)
    return _symbols(parser, args)


def _anomalies(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from platform_pkg.prices import anomalies
    from platform_pkg.warehouse import query
    from platform_pkg.warehouse.connection import WarehouseLockedError, transaction, warehouse_path
    from platform_pkg.warehouse.upsert import table_columns

    path = warehouse_path(str(args.warehouse) if args.warehouse else None)
    if args.action == "list":
        sql = (
            "SELECT anomaly_id, symbol, data_type, ts, prev_close, close,"
            " round(change * 100, 1) AS change_pct, detected_at, reviewed_at, review_note"
            f" FROM {anomalies.SPEC.name}"
            + ("" if args.all else " WHERE reviewed_at IS NULL")
            + " ORDER BY ts, symbol"
        )
        try:
            with query.open_read_only(path, wait_seconds=args.wait) as con:
                if not table_columns(con, anomalies.SPEC.name):
                    print("no anomalies recorded: the spike check has not found any move yet")
                    return 0
                result = query.run_query(con, sql, max_rows=10_000)
        except (query.WarehouseMissingError, query.WarehouseBusyError) as exc:
            print(exc, file=sys.stderr)
            return NO_WAREHOUSE if isinstance(exc, query.WarehouseMissingError) else WAREHOUSE_BUSY
        sys.stdout.write(query.render(result, query.Format.TABLE))
        return 0
    if not path.is_file():
        print(query.WarehouseMissingError(path), file=sys.stderr)
        return NO_WAREHOUSE
    try:
        with transaction(path, max_wait_seconds=args.wait) as con:
            unknown = anomalies.review(con, args.ids, args.note, datetime.now(UTC))
    except WarehouseLockedError as exc:
        print(exc, file=sys.stderr)
        return WAREHOUSE_BUSY
    done = len(set(args.ids) - set(unknown))
    print(f"marked {done} anomal{'y' if done == 1 else 'ies'} reviewed")
    if unknown:
        print(f"no anomaly has the id(s): {' '.join(unknown)}", file=sys.stderr)
        return SQL_ERROR
    return 0


def _sql(args: argparse.Namespace) -> int:
    import duckdb

    from platform_pkg.warehouse import query
    from platform_pkg.warehouse.connection import warehouse_path

    path = warehouse_path(str(args.warehouse) if args.warehouse else None)
    max_rows = max(args.max_rows, 0)

    def waiting(holder: query.LockHolder) -> None:
        print(f"waiting up to {args.wait:g} s for {holder} to release {path} ...", file=sys.stderr)

    try:
        with query.open_read_only(path, wait_seconds=args.wait, on_wait=waiting) as con:
            result = query.run_query(con, args.query, max_rows=max_rows)
    except query.WarehouseMissingError as exc:
        print(exc, file=sys.stderr)
        return NO_WAREHOUSE
    except query.WarehouseBusyError as exc:
        print(exc, file=sys.stderr)
        return WAREHOUSE_BUSY
    except duckdb.Error as exc:
        print(exc, file=sys.stderr)
        return SQL_ERROR
    sys.stdout.write(query.render(result, query.Format(args.format)))
    if note := query.omitted_note(result, max_rows):
        # After the table on stdout; on stderr for csv/json, which stay parseable.
        print(note, file=sys.stdout if args.format == "table" else sys.stderr)
    return 0


def _symbols(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    import dagster as dg

    from platform_pkg.market.demo import DEMO_LISTINGS
    from platform_pkg.partitions import add_symbols, symbols_partitions
    from platform_pkg.symbols import InvalidSymbolError

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
