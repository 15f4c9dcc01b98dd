"""Outputs written batch by batch: each batch and its bookkeeping commit in one transaction.

An asset that fetches page by page returns a :class:`BatchStream` instead of one big frame. The
IO manager pulls the batches, so each page is committed (data, watermark, sync log) as soon as it
arrives: a crash after page k keeps pages 1..k and a watermark that claims exactly them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa

from platform_pkg.warehouse.upsert import UpsertStats


@dataclass
class Batch:
    frame: pd.DataFrame | pa.Table
    tag: Any = None  # whatever the stream needs to recognise the batch in its callbacks


class BatchStream:
    """Base class for streamed outputs. Subclasses implement :meth:`batches` and the hooks."""

    def batches(self) -> Iterator[Batch]:
        raise NotImplementedError

    def in_transaction(
        self, con: duckdb.DuckDBPyConnection, batch: Batch, stats: UpsertStats
    ) -> None:
        """Extra writes (watermarks, logs) that must commit together with ``batch``."""

    def committed(self, batch: Batch, stats: UpsertStats) -> None:
        """Called once ``batch``'s transaction has committed."""

    def finish(self, con: duckdb.DuckDBPyConnection, error: BaseException | None) -> None:
        """Final bookkeeping, in its own transaction, after the last batch or a failure."""

    def metadata(self) -> dict[str, Any]:
        """Metadata for the materialisation."""
        return {}
