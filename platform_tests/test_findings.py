"""A finding's verdict and its sample as the Markdown table the Checks tab shows."""

from datetime import UTC, datetime

import pandas as pd

from platform_pkg.findings import Finding, markdown_table, records


def test_a_finding_passes_only_without_failures():
    assert Finding(looked_at={"rows": 3}).passed
    assert Finding(failures={"duplicates": 0, "future": 0}).passed
    failed = Finding(failures={"duplicates": 2, "future": 1})
    assert not failed.passed and failed.failed == 3


def test_the_sample_is_a_markdown_table():
    rows = [{"symbol": "A|B", "balance": -1 / 3, "ts": datetime(2026, 1, 1, tzinfo=UTC)}]
    assert markdown_table(rows).splitlines() == [
        "| symbol | balance | ts |",
        "|---|---|---|",
        "| A\\|B | -0.333333333333 | 2026-01-01 00:00+00:00 |",
    ]


def test_records_keep_the_first_rows_with_missing_values_as_none():
    frame = pd.DataFrame({"symbol": ["X"] * 30, "close": [1.5] * 29 + [float("nan")]})
    assert len(records(frame)) == 20 and records(frame.tail(1)) == [{"symbol": "X", "close": None}]
    assert records(None) == [] and records(pd.DataFrame()) == []
