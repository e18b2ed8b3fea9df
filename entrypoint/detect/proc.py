"""Readers of /proc: MemTotal, the own cgroup membership, the mount table.

Every function takes the root of the tree (``/`` in production, a fake tree in tests) and returns
None or an empty result for a missing, unreadable or garbled file. Nothing here raises on bad input:
a host we do not understand is a host without limits, never a crash.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple


def read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except (OSError, ValueError):
        return None


def mem_total_mb(root: Path) -> int | None:
    """``MemTotal`` of /proc/meminfo in MB (rounded down)."""
    text = read_text(root / "proc/meminfo")
    if text is None:
        return None
    for line in text.splitlines():
        if line.startswith("MemTotal:"):
            parts = line.split()
            if len(parts) >= 2 and parts[1].isdigit():
                kb = int(parts[1])
                unit = parts[2].lower() if len(parts) > 2 else "kb"
                if unit != "kb":
                    return None
                return kb // 1024 if kb >= 1024 else None
            return None
    return None


class CgroupMembership(NamedTuple):
    """Parsed /proc/self/cgroup: the v1 path per controller and the v2 (unified) path."""

    v1: dict[str, str]
    v2: str | None


def own_cgroups(root: Path) -> CgroupMembership:
    """``hierarchy-id:controller-list:path`` lines; ``0::/path`` is the cgroup v2 line."""
    v1: dict[str, str] = {}
    v2: str | None = None
    text = read_text(root / "proc/self/cgroup") or ""
    for line in text.splitlines():
        parts = line.strip().split(":", 2)
        if len(parts) != 3 or not parts[2].startswith("/"):
            continue
        hier, controllers, path = parts
        if hier == "0" and controllers == "":
            v2 = path
            continue
        for controller in controllers.split(","):
            if controller:
                v1[controller] = path
    return CgroupMembership(v1=v1, v2=v2)


class Mount(NamedTuple):
    """One line of /proc/self/mountinfo (only what detection needs)."""

    root: str  # the path inside the mounted filesystem (for cgroups: the cgroup path of the mount)
    mount_point: str
    fstype: str
    super_options: tuple[str, ...]


def _unescape(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as \040 \011 \012 \134.
    out = field
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        out = out.replace(code, char)
    return out


def mounts(root: Path) -> list[Mount]:
    """The mount table; malformed lines are skipped."""
    text = read_text(root / "proc/self/mountinfo") or ""
    result: list[Mount] = []
    for line in text.splitlines():
        fields = line.split()
        try:
            sep = fields.index("-", 6)
        except ValueError:
            continue
        if len(fields) < sep + 3 or len(fields) < 5:
            continue
        result.append(
            Mount(
                root=_unescape(fields[3]),
                mount_point=_unescape(fields[4]),
                fstype=fields[sep + 1],
                super_options=tuple(fields[sep + 3].split(",")) if len(fields) > sep + 3 else (),
            )
        )
    return result


def _size_option_mb(options: tuple[str, ...]) -> int | None:
    for option in options:
        if not option.startswith("size="):
            continue
        value = option[5:].lower()
        multipliers = {"k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}
        factor = multipliers.get(value[-1:], 1)
        digits = value[:-1] if value[-1:] in multipliers else value
        if digits.isdigit():
            return int(digits) * factor // 1024**2
    return None


def shm_mb(root: Path, table: list[Mount]) -> int | None:
    """Size of /dev/shm in MB: the tmpfs ``size=`` mount option, else statvfs, else None."""
    for mount in reversed(table):  # the last mount on a path is the visible one
        if mount.mount_point == "/dev/shm":  # noqa: S108 - reading the mount table, not creating a file
            size = _size_option_mb(mount.super_options)
            if size is not None:
                return size
            break
    import os

    try:
        stat = os.statvfs(root / "dev/shm")
    except OSError:
        return None
    return stat.f_frsize * stat.f_blocks // 1024**2 or None
