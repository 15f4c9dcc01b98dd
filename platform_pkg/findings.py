"""What a data check found, in one shape for every domain: what was looked at, how many rows
failed and why, and the first offending rows. The checks turn it into a Dagster result; tests read
it directly."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd

SAMPLE = 20  # offending rows a finding keeps


@dataclass(frozen=True)
class Finding:
    """``looked_at``: what was examined (rows, symbols, the scope); ``failures``: failing counts
    by kind; ``sample``: the first offending rows; ``notes``: figures that are not failures;
    ``note``: a sentence (why there was nothing to check)."""

    looked_at: Mapping[str, Any] = field(default_factory=dict)
    failures: Mapping[str, int] = field(default_factory=dict)
    sample: Sequence[Mapping[str, Any]] = ()
    notes: Mapping[str, Any] = field(default_factory=dict)
    note: str | None = None

    @property
    def failed(self) -> int:
        return sum(self.failures.values())

    @property
    def passed(self) -> bool:
        return self.failed == 0


def records(frame: pd.DataFrame | None) -> list[dict[str, Any]]:
    """The first :data:`SAMPLE` rows of ``frame`` as a sample."""
    if frame is None or frame.empty:
        return []
    head = frame.head(SAMPLE)
    return head.astype(object).where(head.notna(), None).to_dict("records")


def markdown_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """A sample as a Markdown table (what the UI renders in check metadata)."""
    columns = list(rows[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(_cell(row.get(c)) for c in columns) + " |")
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if isinstance(value, pd.Timestamp | datetime):
        return value.isoformat(sep=" ", timespec="minutes")
    if isinstance(value, float):
        return f"{value:.12g}"
    return "" if value is None else str(value).replace("|", "\\|")
