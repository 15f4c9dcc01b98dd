"""A real PostgreSQL server on 127.0.0.1 for tests and benchmarks: a throwaway cluster in a
temporary folder, one per test session, always stopped.

The binaries are Debian's (``apt-get install postgresql``, which ``scripts/test.sh`` runs when
they are missing and apt is usable), found on ``$PLATFORM_PG_BIN``, the ``PATH`` or under
``/usr/lib/postgresql/<version>/bin``. initdb refuses to run as root, so as root the cluster
belongs to the ``postgres`` user the package creates. The server runs in its own process group
and gets SIGINT if the process that started it dies (``setpriv --pdeathsig``).
"""

from __future__ import annotations

import atexit
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import pytest

SUPERUSER = "platform"
DEBIAN_BINARIES = Path("/usr/lib/postgresql")
INSTALL_HINT = (
    "`bash scripts/test.sh` installs Debian's postgresql with apt when run as root or with "
    "passwordless sudo; else install it (apt-get install postgresql) or set PLATFORM_PG_BIN to "
    "the folder holding initdb and postgres"
)


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server can be started here; the message says why."""


@dataclass(frozen=True)
class Account:
    """Who owns the cluster's files and runs the server."""

    uid: int
    gid: int
    name: str

    @classmethod
    def for_server(cls) -> Account:
        if os.geteuid() != 0:
            entry = pwd.getpwuid(os.geteuid())
            return cls(entry.pw_uid, entry.pw_gid, entry.pw_name)
        try:
            entry = pwd.getpwnam("postgres")
        except KeyError:
            raise PostgresUnavailable(
                "running as root, and there is no 'postgres' user to run the server as "
                "(initdb refuses root; Debian's postgresql package creates that user)"
            ) from None
        return cls(entry.pw_uid, entry.pw_gid, entry.pw_name)

    def popen_kwargs(self) -> dict:
        if os.geteuid() != 0:
            return {}
        return {"user": self.uid, "group": self.gid, "extra_groups": []}


def server_binaries() -> Path:
    """The folder with ``initdb`` and ``postgres``: ``$PLATFORM_PG_BIN``, the one ``initdb`` on
    the PATH is in, else Debian's newest ``/usr/lib/postgresql/<version>/bin``."""
    candidates = []
    if configured := os.environ.get("PLATFORM_PG_BIN"):
        candidates.append(Path(configured))
    if found := shutil.which("initdb"):
        candidates.append(Path(found).resolve().parent)
    if DEBIAN_BINARIES.is_dir():
        versions = [p for p in DEBIAN_BINARIES.iterdir() if p.name.isdigit()]
        candidates += [p / "bin" for p in sorted(versions, key=lambda p: int(p.name), reverse=True)]
    for folder in candidates:
        if (folder / "initdb").is_file() and (folder / "postgres").is_file():
            return folder
    raise PostgresUnavailable(
        f"PostgreSQL's server (initdb, postgres) is not installed: {INSTALL_HINT}"
    )


