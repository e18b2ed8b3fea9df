"""/proc readers and the other host facts: MemTotal, mountinfo, /dev/shm, the data volume, the PG major."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from entrypoint.detect import host, proc

if TYPE_CHECKING:
    from conftest import FakeHost

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("text", "mb"),
    [
        ("MemTotal:       24683568 kB\nMemFree: 1 kB\n", 24105),
        ("MemFree: 1 kB\nMemTotal: 2097152 kB\n", 2048),
        ("MemTotal: 512 kB\n", None),
        ("MemTotal: 2048 MB\n", None),
        ("MemTotal: -5 kB\n", None),
        ("nothing\n", None),
        ("", None),
    ],
)
def test_mem_total(fake_host: FakeHost, text: str, mb: int | None) -> None:
    fake_host.write("/proc/meminfo", text)
    assert proc.mem_total_mb(fake_host.root) == mb


def test_mountinfo_fields_and_escapes(fake_host: FakeHost) -> None:
    fake_host.write(
        "/proc/self/mountinfo",
        "35 31 0:32 /docker/abc /sys/fs/cgroup/memory rw,relatime shared:15 - cgroup cgroup rw,memory\n"
        "36 31 0:33 / /mnt/with\\040space rw - tmpfs tmpfs rw,size=1024k\n"
        "37 31 0:34 / /no/optional/fields rw - cgroup2 cgroup2 rw\n"
        "garbage line\n",
    )
    mounts = proc.mounts(fake_host.root)
    assert [(m.root, m.mount_point, m.fstype) for m in mounts] == [
        ("/docker/abc", "/sys/fs/cgroup/memory", "cgroup"),
        ("/", "/mnt/with space", "tmpfs"),
        ("/", "/no/optional/fields", "cgroup2"),
    ]
    assert mounts[0].super_options == ("rw", "memory")


def test_own_cgroups(fake_host: FakeHost) -> None:
    fake_host.proc_cgroup("12:cpu,cpuacct:/docker/x\n4:memory:/docker/x\n1:name=systemd:/init\n0::/\nbad\n")
    own = proc.own_cgroups(fake_host.root)
    assert own.v1 == {
        "cpu": "/docker/x",
        "cpuacct": "/docker/x",
        "memory": "/docker/x",
        "name=systemd": "/init",
    }
    assert own.v2 == "/"


@pytest.mark.parametrize(("option", "mb"), [("size=65536k", 64), ("size=1g", 1024), ("size=268435456", 256)])
def test_dev_shm_size_from_the_mount_option(fake_host: FakeHost, option: str, mb: int) -> None:
    fake_host.meminfo(4096)
    fake_host.mount("/", "/dev/shm", "tmpfs", f"rw,nosuid,{option}")
    assert fake_host.detect().shm_mb == mb


def test_dev_shm_without_a_size_option_uses_statvfs(fake_host: FakeHost) -> None:
    fake_host.meminfo(4096)
    fake_host.mount("/", "/dev/shm", "tmpfs", "rw,nosuid")
    assert (fake_host.detect().shm_mb or 0) > 0  # the size of the file system under tmp_path


def test_data_volume_is_the_nearest_existing_directory(tmp_path: Path) -> None:
    (tmp_path / "var/lib/postgresql").mkdir(parents=True)
    facts = host.detect(tmp_path, affinity=lambda: 1, nproc=lambda: 1, data_dir="/var/lib/postgresql/data")
    assert facts.data_volume_mb is not None
    assert facts.data_volume_mb > 0


def test_installed_pg_major_is_the_newest_with_a_server(tmp_path: Path) -> None:
    for major, has_server in ((15, True), (17, True), (18, False)):
        bindir = tmp_path / f"usr/lib/postgresql/{major}/bin"
        bindir.mkdir(parents=True)
        if has_server:
            (bindir / "postgres").write_text("")
    (tmp_path / "usr/lib/postgresql/README").write_text("")
    assert host.installed_pg_major(tmp_path) == 17
    assert host.installed_pg_major(tmp_path / "nowhere") is None
