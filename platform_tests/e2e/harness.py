"""A real ``dagster dev`` (webserver + daemon) on 127.0.0.1 for end-to-end tests and benchmarks.

Everything it starts runs in one new process group; :meth:`DagsterDev.stop` ends that group and
any descendant that left it, by process id, and is always called (context manager).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DAGSTER = PROJECT_ROOT / ".venv" / "bin" / "dagster"
POSTGRES_YAML = PROJECT_ROOT / "deploy" / "dagster.postgres.yaml"
TERMINAL = {"SUCCESS", "FAILURE", "CANCELED"}

RUNS_QUERY = """
query Runs($filter: RunsFilter) {
  runsOrError(filter: $filter) {
    __typename
    ... on Runs { results { runId status startTime endTime tags { key value } assetSelection { path } } }
    ... on PythonError { message }
  }
}
"""
LAUNCH_BACKFILL = """
mutation Launch($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message stack }
    ... on InvalidSubsetError { message }
    ... on PartitionSetNotFoundError { message }
    ... on UnauthorizedError { message }
  }
}
"""
BACKFILL_QUERY = """
query Backfill($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    __typename
    ... on PartitionBackfill { id status }
    ... on PythonError { message }
  }
}
"""
LAUNCH_RUN = """
mutation Launch($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
    ... on InvalidSubsetError { message }
    ... on RunConfigValidationInvalid { errors { message } }
  }
}
"""
ASSET_CHECKS = """
query Checks($key: AssetKeyInput!) {
  assetNodeOrError(assetKey: $key) {
    __typename
    ... on AssetNode {
      assetChecksOrError {
        __typename
        ... on AssetChecks {
          checks {
            name
            executionForLatestMaterialization {
              status runId
              evaluation {
                severity description
                metadataEntries {
                  label
                  ... on IntMetadataEntry { intValue }
                  ... on TextMetadataEntry { text }
                  ... on MarkdownMetadataEntry { mdStr }
                }
              }
            }
          }
        }
      }
    }
  }
}
"""
SENSOR_TICKS = """
query Ticks($selector: SensorSelector!) {
  sensorOrError(sensorSelector: $selector) {
    __typename
    ... on Sensor { sensorState { status ticks(limit: 5) { status error { message } } } }
  }
}
"""


def free_port() -> int:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class DagsterDev:
    """``dagster dev`` in ``workdir`` with its own DAGSTER_HOME, warehouse and portfolio file.

    ``postgres``: the ``DAGSTER_PG_*`` variables of a PostgreSQL database; the instance is then
    ``deploy/dagster.postgres.yaml`` on that database instead of the project's SQLite instance.
    """

    def __init__(
        self,
        workdir: Path,
        env: dict[str, str] | None = None,
        workspace: Path | None = None,
        dagster_yaml: Path | None = None,
        postgres: dict[str, str] | None = None,
    ):
        self.workdir = workdir
        self.home = workdir / "dagster_home"
        self.warehouse = workdir / "warehouse.duckdb"
        self.portfolio = workdir / "portfolio.csv"
        self.accounts = workdir / "accounts.toml"
        self.log_path = workdir / "dagster_dev.log"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/graphql"
        self.workspace = workspace or PROJECT_ROOT / "workspace.yaml"
        if postgres is not None and dagster_yaml is not None:
            raise ValueError("give either dagster_yaml or postgres, not both")
        default_yaml = POSTGRES_YAML if postgres is not None else PROJECT_ROOT / "dagster.yaml"
        self.dagster_yaml = dagster_yaml or default_yaml
        self.extra_env = {**(postgres or {}), **(env or {})}
        self.proc: subprocess.Popen | None = None
        self._log = None
        self._seen: dict[int, str] = {}  # pid -> start time, so a reused pid is never killed

    def __enter__(self) -> DagsterDev:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PLATFORM_", "DAGSTER_"))}
        env.update(
            {
                "DAGSTER_HOME": str(self.home),
                "PLATFORM_WAREHOUSE": str(self.warehouse),
                "PLATFORM_PORTFOLIO": str(self.portfolio),
                "PLATFORM_ACCOUNTS": str(self.accounts),
                "PLATFORM_RATE_LIMIT_DIR": str(self.workdir / "ratelimit"),
                "PATH": f"{DAGSTER.parent}{os.pathsep}{env.get('PATH', '')}",
                "PYTHONUNBUFFERED": "1",
                # As scripts/dev.sh: one planned event per ranged run, not one per partition.
                "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS": "1",
                "DAGSTER_EVENT_BATCH_SIZE": "1000",
            }
        )
        env.update(self.extra_env)
        return env

    def start(self, timeout: float = 90.0) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        shutil.copy(self.dagster_yaml, self.home / "dagster.yaml")
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [
                str(DAGSTER),
                "dev",
                "-w",
                str(self.workspace),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
            ],
            cwd=PROJECT_ROOT,
            env=self.env(),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"dagster dev exited with {self.proc.returncode}:\n{self.log_tail()}"
                )
            try:
                data = self.graphql(
                    "{ repositoriesOrError { __typename ... on RepositoryConnection { nodes { name } } } }"
                )
                if data["repositoriesOrError"].get("nodes"):
                    return
            except (httpx.HTTPError, RuntimeError):
                pass
            self._remember_descendants()
            time.sleep(0.5)
        raise TimeoutError(
            f"dagster dev did not serve its code location in {timeout:.0f} s:\n{self.log_tail()}"
        )

    def add_symbols(self, *symbols: str) -> None:
        """Add symbol partitions the way a user would: the project's CLI, on this instance."""
        added = subprocess.run(
            [sys.executable, "-m", "platform_pkg.cli", "symbols", "add", *symbols],
            cwd=PROJECT_ROOT,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert added.returncode == 0, added.stderr

    def graphql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        response = httpx.post(
            self.url, json={"query": query, "variables": variables or {}}, timeout=30
        )
        response.raise_for_status()
        body = response.json()
        if body.get("errors"):
            raise RuntimeError(f"GraphQL errors: {body['errors']}")
        return body["data"]

    def runs(self, tags: dict[str, str] | None = None) -> list[dict[str, Any]]:
        flt = {"tags": [{"key": k, "value": v} for k, v in (tags or {}).items()]}
        data = self.graphql(RUNS_QUERY, {"filter": flt})["runsOrError"]
        if data["__typename"] != "Runs":
            raise RuntimeError(f"runs query failed: {data}")
        for run in data["results"]:
            run["tags"] = {t["key"]: t["value"] for t in run["tags"]}
            run["assets"] = sorted("/".join(k["path"]) for k in run["assetSelection"] or [])
        return data["results"]

    def checks(self, asset: str) -> dict[str, dict[str, Any]]:
        """The asset's checks by name: the status of the latest execution, its severity,
        description and metadata (label → value)."""
        node = self.graphql(ASSET_CHECKS, {"key": {"path": [asset]}})["assetNodeOrError"]
        found = {}
        for check in node["assetChecksOrError"]["checks"]:
            execution = check["executionForLatestMaterialization"] or {}
            evaluation = execution.get("evaluation") or {}
            found[check["name"]] = {
                "status": execution.get("status"),
                "run_id": execution.get("runId"),
                "severity": evaluation.get("severity"),
                "description": evaluation.get("description"),
                "metadata": {
                    e["label"]: e.get("intValue", e.get("text", e.get("mdStr")))
                    for e in evaluation.get("metadataEntries", [])
                },
            }
        return found

    def sensor_errors(self, name: str) -> list[str]:
        selector = {
            "repositoryLocationName": "platform",
            "repositoryName": "__repository__",
            "sensorName": name,
        }
        data = self.graphql(SENSOR_TICKS, {"selector": selector})["sensorOrError"]
        ticks = (
            data.get("sensorState", {}).get("ticks", []) if data["__typename"] == "Sensor" else []
        )
        return [t["error"]["message"] for t in ticks if t["status"] == "FAILURE" and t.get("error")]

    def wait_for(
        self, what: str, ready: Callable[[], Any], timeout: float, every: float = 1.0
    ) -> Any:
        """Poll ``ready`` until it returns something truthy, at most ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            self._remember_descendants()
            value = ready()
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what}: not done after {timeout:.0f} s\n{self.log_tail()}")
            time.sleep(every)

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def _remember_descendants(self) -> None:
        """Note every process below ``dagster dev``, in case one leaves its process group."""
        if self.proc is None:
            return
        children: dict[int, list[int]] = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None:
                children.setdefault(int(stat[1]), []).append(int(entry.name))
        todo = [self.proc.pid]
        while todo:
            pid = todo.pop()
            for child in children.get(pid, []):
                if child not in self._seen and (stat := _stat(child)) is not None:
                    self._seen[child] = stat[19]
                    todo.append(child)

    def stop(self, grace: float = 20.0) -> None:
        if self.proc is None:
            return
        self._remember_descendants()
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
        for pid, started in self._seen.items():
            stat = _stat(pid)
            if stat is not None and stat[19] == started:
                _kill(pid)
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=10)
        if self._log is not None:
            self._log.close()
        self.proc = None


def _stat(pid: int) -> list[str] | None:
    """``/proc/<pid>/stat`` fields after the command name (state, ppid, ..., starttime at 19)."""
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
