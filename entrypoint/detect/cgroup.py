"""Memory and CPU limits of the process's own cgroup, v2 and v1.

How the own cgroup is found: ``/proc/self/cgroup`` names the path per controller (v1) or the unified
path (v2), ``/proc/self/mountinfo`` tells where each hierarchy is mounted and which cgroup path the
mount's root is. Inside a container without a cgroup namespace the file says ``/docker/<id>`` while the
container's own group is what is mounted at ``/sys/fs/cgroup/memory``; mapping through the mount root
gives the right directory either way. From there we walk up to the mount point and take the smallest
limit on the way (a parent's limit binds its children).

No limit is ``None``: a missing controller, an unreadable or garbled file, ``max``, ``-1`` and the v1
"unlimited" values near 2^63 (e.g. 9223372036854771712) all mean "no limit here". Nothing raises.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import NamedTuple

from entrypoint.detect.proc import CgroupMembership, Mount, read_text

# Anything at or above 2^62 bytes is a kernel's way of saying "unlimited" (v1 prints 2^63 - page size).
UNLIMITED_BYTES = 1 << 62
MB = 1024 * 1024


class Limit(NamedTuple):
    value: int  # MB for memory, CPUs (rounded up) for cpu
    source: str  # "cgroup-v2" | "cgroup-v1"
    path: str  # the file that set it (relative to the tree root), for the explain output


def _cgroup_dirs(root: Path, mount: Mount, own_path: str) -> list[Path]:
    """The own cgroup directory and its ancestors up to the mount point, innermost first."""
    mount_dir = root / mount.mount_point.lstrip("/")
    mount_root = mount.root.rstrip("/") or "/"
    if own_path == mount_root or own_path.startswith(mount_root.rstrip("/") + "/"):
        relative = own_path[len(mount_root.rstrip("/")) :].strip("/")
    elif (mount_dir / own_path.strip("/")).is_dir():
        relative = own_path.strip("/")
    else:
        # The own path is not below the mount's root (e.g. a cgroup namespace view that does not match):
        # the mounted directory is the best we know.
        relative = ""
    start = mount_dir / relative if relative else mount_dir
    if not start.is_dir():
        start = mount_dir
    dirs = [start]
    current = start
    while current != mount_dir and mount_dir in current.parents:
        current = current.parent
        dirs.append(current)
    return dirs


def _v1_mount(table: list[Mount], controller: str) -> Mount | None:
    for mount in reversed(table):
        if mount.fstype == "cgroup" and controller in mount.super_options:
            return mount
    return None


def _v2_mount(table: list[Mount]) -> Mount | None:
    for mount in reversed(table):
        if mount.fstype == "cgroup2":
            return mount
    return None


def _int_file(path: Path) -> int | None:
    text = read_text(path)
    if text is None:
        return None
    text = text.strip()
    if text.lstrip("-").isdigit():
        return int(text)
    return None


def _memory_value(path: Path) -> int | None:
    """A memory limit file in MB, or None for "no limit"/missing/garbage."""
    raw = _int_file(path)
    if raw is None or raw <= 0 or raw >= UNLIMITED_BYTES:
        return None
    return max(raw // MB, 1)


def _relative(root: Path, path: Path) -> str:
    try:
        return "/" + str(path.relative_to(root))
    except ValueError:
        return str(path)


def memory_limit(root: Path, table: list[Mount], own: CgroupMembership) -> Limit | None:
    """The smallest memory limit of the own cgroup and its ancestors, v2 and v1 together."""
    found: list[Limit] = []
    v2 = _v2_mount(table)
    if v2 is not None and own.v2 is not None:
        for directory in _cgroup_dirs(root, v2, own.v2):
            for name in ("memory.max", "memory.high"):
                value = _memory_value(directory / name)
                if value is not None:
                    found.append(Limit(value, "cgroup-v2", _relative(root, directory / name)))
    v1 = _v1_mount(table, "memory")
    if v1 is not None and "memory" in own.v1:
        for directory in _cgroup_dirs(root, v1, own.v1["memory"]):
            value = _memory_value(directory / "memory.limit_in_bytes")
            if value is not None:
                found.append(Limit(value, "cgroup-v1", _relative(root, directory / "memory.limit_in_bytes")))
    return min(found, key=lambda limit: limit.value, default=None)


def _quota_cpus(quota: int, period: int) -> int | None:
    if quota <= 0 or period <= 0:
        return None
    return max(math.ceil(quota / period), 1)


def cpu_limit(root: Path, table: list[Mount], own: CgroupMembership) -> Limit | None:
    """The smallest CPU quota (quota/period, rounded up) of the own cgroup and its ancestors."""
    found: list[Limit] = []
    v2 = _v2_mount(table)
    if v2 is not None and own.v2 is not None:
        for directory in _cgroup_dirs(root, v2, own.v2):
            fields = (read_text(directory / "cpu.max") or "").split()
            if len(fields) == 2 and fields[0].isdigit() and fields[1].isdigit():
                cpus = _quota_cpus(int(fields[0]), int(fields[1]))
                if cpus is not None:
                    found.append(Limit(cpus, "cgroup-v2", _relative(root, directory / "cpu.max")))
    v1 = _v1_mount(table, "cpu")
    if v1 is not None and "cpu" in own.v1:
        for directory in _cgroup_dirs(root, v1, own.v1["cpu"]):
            quota = _int_file(directory / "cpu.cfs_quota_us")
            period = _int_file(directory / "cpu.cfs_period_us")
            if quota is not None and period is not None:
                cpus = _quota_cpus(quota, period)
                if cpus is not None:
                    found.append(Limit(cpus, "cgroup-v1", _relative(root, directory / "cpu.cfs_quota_us")))
    return min(found, key=lambda limit: limit.value, default=None)


def own_memory_dir(root: Path, table: list[Mount], own: CgroupMembership) -> Path | None:
    """The v1 memory cgroup directory of this process (used by tests that create child groups)."""
    v1 = _v1_mount(table, "memory")
    if v1 is None or "memory" not in own.v1:
        return None
    return _cgroup_dirs(root, v1, own.v1["memory"])[0]


def own_cpu_dir(root: Path, table: list[Mount], own: CgroupMembership) -> Path | None:
    v1 = _v1_mount(table, "cpu")
    if v1 is None or "cpu" not in own.v1:
        return None
    return _cgroup_dirs(root, v1, own.v1["cpu"])[0]
