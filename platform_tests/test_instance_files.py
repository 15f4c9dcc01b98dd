"""The instance files: the PostgreSQL one shares every setting but its storage with dagster.yaml
(and the Docker one all of its own), reads its connection from the environment, is what the
scripts link, and stores runs, materialisations, check evaluations and ticks on a real server."""

import os
import shutil
import subprocess
import time
from pathlib import Path

import dagster as dg
import pytest
import yaml
from dagster._core.scheduler.instigation import InstigatorType, TickData, TickStatus

from platform_pkg.warehouse.connection import PROJECT_ROOT
from platform_tests import postgres

SQLITE_YAML = PROJECT_ROOT / "dagster.yaml"
POSTGRES_YAML = PROJECT_ROOT / "deploy" / "dagster.postgres.yaml"
DOCKER_YAML = PROJECT_ROOT / "deploy" / "dagster.docker.yaml"
STORAGE_KEYS = {"storage", "run_storage", "event_log_storage", "schedule_storage"}
CONNECTION = {
    "hostname": "DAGSTER_PG_HOST",
    "port": "DAGSTER_PG_PORT",
    "username": "DAGSTER_PG_USER",
    "password": "DAGSTER_PG_PASSWORD",
    "db_name": "DAGSTER_PG_DB",
}
postgres_server = postgres.postgres_server


def settings(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def test_the_postgres_instance_has_every_setting_of_dagster_yaml_but_the_storage():
    sqlite, pg = settings(SQLITE_YAML), settings(POSTGRES_YAML)
    shared = {k: v for k, v in sqlite.items() if k not in STORAGE_KEYS}
    assert {"run_queue", "concurrency", "run_retries", "retention", "python_logs"} <= set(shared)
    assert {k: v for k, v in pg.items() if k != "storage"} == shared


def test_the_docker_instance_is_the_postgres_instance_with_a_run_launcher():
    pg, docker = settings(POSTGRES_YAML), settings(DOCKER_YAML)
    launcher = docker.pop("run_launcher")
    assert (launcher["module"], launcher["class"]) == ("dagster_docker", "DockerRunLauncher")
    assert docker == pg


def test_the_postgres_connection_comes_from_the_environment_only():
    (kind,) = settings(POSTGRES_YAML)["storage"]
    db = settings(POSTGRES_YAML)["storage"]["postgres"]["postgres_db"]
    assert kind == "postgres"
    assert {k: v for k, v in db.items() if k in CONNECTION} == {
        k: {"env": var} for k, var in CONNECTION.items()
    }
    # Only the driver besides: SQLAlchemy 2.1 would pick psycopg 3, which is not installed.
    assert set(db) - set(CONNECTION) == {"scheme"}
    assert db["scheme"] == "postgresql+psycopg2"


def env_script(tmp_path: Path, instance: str | None, **pg: str) -> subprocess.CompletedProcess:
    """``source scripts/_env.sh`` in a copy of the project with an installed-looking virtualenv,
    so that nothing is installed; returns what the link in DAGSTER_HOME points at."""
    root = tmp_path / "project"
    (root / "scripts").mkdir(parents=True)
    (root / "deploy").mkdir()
    for name in (
        "scripts/_env.sh",
        "pyproject.toml",
        "dagster.yaml",
        "deploy/dagster.postgres.yaml",
    ):
        shutil.copy(PROJECT_ROOT / name, root / name)
    (root / ".venv" / "bin").mkdir(parents=True)
    (root / ".venv" / "bin" / "python").symlink_to(shutil.which("python3") or "/usr/bin/python3")
    digest = subprocess.run(
        ["sha1sum", "pyproject.toml"], cwd=root, capture_output=True, text=True, check=True
    ).stdout[:12]
    (root / ".venv" / f".installed-{digest}").touch()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DAGSTER_", "PLATFORM_"))}
    env |= {"DAGSTER_HOME": str(tmp_path / "home"), **pg}
    if instance:
        env["PLATFORM_INSTANCE"] = instance
    return subprocess.run(
        ["bash", "-c", 'source scripts/_env.sh && readlink "$DAGSTER_HOME/dagster.yaml"'],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_scripts_link_the_postgres_instance_only_with_its_connection_set(tmp_path):
    connection = {var: "x" for var in CONNECTION.values()}
    default = env_script(tmp_path / "default", None)
    assert default.returncode == 0, default.stderr
    assert default.stdout.strip().endswith("/dagster.yaml")
    linked = env_script(tmp_path / "pg", "postgres", **connection)
    assert linked.returncode == 0, linked.stderr
    assert linked.stdout.strip().endswith("/deploy/dagster.postgres.yaml")
    del connection["DAGSTER_PG_PASSWORD"]
    refused = env_script(tmp_path / "nopw", "postgres", **connection)
    assert refused.returncode != 0
    assert "PLATFORM_INSTANCE=postgres needs DAGSTER_PG_PASSWORD" in refused.stderr
    unknown = env_script(tmp_path / "unknown", "mysql")
    assert unknown.returncode != 0 and "sqlite or postgres" in unknown.stderr


@dg.asset
def tiny() -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata={"rows_written": 3})


@dg.asset_check(asset=tiny)
def tiny_has_rows() -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=True, metadata={"rows": 3})


def test_runs_materialisations_checks_and_ticks_are_stored_in_postgres(
    postgres_server, tmp_path, monkeypatch
):
    dagster_postgres = pytest.importorskip("dagster_postgres")
    for var, value in postgres_server.dagster_env(postgres_server.create_database()).items():
        monkeypatch.setenv(var, value)
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(POSTGRES_YAML, home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    tick = TickData(
        instigator_origin_id="origin",
        instigator_name="daily_close",
        instigator_type=InstigatorType.SCHEDULE,
        status=TickStatus.SKIPPED,
        timestamp=time.time(),
        skip_reason="no symbol traded",
        selector_id="selector",
    )
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert isinstance(instance.run_storage, dagster_postgres.PostgresRunStorage)
        assert isinstance(instance.event_log_storage, dagster_postgres.PostgresEventLogStorage)
        assert isinstance(instance.schedule_storage, dagster_postgres.PostgresScheduleStorage)
        assert (instance.run_retries_enabled, instance.run_retries_max_retries) == (True, 2)
        result = dg.materialize([tiny, tiny_has_rows], instance=instance)
        assert result.success
        instance.add_dynamic_partitions("symbols", ["BTC-USDT", "AAPL"])
        instance.create_tick(tick)

    # Another instance from the same file finds all of it: it is in the database.
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert instance.get_run_by_id(result.run_id).status == dg.DagsterRunStatus.SUCCESS
        (record,) = instance.fetch_materializations(tiny.key, limit=10).records
        assert record.asset_materialization.metadata["rows_written"].value == 3
        check_key = dg.AssetCheckKey(tiny.key, "tiny_has_rows")
        latest = instance.event_log_storage.get_latest_asset_check_execution_by_key([check_key])
        assert latest[check_key].status.value == "SUCCEEDED"
        assert latest[check_key].run_id == result.run_id
        assert sorted(instance.get_dynamic_partitions("symbols")) == ["AAPL", "BTC-USDT"]
        (stored,) = instance.get_ticks("origin", "selector")
        assert (stored.status, stored.skip_reason) == (TickStatus.SKIPPED, "no symbol traded")
    assert not list(home.rglob("*.db"))
