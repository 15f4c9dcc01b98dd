"""The housekeeping job: prunes superseded runs from the Dagster instance.

An op job, not an asset: it changes the instance, not the warehouse, and uses none of the code
location's resources.
"""

import time
from datetime import UTC, datetime

import dagster as dg
from pydantic import Field

from platform_pkg.findings import markdown_table
from platform_pkg.housekeeping.prune import Policy, Report, prune

SAMPLE = 20  # kept runs listed in the output's metadata


class PruneConfig(dg.Config):
    """Which runs the pruning may delete."""

    keep_days: int = Field(
        default=14, ge=0, description="Successful runs younger than this many days are kept."
    )
    keep_failed_days: int = Field(
        default=30,
        ge=0,
        description="Failed or cancelled runs younger than this many days are kept (their logs "
        "say why they failed).",
    )
    max_runs: int = Field(
        default=2000,
        ge=1,
        description="Runs examined per run of the job, oldest first from where the last one "
        "stopped: a first run on a large instance ends in minutes and the next ones carry on.",
    )
    dry_run: bool = Field(
        default=False, description="Report what would be deleted; delete nothing."
    )


@dg.op(out=dg.Out(dg.Nothing))
def prune_superseded_runs(context: dg.OpExecutionContext, config: PruneConfig):
    """Deletes the finished runs that schedules and sensors started whose every materialisation
    and check evaluation a later run has replaced, keeping users' runs and backfills."""
    started = time.monotonic()
    policy = Policy(config.keep_days, config.keep_failed_days, config.max_runs)
    report = prune(context.instance, policy, now=datetime.now(UTC), dry_run=config.dry_run)
    seconds = time.monotonic() - started
    context.log.info(summary(report, seconds))
    return dg.Output(None, metadata=metadata(report, seconds))


@dg.job(
    name="prune_runs",
    # Its only output is Nothing; the code location's IO manager would bind the warehouse.
    resource_defs={"io_manager": dg.mem_io_manager},
    description="Delete old scheduled and sensor runs whose every record a later run replaced, "
    "so the instance holds about its last two weeks of runs instead of every run.",
)
def prune_job():
    prune_superseded_runs()


def summary(report: Report, seconds: float) -> str:
    """One line: what was examined, deleted and kept, and why."""
    verb = "would delete" if report.dry_run else "deleted"
    kept = ", ".join(f"{n} {v}" for v, n in report.kept_by_verdict().items() if n) or "none"
    freed = "" if report.shard_bytes is None else f" ({report.shard_bytes / 1e6:.1f} MB of shards)"
    return (
        f"examined {report.examined} runs in {seconds:.1f} s: {verb} {len(report.deleted)}"
        f"{freed}, kept {len(report.kept)} ({kept})"
    )


def metadata(report: Report, seconds: float) -> dict:
    """The figures of one pruning, as the op output's metadata."""
    figures: dict = {
        "runs_examined": report.examined,
        "runs_deleted": len(report.deleted),
        "runs_kept": len(report.kept),
        **{f"kept_{verdict}": n for verdict, n in report.kept_by_verdict().items()},
        "dry_run": report.dry_run,
        "seconds": round(seconds, 2),
        "resumed_after": str(report.resumed_after or "the oldest run"),
    }
    if report.shard_bytes is not None:
        figures["shard_bytes_freed"] = report.shard_bytes
    if report.kept:
        rows = [
            {"run": d.run_id, "kept because": d.verdict.value, "of": d.detail}
            for d in report.kept[:SAMPLE]
        ]
        figures["kept_sample"] = dg.MetadataValue.md(markdown_table(rows))
    return figures
