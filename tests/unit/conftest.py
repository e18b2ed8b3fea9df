"""Fake /proc and /sys trees for the detection tests (real files under tmp_path, no patching)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest

from entrypoint.detect import host


class FakeHost:
    """Builds a root directory that looks like a Linux host's /proc and /sys to the detectors."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._mounts: list[str] = []
        self._next_id = 20

    def write(self, relative: str, text: str) -> Path:
        path = self.root / relative.lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path

    def meminfo(self, total_mb: int) -> None:
        self.write("/proc/meminfo", f"MemTotal:       {total_mb * 1024} kB\nMemFree:        1000 kB\n")

    def proc_cgroup(self, text: str) -> None:
        self.write("/proc/self/cgroup", text)

    def mount(self, root: str, mount_point: str, fstype: str, super_options: str) -> None:
        self._next_id += 1
        self._mounts.append(
            f"{self._next_id} 1 0:{self._next_id} {root} {mount_point} rw,nosuid,relatime shared:9 "
            f"- {fstype} {fstype} {super_options}"
        )
        (self.root / mount_point.lstrip("/")).mkdir(parents=True, exist_ok=True)
        self.write("/proc/self/mountinfo", "\n".join(self._mounts) + "\n")

    # --- cgroup v2 -------------------------------------------------------------------------------------
    def v2(self, own: str, *, mount_root: str = "/") -> Path:
        """A unified hierarchy at /sys/fs/cgroup; the process is in ``own``. Returns the own directory."""
        self.proc_cgroup(f"0::{own}\n")
        self.mount(mount_root, "/sys/fs/cgroup", "cgroup2", "rw,nsdelegate")
        base = self.root / "sys/fs/cgroup"
        rel = own[len(mount_root.rstrip("/")) :] if own.startswith(mount_root) else own
        directory = base / rel.strip("/") if rel.strip("/") else base
        directory.mkdir(parents=True, exist_ok=True)
        return directory

    # --- cgroup v1 -------------------------------------------------------------------------------------
    def v1(self, own: Mapping[str, str], *, mount_roots: Mapping[str, str] | None = None) -> dict[str, Path]:
        """v1 hierarchies for each controller in ``own`` (controller -> own path). Returns own dirs."""
        lines = []
        dirs: dict[str, Path] = {}
        for index, (controller, path) in enumerate(own.items(), start=2):
            lines.append(f"{index}:{controller}:{path}")
            mount_root = (mount_roots or {}).get(controller, "/")
            mount_name = "cpu,cpuacct" if controller == "cpu" else controller
            self.mount(mount_root, f"/sys/fs/cgroup/{mount_name}", "cgroup", f"rw,{mount_name}")
            base = self.root / "sys/fs/cgroup" / mount_name
            rel = path[len(mount_root.rstrip("/")) :] if path.startswith(mount_root) else path
            directory = base / rel.strip("/") if rel.strip("/") else base
            directory.mkdir(parents=True, exist_ok=True)
            dirs[controller] = directory
        lines.append("0::/")
        self.proc_cgroup("\n".join(lines) + "\n")
        return dirs

    def detect(self, *, affinity: int | None = 8, nproc: int | None = 8) -> host.HostFacts:
        return host.detect(self.root, affinity=lambda: affinity, nproc=lambda: nproc)


@pytest.fixture
def fake_host(tmp_path: Path) -> FakeHost:
    return FakeHost(tmp_path / "root")
