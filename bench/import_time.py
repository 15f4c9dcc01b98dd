"""Import time of ``platform_pkg.definitions``: every run process and code server pays it.

Fresh interpreters, one warm-up then N timed runs each (interleaved) of
  python -c "pass"                          (interpreter start-up)
  python -c "import dagster"                (what any Dagster process pays anyway)
  python -c "import platform_pkg.definitions"
timing the import inside the child and the whole process from outside. Reports medians and what
the definitions add on top of Dagster, which heavy modules are loaded, and, from one
``-X importtime`` run, where the time goes by top-level package. Exits 1 if ccxt or yfinance is
imported at definitions load time. Usage: import_time.py [--runs N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict

import _common

HEAVY = [
    "ccxt", "yfinance", "curl_cffi", "requests", "httpx", "aiohttp", "pandas", "numpy",
    "pyarrow", "duckdb", "dagster_duckdb", "sqlalchemy", "grpc", "scipy", "matplotlib",
]  # fmt: skip
FORBIDDEN = ("ccxt", "yfinance")
CHILD = """
import json, sys, time
t = time.perf_counter()
{statement}
elapsed = time.perf_counter() - t
heavy = [m for m in {heavy!r} if m in sys.modules]
print(json.dumps({{"import_s": elapsed, "modules": len(sys.modules), "heavy": heavy}}))
"""
CASES = {
    "python_bare": "pass",
    "import_dagster": "import dagster",
    "import_definitions": "import platform_pkg.definitions",
}


def child(statement: str, cwd: str) -> dict:
    code = CHILD.format(statement=statement, heavy=HEAVY)
    t0 = time.perf_counter()
    done = subprocess.run([_common.python(), "-c", code], cwd=cwd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if done.returncode:
        raise SystemExit(f"{statement!r} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1]) | {"wall_s": wall}


def by_package(cwd: str) -> dict[str, float]:
    """Self time per top-level package while importing the definitions (``-X importtime``)."""
    done = subprocess.run(
        [_common.python(), "-X", "importtime", "-c", "import platform_pkg.definitions"],
        cwd=cwd, capture_output=True, text=True,
    )  # fmt: skip
    if done.returncode:
        raise SystemExit(f"import platform_pkg.definitions failed:\n{done.stderr[-2000:]}")
    totals: dict[str, float] = defaultdict(float)
    for line in done.stderr.splitlines():
        parts = line.split("|")
        if line.startswith("import time:") and parts[0].split(":")[1].strip().isdigit():
            totals[parts[2].strip().split(".")[0]] += int(parts[0].split(":")[1]) / 1e6
    return dict(sorted(totals.items(), key=lambda kv: -kv[1])[:12])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    runs = parser.parse_args().runs
    samples: dict[str, list[dict]] = {name: [] for name in CASES}
    with tempfile.TemporaryDirectory(prefix="bench-import-") as cwd:
        for statement in CASES.values():
            child(statement, cwd)  # warm-up: bytecode caches and the page cache
        for _ in range(runs):
            for name, statement in CASES.items():
                samples[name].append(child(statement, cwd))
        packages = by_package(cwd)
    figures: dict = {"runs": runs}
    print(f"median of {runs} fresh interpreters (min in brackets)")
    for name in CASES:
        imp = [s["import_s"] for s in samples[name]]
        wall = [s["wall_s"] for s in samples[name]]
        figures[name] = {
            "import_median_s": round(statistics.median(imp), 3),
            "import_min_s": round(min(imp), 3),
            "process_wall_median_s": round(statistics.median(wall), 3),
            "modules_loaded": samples[name][-1]["modules"],
            "heavy_loaded": samples[name][-1]["heavy"],
        }
        f = figures[name]
        print(
            f"  {CASES[name]:34} import {f['import_median_s']:.3f}s ({f['import_min_s']:.3f}s)"
            f"  whole process {f['process_wall_median_s']:.3f}s  modules {f['modules_loaded']}"
        )
    extra = (
        figures["import_definitions"]["import_median_s"]
        - figures["import_dagster"]["import_median_s"]
    )
    figures["definitions_minus_dagster_s"] = round(extra, 3)
    print(f"  platform_pkg.definitions adds {extra:.3f}s on top of import dagster")
    heavy = figures["import_definitions"]["heavy_loaded"]
    added = [m for m in heavy if m not in figures["import_dagster"]["heavy_loaded"]]
    print(f"heavy modules loaded by the definitions: {', '.join(heavy) or 'none'}")
    print(f"  of which not loaded by import dagster: {', '.join(added) or 'none'}")
    print("self time by top-level package (one -X importtime run):")
    for package, seconds in packages.items():
        print(f"  {package:24}{seconds:7.3f}s")
    leaked = [m for m in FORBIDDEN if m in heavy]
    print(f"ccxt / yfinance at import time: {'LOADED: ' + ', '.join(leaked) if leaked else 'no'}")
    figures |= {"added_by_definitions": added, "by_package_s": packages, "forbidden_loaded": leaked}
    figures["by_package_s"] = {k: round(v, 3) for k, v in packages.items()}
    _common.record("import_time", figures)
    return 1 if leaked else 0


if __name__ == "__main__":
    sys.exit(main())
