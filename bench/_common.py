"""Shared by the benchmark scripts: machine facts and the results files."""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import subprocess
import sys
import warnings
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

# Imported before platform_pkg: BackfillPolicy's beta warning would only clutter the figures.
warnings.filterwarnings("ignore", message=".*is currently in beta")

ROOT = Path(__file__).resolve().parents[1]
_LOAD_AT_START = os.getloadavg()[0]
RESULTS = ROOT / "bench" / "results"
VENV_PYTHON = ROOT / ".venv" / "bin" / "python"


def _version(package: str) -> str | None:
    try:
        return version(package)
    except PackageNotFoundError:
        return None


def _git(*args: str) -> str:
    done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
    return done.stdout.strip()


def measured_code() -> dict:
    """Which platform_pkg the benchmarks import: the working tree (committed or not), or an export
    of one commit put first on PYTHONPATH (``git archive``, with the commit in a COMMIT file)."""
    spec = importlib.util.find_spec("platform_pkg")
    source = Path(next(iter(spec.submodule_search_locations))).resolve()
    if source == ROOT / "platform_pkg":
        dirty = _git("status", "--porcelain", "--", "platform_pkg").splitlines()
        return {"platform_pkg": "working tree", "platform_pkg_uncommitted_files": len(dirty)}
    marker = source.parent / "COMMIT"
    commit = marker.read_text().strip() if marker.exists() else "unknown"
    return {"platform_pkg": f"export of {commit}", "platform_pkg_path": str(source)}


def machine() -> dict:
    """What the figures were measured on, and on which code."""
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "repo_head": _git("rev-parse", "--short", "HEAD"),
        **measured_code(),
        "cores": os.cpu_count(),
        # Two cores shared with other work: a busy machine shows up here, not only in the times.
        "loadavg_1m": [round(_LOAD_AT_START, 2), round(os.getloadavg()[0], 2)],  # start, end
        "machine": platform.machine(),
        "python": platform.python_version(),
        "dagster": _version("dagster"),
        "duckdb": _version("duckdb"),
        "pyarrow": _version("pyarrow"),
        "pandas": _version("pandas"),
    }


def record(name: str, figures: dict) -> Path:
    """Append one JSON line (machine facts + ``figures``) to ``bench/results/<name>.jsonl``."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.jsonl"
    with path.open("a") as fh:
        fh.write(json.dumps({"bench": name, **machine(), **figures}, default=str) + "\n")
    print(f"appended to {path.relative_to(ROOT)}")
    return path


def python() -> str:
    """The project interpreter (falls back to the one running this script)."""
    return str(VENV_PYTHON) if VENV_PYTHON.exists() else sys.executable
