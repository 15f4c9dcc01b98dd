"""API use per source over the last day and week, from ``sync_log`` alone, and what the
incremental syncs saved against re-exporting the whole history every time.

A *stream* is one (``symbol``, ``data_type``) of ``sync_log`` (a symbol's hourly prices, an
account's market, a wallet). For a sync *s* of a stream:

* ``held_after(s)`` = Σ (rows_inserted − rows_deleted) over the stream's syncs up to and
  including *s*: the rows a full re-export right after *s* would have to bring.
* ``page_rows`` of its (source, data type) = the most rows per request of any of their syncs
  (rows_fetched / api_requests, at least 1): about a full page.
* ``unit_price`` of its (source, data type) = Σ api_units / Σ api_requests over their syncs of
  the last 7 days: what a request costs now.
* ``full(s)`` = ⌈held_after(s) / page_rows⌉ × unit_price: what re-exporting the history would
  have cost instead of *s*.

*s* is **incremental** when it finished (``success`` or ``partial``) and its stream already held
rows before it (held_after(s) − its own net rows > 0): a stream's first sync is its export.
``units_saved`` = Σ full(s) − Σ api_units(s) over a period's incremental syncs; a sync that
re-read more than a full page of history costs more than an export would and counts negative.

Every answer that throttled a request (a 429, Binance's 418) counts in ``throttled`` (sync_log's
``api_throttled``), whether the run waited it out or it deferred the fetch; the fetches it
deferred are the ``rate_limited`` rows.
"""

from __future__ import annotations

from datetime import datetime

import duckdb

from platform_pkg.status.model import PERIODS, Usage
from platform_pkg.warehouse.sync_log import SyncStatus
from platform_pkg.warehouse.upsert import table_columns

NO_SOURCE = "(none)"  # a fetch that failed before it chose a source

_SQL = """
WITH recent AS (
    SELECT sync_id, symbol, data_type, coalesce(source, ?) AS source, started_at, status,
           api_requests, api_units, rows_fetched, rows_inserted - {deleted} AS net_rows,
           {throttled} AS api_throttled
    FROM sync_log WHERE started_at >= ?
), recent_rates AS (
    SELECT source, data_type,
           coalesce(max(rows_fetched / api_requests) FILTER (WHERE api_requests > 0), 1) AS page,
           coalesce(sum(api_units) / nullif(sum(api_requests), 0), 0) AS unit_price
    FROM recent GROUP BY ALL
), pages AS (
    -- Over the whole log, only a sync with more rows a request than the smallest recent page
    -- can raise a page: the filter keeps the scan cheap.
    SELECT source, data_type, greatest(max(page), 1) AS page_rows FROM (
        SELECT source, data_type, page FROM recent_rates
        UNION ALL
        SELECT coalesce(source, ?), data_type, rows_fetched / api_requests FROM sync_log
        WHERE api_requests > 0
          AND rows_fetched > api_requests * (SELECT min(page) FROM recent_rates)
    ) GROUP BY ALL
), held AS (  -- the whole log; only a sync that changed the row count adds to it
    SELECT symbol, data_type, sum(rows_inserted - {deleted}) AS held
    FROM sync_log WHERE rows_inserted <> 0 OR {deleted} <> 0 GROUP BY ALL
), judged AS (
    SELECT r.*, r.status IN (?, ?) AND r.held_after - r.net_rows > 0 AS incremental,
           ceil(r.held_after / p.page_rows) * u.unit_price AS full_units
    FROM (
        SELECT r.*, coalesce(h.held, 0)
                    - sum(r.net_rows) OVER (PARTITION BY r.symbol, r.data_type)
                    + sum(r.net_rows) OVER (PARTITION BY r.symbol, r.data_type
                                            ORDER BY r.started_at, r.sync_id
                                            ROWS UNBOUNDED PRECEDING) AS held_after
        FROM recent r LEFT JOIN held h USING (symbol, data_type)
    ) r JOIN pages p USING (source, data_type) JOIN recent_rates u USING (source, data_type)
)
SELECT w.period, j.source, count(*), sum(j.api_requests), sum(j.api_units),
       count(*) FILTER (WHERE j.status = ?), count(*) FILTER (WHERE j.status = ?),
       count(*) FILTER (WHERE j.status = ?), count(*) FILTER (WHERE j.incremental),
       coalesce(sum(j.api_units) FILTER (WHERE j.incremental), 0),
       coalesce(sum(j.full_units) FILTER (WHERE j.incremental), 0),
       coalesce(sum(j.api_throttled), 0)
FROM judged j JOIN (SELECT unnest(?) AS period, unnest(?) AS since) w ON j.started_at >= w.since
GROUP BY ALL ORDER BY w.period, j.source
"""


def usage(con: duckdb.DuckDBPyConnection, now: datetime) -> tuple[Usage, ...]:
    """Per period of :data:`PERIODS` and source: syncs, requests, units, deferrals and savings."""
    columns = table_columns(con, "sync_log")
    if not columns:
        return ()
    # A sync_log from before rows_deleted existed gets it from the next run that writes one.
    deleted = "coalesce(rows_deleted, 0)" if "rows_deleted" in columns else "0"
    throttled = "coalesce(api_throttled, 0)" if "api_throttled" in columns else "0"
    since = {name: now - span for name, span in PERIODS.items()}
    rows = con.execute(
        _SQL.format(deleted=deleted, throttled=throttled),
        [
            NO_SOURCE,
            min(since.values()),
            NO_SOURCE,
            SyncStatus.SUCCESS.value,
            SyncStatus.PARTIAL.value,
            SyncStatus.RATE_LIMITED.value,
            SyncStatus.BUDGET_EXHAUSTED.value,
            SyncStatus.FAILED.value,
            list(since),
            list(since.values()),
        ],
    ).fetchall()
    return tuple(
        Usage(
            source=source,
            period=period,
            syncs=syncs,
            requests=int(requests),
            units=float(units),
            rate_limited=limited,
            budget_exhausted=budget,
            failed=failed,
            incremental_syncs=incremental,
            incremental_units=float(spent),
            full_export_units=float(full),
            throttled=int(throttled),
        )
        for (
            period,
            source,
            syncs,
            requests,
            units,
            limited,
            budget,
            failed,
            incremental,
            spent,
            full,
            throttled,
        ) in rows
    )
