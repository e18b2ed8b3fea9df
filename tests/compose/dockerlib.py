"""A small harness over the `docker` and `docker compose` command lines for the compose tests.

It runs on any Docker engine with the Compose v2 plugin: images are built once per session by
scripts/docker/build-images.sh (which provides the Debian base image itself when no registry is
reachable and skips a build when the image's content-hash label matches its inputs). Every stack a test
starts gets its own compose project name, its own container-name prefix, free host ports on 127.0.0.1
and a test-owned external network instead of the user's `monitoring`; `Stack.down()` removes its
containers, networks and volumes and is called by the fixtures even when a test fails. Every command
has a timeout.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
STACKS = REPO / "stacks"
IMAGE_TAG = os.environ.get("AZA_PG_TAG", "17")
IMAGE_PREFIX = os.environ.get("AZA_PG_IMAGE_PREFIX", "aza-pg/")
TARGETS = ("postgres", "pgbouncer", "postgres-exporter", "pgbouncer-exporter", "prometheus")
# What each stack's containers are called (without a prefix), by compose service.
CONTAINERS = {
    "primary": {
        "postgres": "postgres-primary",
        "pgbouncer": "pgbouncer-primary",
        "postgres_exporter": "postgres-exporter-primary",
        "pgbouncer_exporter": "pgbouncer-exporter-primary",
    },
    "replica": {"postgres": "postgres-replica", "postgres_exporter": "postgres-exporter-replica"},
    "single": {"postgres": "postgres-single", "postgres_exporter": "postgres-exporter-single"},
}
# .env variables holding host ports, by stack.
PORT_VARS = {
    "primary": (
        "POSTGRES_HOST_PORT",
        "PGBOUNCER_HOST_PORT",
        "POSTGRES_EXPORTER_HOST_PORT",
        "PGBOUNCER_EXPORTER_HOST_PORT",
    ),
    "replica": ("POSTGRES_HOST_PORT", "POSTGRES_EXPORTER_HOST_PORT"),
    "single": ("POSTGRES_HOST_PORT", "POSTGRES_EXPORTER_HOST_PORT"),
}
# A password using every character the deployment guide calls out, and a space.
HARD_PASSWORD = "p:a\\ss w'o\"rd$x#y@z&1 end"


class CommandError(AssertionError):
    """A command exited non-zero; the message carries its output."""


def run(
    args: Sequence[str],
    *,
    timeout: float = 120,
    check: bool = True,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    input_text: str | None = None,
) -> subprocess.CompletedProcess[str]:
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    proc = subprocess.run(
        list(args),
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
        cwd=cwd,
        input=input_text,
        check=False,
    )
    if check and proc.returncode != 0:
        raise CommandError(
            f"{' '.join(args)!r} exited {proc.returncode}\n--- stdout\n{proc.stdout[-4000:]}\n"
            f"--- stderr\n{proc.stderr[-4000:]}"
        )
    return proc


def docker(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
    return run(["docker", *args], timeout=timeout, check=check)


def docker_available() -> str | None:
    """None when docker and the compose v2 plugin work, else the reason."""
    if shutil.which("docker") is None:
        return "the docker CLI is not installed"
    if run(["docker", "info", "--format", "{{.ServerVersion}}"], check=False, timeout=30).returncode != 0:
        return "the Docker daemon is not reachable"
    if run(["docker", "compose", "version"], check=False, timeout=30).returncode != 0:
        return "the Docker Compose v2 plugin is missing (scripts/install-deps.sh installs it)"
    return None


def image_name(target: str) -> str:
    return f"{IMAGE_PREFIX}{target}:{IMAGE_TAG}"


_built: set[str] = set()


def ensure_images(targets: Sequence[str] = TARGETS) -> None:
    """Build (or confirm up to date) the images once per session."""
    wanted = [t for t in targets if t not in _built]
    if not wanted:
        return
    run(["bash", str(REPO / "scripts/docker/build-images.sh"), *wanted], timeout=3600)
    _built.update(wanted)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def unique(prefix: str) -> str:
    return f"{prefix}{secrets.token_hex(3)}"


def env_quote(value: str) -> str:
    """A value for a Compose .env file: double quotes, with \\ \" and $ escaped (see .env.example)."""
    return '"' + re.sub(r'([\\"$])', r"\\\1", value) + '"'


