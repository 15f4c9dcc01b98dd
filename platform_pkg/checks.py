"""What every asset check of the platform reports: a :class:`Finding` as a Dagster result."""

import dagster as dg

from platform_pkg.findings import Finding, markdown_table


def check_result(
    name: str,
    finding: Finding,
    severity: dg.AssetCheckSeverity,
    asset_key: dg.AssetKey | None = None,
    description: str | None = None,
) -> dg.AssetCheckResult:
    """The check's result: passed unless something failed; its metadata says what was looked
    at, the failing counts, other figures and the sample (as ``sample``, a Markdown table)."""
    problems = {k: v for k, v in finding.failures.items() if v}
    summary = ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in problems.items())
    metadata = {**finding.looked_at, **finding.failures, **finding.notes}
    if finding.note:
        metadata["note"] = finding.note
    if finding.sample:
        metadata["sample"] = dg.MetadataValue.md(markdown_table(finding.sample))
    return dg.AssetCheckResult(
        check_name=name,
        asset_key=asset_key,
        passed=finding.passed,
        severity=severity,
        description=description or summary or finding.note,
        metadata=metadata,
    )
