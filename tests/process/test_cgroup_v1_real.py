"""A real process in a real cgroup v1 memory and cpu group reports that limit.

The test makes child groups below this process's own v1 memory and cpu groups, writes a 768 MiB memory
limit and a 150000/100000 CFS quota, starts a shell that moves itself into both groups and then execs
`aza-pg tune --format line`, and reads the summary line. The groups are removed afterwards, also when
the test fails. Without a writable v1 controller the test skips with the reason, except under CI=true,
where it fails (CI runs on hosts that have one).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.process

AZA_PG = Path(sys.executable).with_name("aza-pg")
MIB = 1024 * 1024


def _own_v1_dir(controller: str) -> Path | None:
    """This process's group directory in the v1 hierarchy that carries ``controller``."""
    own = None
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if controller in controllers.split(","):
            own = path
    if own is None:
        return None
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        sep = fields.index("-")
        if fields[sep + 1] == "cgroup" and controller in fields[sep + 3].split(","):
            root, mount_point = fields[3], Path(fields[4])
            relative = own[len(root) :] if own.startswith(root) else own
            candidate = mount_point / relative.strip("/")
            return candidate if candidate.is_dir() else mount_point
    return None


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"cgroup v1 test cannot run under CI: {reason}")
    pytest.skip(reason)


def _remove(path: Path) -> None:
    for _ in range(50):
        try:
            path.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.1)  # the exited process may take a moment to leave the group
    path.rmdir()


@contextlib.contextmanager
def _child_group(controller: str) -> Iterator[Path]:
    parent = _own_v1_dir(controller)
    if parent is None:
        _unavailable(f"no cgroup v1 {controller} controller is mounted")
        raise AssertionError("unreachable")
    group = parent / f"aza-pg-test-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        group.mkdir()
    except OSError as exc:
        _unavailable(f"cannot create a {controller} cgroup under {parent}: {exc.strerror}")
    try:
        yield group
    finally:
        for child in sorted(group.glob("*/"), reverse=True):
            if child.is_dir():
                _remove(child)
        _remove(group)


def _tune_inside(memory_group: Path, cpu_group: Path) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POSTGRES_", "AZA_PG_"))}
    script = 'echo $$ > "$1/cgroup.procs" && echo $$ > "$2/cgroup.procs" && exec "$3" tune --format line'
    result = subprocess.run(
        ["sh", "-c", script, "sh", str(memory_group), str(cpu_group), str(AZA_PG)],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()[0]


def test_memory_limit_and_cfs_quota_of_the_own_group() -> None:
    with _child_group("memory") as memory_group, _child_group("cpu") as cpu_group:
        (memory_group / "memory.limit_in_bytes").write_text(str(768 * MIB))
        (cpu_group / "cpu.cfs_period_us").write_text("100000")
        (cpu_group / "cpu.cfs_quota_us").write_text("150000")
        line = _tune_inside(memory_group, cpu_group)
    assert "RAM: 768MB (cgroup-v1)" in line, line
    assert "CPU: 2 cores (cgroup-v1)" in line, line
    assert "shared_buffers=192MB" in line, line


def test_a_limited_parent_binds_an_unlimited_child() -> None:
    with _child_group("memory") as parent, _child_group("cpu") as cpu_group:
        (parent / "memory.limit_in_bytes").write_text(str(1024 * MIB))
        child = parent / "inner"
        child.mkdir()
        assert int((child / "memory.limit_in_bytes").read_text()) >= 1 << 62
        line = _tune_inside(child, cpu_group)
    assert "RAM: 1024MB (cgroup-v1)" in line, line
