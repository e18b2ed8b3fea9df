"""HostFacts: what auto-config needs to know about the machine, each fact with where it came from.

``detect(root)`` is the only entry point. It reads files under ``root`` (``/`` in production, a fake
tree in tests) and asks the kernel for the CPU affinity mask through an injectable callable, so unit
tests pass plain values instead of patching anything.

Memory: the smallest cgroup limit (v2 ``memory.max``/``memory.high`` or v1 ``memory.limit_in_bytes``,
walking up the own cgroup's ancestors), never more than ``MemTotal``; without any limit ``MemTotal``
with a warning that it may be the host's RAM. CPUs: the cgroup quota, the affinity mask, ``nproc``; the
smallest wins; clamped to 1..128.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from entrypoint.detect import cgroup, proc

MAX_CPUS = 128


@dataclass(frozen=True)
class HostFacts:
    memory_mb: int | None  # None only when nothing at all could be read (then a value must be given)
    memory_source: str  # "cgroup-v2" | "cgroup-v1" | "meminfo" | "unknown"
    mem_total_mb: int | None
    cpus: int
    cpu_source: str  # "cgroup-v2" | "cgroup-v1" | "affinity" | "nproc"
    shm_mb: int | None = None
    data_volume_mb: int | None = None  # size of the file system holding PGDATA, when known
    memory_detail: str = ""  # which file set the limit, for the explain output
    cpu_detail: str = ""
    memory_warnings: tuple[str, ...] = field(default=())  # shown only when memory is not set by hand
    cpu_warnings: tuple[str, ...] = field(default=())
    warnings: tuple[str, ...] = field(default=())  # everything else (e.g. /dev/shm)


def _affinity() -> int | None:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return None


def _nproc() -> int | None:
    return os.cpu_count()


def _volume_mb(root: Path, data_dir: str | None) -> int | None:
    if not data_dir:
        return None
    path = root / data_dir.lstrip("/")
    for candidate in (path, *path.parents):
        try:
            stat = os.statvfs(candidate)
        except OSError:
            continue
        return stat.f_frsize * stat.f_blocks // (1024 * 1024) or None
    return None


def detect(
    root: Path = Path("/"),
    *,
    affinity: Callable[[], int | None] = _affinity,
    nproc: Callable[[], int | None] = _nproc,
    data_dir: str | None = None,
) -> HostFacts:
    """Read the host under ``root``. Never raises for missing or garbled files."""
    memory_warnings: list[str] = []
    cpu_warnings: list[str] = []
    table = proc.mounts(root)
    own = proc.own_cgroups(root)
    total = proc.mem_total_mb(root)

    limit = cgroup.memory_limit(root, table, own)
    memory: int | None
    if limit is not None and (total is None or limit.value <= total):
        memory, memory_source, memory_detail = limit.value, limit.source, limit.path
    elif limit is not None and total is not None:
        memory, memory_source, memory_detail = total, "meminfo", "/proc/meminfo MemTotal"
        memory_warnings.append(
            f"the cgroup memory limit ({limit.value}MB, {limit.source}) is above MemTotal ({total}MB); "
            "using MemTotal"
        )
    elif total is not None:
        memory, memory_source, memory_detail = total, "meminfo", "/proc/meminfo MemTotal"
        memory_warnings.append(
            f"no cgroup memory limit found; using MemTotal ({total}MB), which may be the host's RAM. "
            "Set mem_limit in compose (docker run -m) or POSTGRES_MEMORY=<MB>"
        )
    else:
        memory, memory_source, memory_detail = None, "unknown", ""
        memory_warnings.append("could not read the memory limit or /proc/meminfo; set POSTGRES_MEMORY=<MB>")

    quota = cgroup.cpu_limit(root, table, own)
    mask = _safe(affinity)
    count = _safe(nproc)
    candidates: list[tuple[int, str, str]] = []
    if quota is not None:
        candidates.append((quota.value, quota.source, quota.path))
    if mask is not None:
        label = "affinity" if count is None or mask < count else "nproc"
        candidates.append((mask, label, "sched_getaffinity"))
    if count is not None:
        candidates.append((count, "nproc", "os.cpu_count"))
    if candidates:
        cpus, cpu_source, cpu_detail = min(candidates, key=lambda c: c[0])
    else:
        cpus, cpu_source, cpu_detail = 1, "nproc", "nothing readable; assuming 1"
        cpu_warnings.append("could not determine the CPU count; assuming 1 (set POSTGRES_CPUS)")
    cpus = min(max(cpus, 1), MAX_CPUS)

    return HostFacts(
        memory_mb=memory,
        memory_source=memory_source,
        mem_total_mb=total,
        cpus=cpus,
        cpu_source=cpu_source,
        shm_mb=proc.shm_mb(root, table),
        data_volume_mb=_volume_mb(root, data_dir),
        memory_detail=memory_detail,
        cpu_detail=cpu_detail,
        memory_warnings=tuple(memory_warnings),
        cpu_warnings=tuple(cpu_warnings),
    )


def _safe(reader: Callable[[], int | None]) -> int | None:
    try:
        value = reader()
    except (OSError, ValueError, AttributeError):
        return None
    return value if value is not None and value > 0 else None


def installed_pg_major(root: Path = Path("/")) -> int | None:
    """The newest PostgreSQL major under ``/usr/lib/postgresql/N/bin/postgres``, if any."""
    base = root / "usr/lib/postgresql"
    try:
        names = [entry.name for entry in base.iterdir()]
    except OSError:
        return None
    majors = [int(name) for name in names if name.isdigit() and (base / name / "bin/postgres").exists()]
    return max(majors, default=None)
