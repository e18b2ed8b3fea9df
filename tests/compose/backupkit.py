"""Helpers for the backup and TLS compose tests: docker / docker compose with bounded timeouts, free
ports, psql through `docker exec` with values passed as psql variables, and bounded waits."""

from __future__ import annotations

import os
import shlex
import socket
import subprocess
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TOOLS = REPO / "scripts/tools"
IMAGE = os.environ.get("AZA_PG_POSTGRES_IMAGE", "aza-pg/postgres:17")
# Every character a password should survive: quotes, backslash, shell and URL metacharacters, spaces,
# non-ASCII. The tests hand it to compose, the entrypoint, libpq and the scripts without escaping it.
NASTY_PASSWORD = "p@ss:w/o#r'd&\"$HOME`x`\\ %;=?+,é!{}"


def run(args: list[str], *, timeout: float = 120, check: bool = True, stdin: str | bytes | None = None,
        env: Mapping[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    text_input = stdin.decode() if isinstance(stdin, bytes) else stdin
    result = subprocess.run(args, capture_output=True, text=True, timeout=timeout, input=text_input,
                            env=None if env is None else {**os.environ, **env}, cwd=cwd, check=False)
    if check and result.returncode != 0:
        raise AssertionError(f"{shlex.join(args[:4])} ... exited {result.returncode}:\n"
                             f"{result.stdout[-2000:]}\n{result.stderr[-3000:]}")
    return result


def docker(*args: str, timeout: float = 120, check: bool = True, stdin: str | None = None,
           env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return run(["docker", *args], timeout=timeout, check=check, stdin=stdin, env=env)


def require_image() -> None:
    if docker("image", "inspect", IMAGE, check=False).returncode != 0:
        pytest.fail(f"image {IMAGE} is missing: build it first (scripts/docker/build-images.sh) "
                    "or point AZA_PG_POSTGRES_IMAGE at it")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def psql(container: str, sql: str, *, db: str = "postgres", check: bool = True, timeout: float = 60,
         **variables: str) -> str:
    """SQL on the container's socket as the superuser (peer auth for the OS user postgres).
    Values reach the SQL only as psql variables (:'name' literal, :"name" identifier)."""
    cmd = ["exec", "-i", "-u", "postgres", container, "psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
           "-U", "postgres", "-d", db]
    for key, value in variables.items():
        cmd += ["-v", f"{key}={value}"]
    return docker(*cmd, stdin=sql, timeout=timeout, check=check).stdout.strip()


def logs(container: str) -> str:
    result = docker("logs", container, check=False)
    return result.stdout + result.stderr


def wait_for(what: str, probe: Callable[[], bool], *, timeout: float, interval: float = 1.0,
             diagnostics: Callable[[], str] = lambda: "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if probe():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}\n{diagnostics()[-4000:]}")


def wait_accepting_writes(container: str, *, timeout: float = 240) -> None:
    """The final server answers and is not in recovery, on two polls with the same start time."""
    last = {"v": ""}

    def probe() -> bool:
        state = docker("inspect", "-f", "{{.State.Running}}", container, check=False).stdout.strip()
        if state != "true":
            raise AssertionError(f"container {container} stopped:\n{logs(container)[-4000:]}")
        out = psql(container, "SELECT pg_postmaster_start_time(), pg_is_in_recovery()", check=False,
                   timeout=30)
        if not out.endswith("|f"):
            return False
        same = out == last["v"]
        last["v"] = out
        return same

    wait_for(f"{container} to accept writes", probe, timeout=timeout, diagnostics=lambda: logs(container))
