"""Start real PostgreSQL and the real ``aza-pg pgbouncer`` entrypoint on 127.0.0.1 for process tests.

Everything lives under one base directory in /tmp (mode 0755, so the ``postgres`` user the entrypoint
drops to can reach it). Every wait is bounded; ``stop`` methods are safe to call twice.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from tests.process.pgharness import BINDIR, Instance

REPO = Path(__file__).resolve().parents[2]
ENTRYPOINT = str(Path(sys.executable).with_name("aza-pg"))
PSQL = str(BINDIR / "psql")
SUPERUSER_PASSWORD = "super:pa'ss\"word"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
        time.sleep(0.05)
    return False


@contextlib.contextmanager
def base_dir(prefix: str = "aza-pgb-") -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


class Postgres:
    """PostgreSQL started by the real ``aza-pg postgres`` entrypoint (``tests/process/pgharness.py``).

    With ``PGBOUNCER_AUTH_PASS`` set, that entrypoint creates ``pgbouncer_auth`` and installs
    ``pgbouncer.get_auth`` (our ``entrypoint/sql/pgbouncer_auth.py``) in postgres and template1 at first boot.
    """

    def __init__(
        self, auth_password: str, password: str = SUPERUSER_PASSWORD,
        extra_env: Mapping[str, str] | None = None,
    ) -> None:
        self.password = password
        env = {"POSTGRES_PASSWORD": password, "PGBOUNCER_AUTH_PASS": auth_password, **(extra_env or {})}
        self.instance = Instance.create(env=env)

    @property
    def port(self) -> int:
        return int(self.instance.port)

    def start(self) -> None:
        self.instance.start()

    def stop(self) -> None:
        self.instance.cleanup()

    def connect(self, dbname: str = "postgres") -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(
            host="127.0.0.1", port=self.port, user="postgres", password=self.password, dbname=dbname,
            autocommit=True, connect_timeout=10,
        )


@contextlib.contextmanager
def postgres(auth_password: str, extra_env: Mapping[str, str] | None = None) -> Iterator[Postgres]:
    """A started server, always cleaned up (process group killed, directories removed)."""
    pg = Postgres(auth_password, extra_env=extra_env)
    try:
        pg.start()
        yield pg
    finally:
        pg.stop()


@dataclass
class Bouncer:
    """``aza-pg pgbouncer`` running (the process is pgbouncer itself after exec)."""

    base: Path
    server_port: int
    auth_password: str
    extra_env: Mapping[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def run_dir(self) -> Path:
        return self.base / "bouncer-run"

    @property
    def pgpass(self) -> Path:
        return self.base / ".pgpass"

    @property
    def log_path(self) -> Path:
        return self.base / "bouncer.log"

    def env(self) -> dict[str, str]:
        return {
            "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
            "POSTGRES_HOST": "127.0.0.1",
            "POSTGRES_PORT": str(self.server_port),
            "PGBOUNCER_AUTH_PASS": self.auth_password,
            "PGBOUNCER_LISTEN_ADDR": "127.0.0.1",
            "PGBOUNCER_PORT": str(self.port),
            "PGBOUNCER_RUN_DIR": str(self.run_dir),
            "PGBOUNCER_PGPASS_PATH": str(self.pgpass),
            "PGBOUNCER_CONFIG_PATH": str(self.base / "no-user-config.ini"),
            **self.extra_env,
        }

    def start(self, timeout: float = 20) -> None:
        with self.log_path.open("ab") as out:
            self.proc = subprocess.Popen(
                [ENTRYPOINT, "pgbouncer"], env=self.env(), stdout=out, stderr=subprocess.STDOUT,
                cwd=self.base,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if "process up" in self.log() and wait_for_port(self.port, 0.2):
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        raise AssertionError(f"PgBouncer did not come up:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def reload(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGHUP)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGINT)  # PgBouncer: SIGINT = safe shutdown, SIGTERM = immediate
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def connect(
        self, user: str, password: str, dbname: str = "postgres", **kw: object
    ) -> psycopg.Connection[tuple[object, ...]]:
        params: dict[str, object] = {"connect_timeout": 10, **kw}
        return psycopg.connect(
            host="127.0.0.1", port=self.port, user=user, password=password, dbname=dbname, autocommit=True,
            **params,  # type: ignore[arg-type]
        )


def run_entrypoint(env: Mapping[str, str], timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """Run ``aza-pg pgbouncer`` to completion (for inputs that must fail before exec)."""
    return subprocess.run(
        [ENTRYPOINT, "pgbouncer"], env=dict(env), capture_output=True, text=True, timeout=timeout,
        check=False,
    )