def free_port() -> int:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PostgresServer:
    """A fresh cluster in a temporary folder, serving 127.0.0.1 with a password.

    ``durable=False`` (tests) turns fsync off: nothing in it outlives the server. The benchmarks
    keep PostgreSQL's defaults.
    """

    def __init__(self, durable: bool = False):
        self.bindir = server_binaries()
        self.account = Account.for_server()
        self.durable = durable
        self.user = SUPERUSER
        self.password = secrets.token_urlsafe(18)
        self.host = "127.0.0.1"
        self.port = 0
        self.root = Path(tempfile.mkdtemp(prefix="platform-pg-"))
        self.data = self.root / "data"
        self.log_path = self.root / "server.log"
        self.proc: subprocess.Popen | None = None
        self._databases = 0

    def start(self, timeout: float = 30.0, attempts: int = 3) -> PostgresServer:
        try:
            os.chown(self.root, self.account.uid, self.account.gid)
            self._initdb(timeout)
            for attempt in range(attempts):
                self.port = free_port()
                if self._serve(timeout):
                    return self
                # Another process took the port between our probe and the server's bind.
                if "could not bind" not in self.log_tail() or attempt == attempts - 1:
                    raise PostgresUnavailable(f"the server did not start:\n{self.log_tail()}")
        except BaseException:
            self.stop()
            raise
        raise AssertionError("unreachable")

    def _initdb(self, timeout: float) -> None:
        pwfile = self.root / "pwfile"
        pwfile.write_text(self.password)
        os.chown(pwfile, self.account.uid, self.account.gid)
        pwfile.chmod(0o600)
        done = subprocess.run(
            [
                str(self.bindir / "initdb"),
                *("-D", str(self.data), "-U", self.user, "--pwfile", str(pwfile)),
                *("--auth=scram-sha-256", "--encoding=UTF8", "--locale=C", "--no-sync"),
            ],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=self.root,
            **self.account.popen_kwargs(),
        )
        pwfile.unlink()
        if done.returncode != 0:
            raise PostgresUnavailable(f"initdb failed ({done.returncode}):\n{done.stderr[-2000:]}")

    def _serve(self, timeout: float) -> bool:
        """Start the server; True once it accepts a login, False if it exited first."""
        settings = {
            "listen_addresses": self.host,
            "port": str(self.port),
            "unix_socket_directories": str(self.root),
            "max_connections": "200",
        }
        if not self.durable:
            settings |= {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
        command = [str(self.bindir / "postgres"), "-D", str(self.data)]
        for name, value in settings.items():
            command += ["-c", f"{name}={value}"]
        if setpriv := shutil.which("setpriv"):
            command = [setpriv, "--pdeathsig", "INT", *command]
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                command,
                cwd=self.root,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                **self.account.popen_kwargs(),
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.proc = None
                return False
            try:
                self.connect("postgres").close()
                return True
            except Exception:  # not accepting connections yet
                time.sleep(0.1)
        raise PostgresUnavailable(f"the server did not accept logins in {timeout:.0f} s")

    def connect(self, dbname: str):
        import psycopg2  # comes with dagster-postgres (the project's `postgres` extra)

        return psycopg2.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            dbname=dbname,
            connect_timeout=3,
        )

    def create_database(self, prefix: str = "dagster") -> str:
        """A new, empty database (named from ``prefix`` and a counter)."""
        self._databases += 1
        name = f"{prefix}_{self._databases}"
        con = self.connect("postgres")
        try:
            con.autocommit = True
            with con.cursor() as cur:
                cur.execute(f'CREATE DATABASE "{name}"')  # name built here, never from input
        finally:
            con.close()
        return name

    def dagster_env(self, database: str) -> dict[str, str]:
        """The variables ``deploy/dagster.postgres.yaml`` reads, for ``database``."""
        return {
            "DAGSTER_PG_HOST": self.host,
            "DAGSTER_PG_PORT": str(self.port),
            "DAGSTER_PG_USER": self.user,
            "DAGSTER_PG_PASSWORD": self.password,
            "DAGSTER_PG_DB": database,
        }

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, grace: float = 10.0) -> None:
        """Fast shutdown (SIGINT: clients are disconnected), then SIGKILL to the process group
        after ``grace`` seconds; the folder is removed either way."""
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, signal.SIGINT)
                self.proc.wait(timeout=grace)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=10)
            self.proc = None
        shutil.rmtree(self.root, ignore_errors=True)


_shared: PostgresServer | None = None
_unavailable: str | None = None


def shared_server() -> PostgresServer:
    """The session's one server, started on first use; raises :class:`PostgresUnavailable`."""
    global _shared, _unavailable
    if _unavailable is not None:
        raise PostgresUnavailable(_unavailable)
    if _shared is None:
        try:
            import psycopg2  # noqa: F401
        except ImportError:
            _unavailable = "dagster-postgres is not installed: pip install -e '.[postgres]'"
            raise PostgresUnavailable(_unavailable) from None
        try:
            _shared = PostgresServer().start()
        except PostgresUnavailable as exc:
            _unavailable = str(exc)
            raise
        atexit.register(stop_shared_server)
    return _shared


def stop_shared_server() -> None:
    global _shared
    if _shared is not None:
        _shared.stop()
        _shared = None


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """The session's PostgreSQL server. Skips when none can be started here — except under CI,
    where the test command installs PostgreSQL, so a missing server is a failure."""
    try:
        server = shared_server()
    except PostgresUnavailable as exc:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the PostgreSQL tests: {exc}")
        pytest.skip(str(exc))
    yield server
    # Every module that uses the fixture ends with the session: the first teardown stops it.
    stop_shared_server()