def wait_until(what: str, predicate: object, *, timeout: float, interval: float = 1.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if callable(predicate) and predicate():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def name_in_use(name: str) -> bool:
    return bool(docker("ps", "-aq", "--filter", f"name=^/{name}$").stdout.strip())


@dataclass
class Stack:
    """One copy of stacks/<kind> in a work directory, run under its own project name."""

    kind: str
    workdir: Path
    project: str
    prefix: str
    monitoring_network: str
    ports: dict[str, int] = field(default_factory=dict)
    started: bool = False

    @classmethod
    def create(cls, kind: str, workdir: Path, monitoring_network: str, *, prefix: str | None = None) -> Stack:
        tree = workdir / "aza-pg"
        if not (tree / "Dockerfile").exists():
            tree.mkdir(parents=True, exist_ok=True)
            # The stacks' build context is ../..: link what the Dockerfile reads, copy the stacks.
            for name in ("Dockerfile", ".dockerignore", "pyproject.toml", "image", "entrypoint"):
                (tree / name).symlink_to(REPO / name)
        shutil.copytree(STACKS / kind, tree / "stacks" / kind, ignore=shutil.ignore_patterns(".env"))
        token = secrets.token_hex(3)
        return cls(
            kind=kind,
            workdir=workdir,
            project=f"azatest-{kind}-{token}",
            prefix=f"t{token}-" if prefix is None else prefix,
            monitoring_network=monitoring_network,
        )

    @property
    def dir(self) -> Path:
        return self.workdir / "aza-pg" / "stacks" / self.kind

    def container(self, service: str = "postgres") -> str:
        return self.prefix + CONTAINERS[self.kind][service]

    # --- .env --------------------------------------------------------------------------------------------
    def write_env(self, values: Mapping[str, str], *, raw: Mapping[str, str] | None = None) -> None:
        """Write .env from .env.example, as a user would: set `values` (quoted with env_quote), `raw`
        (written as given), free host ports, the test's name prefix and monitoring network."""
        lines = (self.dir / ".env.example").read_text(encoding="utf-8").splitlines()
        for var in PORT_VARS[self.kind]:
            self.ports.setdefault(var, free_port())
        wanted: dict[str, str] = {var: str(port) for var, port in self.ports.items()}
        wanted["AZA_PG_MONITORING_NETWORK"] = self.monitoring_network
        wanted["AZA_PG_NAME_PREFIX"] = self.prefix
        # The images this session built (AZA_PG_TAG / AZA_PG_IMAGE_PREFIX may differ from the defaults).
        wanted["AZA_PG_IMAGE"] = image_name("postgres")
        wanted["AZA_PG_PGBOUNCER_IMAGE"] = image_name("pgbouncer")
        wanted["AZA_PG_POSTGRES_EXPORTER_IMAGE"] = image_name("postgres-exporter")
        wanted["AZA_PG_PGBOUNCER_EXPORTER_IMAGE"] = image_name("pgbouncer-exporter")
        wanted.update({k: env_quote(v) for k, v in values.items()})
        wanted.update(raw or {})
        out, seen = [], set()
        for line in lines:
            name = line.split("=", 1)[0]
            if "=" in line and not line.startswith("#") and name in wanted:
                out.append(f"{name}={wanted[name]}")
                seen.add(name)
            else:
                out.append(line)
        out.extend(f"{k}={v}" for k, v in wanted.items() if k not in seen)
        path = self.dir / ".env"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write("\n".join(out) + "\n")

    # --- compose -----------------------------------------------------------------------------------------
    def compose(
        self, *args: str, timeout: float = 300, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        return run(
            ["docker", "compose", "-p", self.project, *args], cwd=self.dir, timeout=timeout, check=check
        )

    def up(self, *services: str, timeout: float = 420, wait: bool = True) -> subprocess.CompletedProcess[str]:
        """`docker compose up -d` (all services, or the ones named), waiting until they are healthy."""
        self.started = True
        args = ["up", "-d", "--no-build"]
        if wait:
            args += ["--wait", "--wait-timeout", str(int(timeout))]
        args += services
        proc = self.compose(*args, timeout=timeout + 60, check=False)
        if proc.returncode != 0 and wait:
            raise CommandError(
                f"{self.kind} stack did not become healthy:\n{proc.stderr[-3000:]}\n{self.diagnose()}"
            )
        return proc

    def down(self, *, volumes: bool = True) -> None:
        args = ["down", "--remove-orphans", "-t", "30"] + (["-v"] if volumes else [])
        self.compose(*args, timeout=240, check=False)

    def diagnose(self) -> str:
        ps = self.compose("ps", "-a", timeout=60, check=False).stdout
        logs = self.compose("logs", "--no-color", "--tail", "40", timeout=60, check=False).stdout
        return f"--- compose ps\n{ps}\n--- compose logs (tail)\n{logs}"

    # --- containers --------------------------------------------------------------------------------------
    def logs(self, service: str = "postgres") -> str:
        proc = docker("logs", self.container(service), timeout=60, check=False)
        return proc.stdout + proc.stderr

    def exec(
        self, service: str, *cmd: str, timeout: float = 60, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        return docker("exec", self.container(service), *cmd, timeout=timeout, check=check)

    def psql(self, sql: str, *, service: str = "postgres", db: str = "postgres", timeout: float = 60) -> str:
        return self.exec(
            service,
            "psql",
            "-U",
            "postgres",
            "-d",
            db,
            "-XAtq",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            sql,
            timeout=timeout,
        ).stdout.strip()

    def inspect(self, service: str = "postgres") -> dict[str, object]:
        data = json.loads(docker("inspect", self.container(service), timeout=30).stdout)
        assert isinstance(data, list)
        first = data[0]
        assert isinstance(first, dict)
        return first

    def health(self, service: str = "postgres") -> str:
        return docker(
            "inspect",
            "-f",
            "{{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}",
            self.container(service),
            timeout=30,
            check=False,
        ).stdout.strip()

    def wait_healthy(self, service: str = "postgres", *, timeout: float = 300) -> None:
        try:
            wait_until(
                f"{self.container(service)} healthy",
                lambda: self.health(service) == "healthy",
                timeout=timeout,
            )
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.diagnose()}") from None
