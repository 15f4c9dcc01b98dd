"""The status shown three ways from one set of sections: Markdown for the asset's metadata, aligned
text for the terminal, and flat figures (numbers only) the UI plots over time."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from platform_pkg.findings import markdown_table
from platform_pkg.status.model import PERIODS, Status
from platform_pkg.status.sections import num, sections, when
from platform_pkg.warehouse.sync_log import SyncStatus


def figures(status: Status) -> dict[str, int | float]:
    """Every figure as a number, named for the UI's plots; unknown ones are left out."""
    out: dict[str, int | float] = {
        "tracked_active": status.active_symbols,
        "tracked_inactive": len(status.tracked) - status.active_symbols,
        "accounts_active": sum(a.is_active for a in status.accounts),
        "accounts_inactive": sum(not a.is_active for a in status.accounts),
        "stale_symbols": len(status.stale),
    }
    if (untracked := status.untracked_partitions) is not None:
        out["symbol_partitions"] = len(status.instance.symbol_partitions or ())
        out["untracked_partitions"] = len(untracked)
    for f in status.freshness:
        out[f"stale/{f.data_type}/{f.source}"] = f.stale
    out["deferred_fetches"] = len(status.deferred)
    out["budget_blocked"] = sum(d.status == SyncStatus.BUDGET_EXHAUSTED for d in status.deferred)
    if status.instance.failed_runs is not None:
        out["failed_runs_24h"] = status.instance.failed_runs_total
    for period in PERIODS:
        rows = status.usage_of(period)
        out[f"requests_{period}"] = sum(u.requests for u in rows)
        out[f"units_{period}"] = float(sum(u.units for u in rows))
        out[f"rate_limited_{period}"] = sum(u.rate_limited for u in rows)
        out[f"throttled_{period}"] = sum(u.throttled for u in rows)
        out[f"units_saved_{period}"] = float(sum(u.units_saved for u in rows))
        for u in rows:
            out[f"requests_{period}/{u.source}"] = u.requests
            out[f"units_{period}/{u.source}"] = u.units
            out[f"rate_limited_{period}/{u.source}"] = u.rate_limited
            out[f"throttled_{period}/{u.source}"] = u.throttled
            out[f"budget_exhausted_{period}/{u.source}"] = u.budget_exhausted
            out[f"units_saved_{period}/{u.source}"] = u.units_saved
    out["known_gaps"] = sum(g.gaps for g in status.known_gaps)
    out["known_gap_candles"] = sum(g.candles for g in status.known_gaps)
    out["unreviewed_anomalies"] = status.unreviewed_anomalies
    if status.warehouse_bytes is not None:
        out["warehouse_bytes"] = status.warehouse_bytes
    if status.instance.instance_bytes is not None:
        out["instance_bytes"] = status.instance.instance_bytes
    return out


def headline(status: Status) -> str:
    """One line: the figures someone glancing at the platform wants first."""
    failed = status.instance.failed_runs
    runs = "failed runs unknown" if failed is None else f"{status.instance.failed_runs_total}"
    if failed is not None:
        runs += " failed run(s) in 24 h"
    return (
        f"{status.active_symbols} active symbols, {len(status.stale)} stale; "
        f"{len(status.deferred)} deferred fetch(es); {runs}; "
        f"{sum(u.requests for u in status.usage_of('24h'))} requests in 24 h; "
        f"{status.unreviewed_anomalies} unreviewed anomal(ies)"
    )


def markdown(status: Status) -> str:
    parts = [f"**{headline(status)}** (at {when(status.now)} UTC)"]
    for s in sections(status):
        parts.append(f"#### {s.title}\n{s.headline}")
        if s.rows:
            parts.append(markdown_table([dict(zip(s.columns, r, strict=True)) for r in s.rows]))
    parts += [f"_{note}_" for note in status.notes + _instance_note(status)]
    return "\n\n".join(parts)


def text(status: Status) -> str:
    lines = [f"Platform status at {when(status.now)} UTC: {headline(status)}"]
    for s in sections(status):
        lines += ["", f"{s.title}: {s.headline}"]
        if s.rows:
            lines += ["  " + line for line in _aligned(s.columns, s.rows)]
    lines += [f"note: {note}" for note in status.notes + _instance_note(status)]
    return "\n".join(lines) + "\n"


def as_json(status: Status) -> str:
    return json.dumps({"status": asdict(status), "figures": figures(status)}, default=str, indent=1)


def _instance_note(status: Status) -> tuple[str, ...]:
    return (status.instance.note,) if status.instance.note else ()


def _aligned(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    cells = [[_cell(v) for v in row] for row in rows]
    numeric = [all(isinstance(row[i], int | float) for row in rows) for i in range(len(columns))]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]

    def line(values: Sequence[str]) -> str:
        padded = (
            v.rjust(w) if right else v.ljust(w)
            for v, w, right in zip(values, widths, numeric, strict=True)
        )
        return "  ".join(padded).rstrip()

    return [line(columns), "  ".join("-" * w for w in widths), *(line(r) for r in cells)]


def _cell(value: Any) -> str:
    return num(value) if isinstance(value, float) else str(value)
