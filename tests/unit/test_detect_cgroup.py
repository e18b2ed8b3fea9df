"""Memory and CPU limits from fake cgroup v1 and v2 trees, each with the right source label."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import FakeHost

pytestmark = pytest.mark.unit

V1_UNLIMITED = "9223372036854771712"
GIB = 1024**3
MIB = 1024**2


def test_v2_limit_at_a_nested_own_path(fake_host: FakeHost) -> None:
    fake_host.meminfo(24 * 1024)
    own = fake_host.v2("/system.slice/docker-0123abcd.scope")
    (own / "memory.max").write_text(f"{GIB}\n")
    (own.parent / "memory.max").write_text("max\n")
    (fake_host.root / "sys/fs/cgroup/memory.max").write_text("max\n")
    facts = fake_host.detect()
    assert (facts.memory_mb, facts.memory_source) == (1024, "cgroup-v2")
    assert facts.memory_detail == "/sys/fs/cgroup/system.slice/docker-0123abcd.scope/memory.max"
    assert facts.memory_warnings == ()


def test_v2_max_everywhere_falls_back_to_meminfo_with_a_warning(fake_host: FakeHost) -> None:
    fake_host.meminfo(16 * 1024)
    own = fake_host.v2("/user.slice/session-1.scope")
    (own / "memory.max").write_text("max\n")
    (own / "memory.high").write_text("max\n")
    facts = fake_host.detect()
    assert (facts.memory_mb, facts.memory_source) == (16 * 1024, "meminfo")
    assert any("may be the host's RAM" in w for w in facts.memory_warnings)


def test_v2_memory_high_below_memory_max_wins(fake_host: FakeHost) -> None:
    fake_host.meminfo(24 * 1024)
    own = fake_host.v2("/kubepods/pod1/ctr")
    (own / "memory.max").write_text(f"{4 * GIB}\n")
    (own / "memory.high").write_text(f"{3 * GIB}\n")
    facts = fake_host.detect()
    assert (facts.memory_mb, facts.memory_source) == (3072, "cgroup-v2")
    assert facts.memory_detail.endswith("/memory.high")


def test_v2_smaller_parent_limit_binds_the_child(fake_host: FakeHost) -> None:
    fake_host.meminfo(24 * 1024)
    own = fake_host.v2("/machine.slice/app.slice/pg.scope")
    (own / "memory.max").write_text(f"{2 * GIB}\n")
    (own.parent / "memory.max").write_text(f"{768 * MIB}\n")
    (own.parent.parent / "memory.max").write_text("max\n")
    facts = fake_host.detect()
    assert (facts.memory_mb, facts.memory_source) == (768, "cgroup-v2")
    assert facts.memory_detail == "/sys/fs/cgroup/machine.slice/app.slice/memory.max"


def test_v1_limit(fake_host: FakeHost) -> None:
    fake_host.meminfo(24 * 1024)
    dirs = fake_host.v1({"memory": "/docker/abc"})
    (dirs["memory"] / "memory.limit_in_bytes").write_text("268435456\n")
    (dirs["memory"].parent / "memory.limit_in_bytes").write_text(V1_UNLIMITED + "\n")
    facts = fake_host.detect()
    assert (facts.memory_mb, facts.memory_source) == (256, "cgroup-v1")


def test_v1_unlimited_value_is_no_limit(fake_host: FakeHost) -> None:
    fake_host.meminfo(8 * 1024)
    dirs = fake_host.v1({"memory": "/docker/abc"})
    (dirs["memory"] / "memory.limit_in_bytes").write_text(V1_UNLIMITED + "\n")
    facts = fake_host.detect()
    assert (facts.memory_mb, facts.memory_source) == (8 * 1024, "meminfo")


def test_container_view_is_mapped_through_mountinfo(fake_host: FakeHost) -> None:
    # /proc/self/cgroup names /docker/<id>, but the container's own group is what is mounted at
    # /sys/fs/cgroup/memory (mount root /docker/<id>): there is no sys/fs/cgroup/memory/docker/<id>.
    fake_host.meminfo(24 * 1024)
    dirs = fake_host.v1(
        {"memory": "/docker/4f1e", "cpu": "/docker/4f1e"},
        mount_roots={"memory": "/docker/4f1e", "cpu": "/docker/4f1e"},
    )
    assert dirs["memory"] == fake_host.root / "sys/fs/cgroup/memory"
    (dirs["memory"] / "memory.limit_in_bytes").write_text(f"{512 * MIB}\n")
    (dirs["cpu"] / "cpu.cfs_quota_us").write_text("300000\n")
    (dirs["cpu"] / "cpu.cfs_period_us").write_text("100000\n")
    assert not (fake_host.root / "sys/fs/cgroup/memory/docker").exists()
    facts = fake_host.detect()
    assert (facts.memory_mb, facts.memory_source) == (512, "cgroup-v1")
    assert (facts.cpus, facts.cpu_source) == (3, "cgroup-v1")


def test_container_path_missing_under_a_host_rooted_mount_uses_the_mounted_group(fake_host: FakeHost) -> None:
    # Mount root "/" but the named path does not exist: the mounted directory is the best we know.
    fake_host.meminfo(24 * 1024)
    fake_host.proc_cgroup("4:memory:/docker/gone\n")
    fake_host.mount("/", "/sys/fs/cgroup/memory", "cgroup", "rw,memory")
    fake_host.write("/sys/fs/cgroup/memory/memory.limit_in_bytes", f"{1024 * MIB}\n")
    facts = fake_host.detect()
    assert (facts.memory_mb, facts.memory_source) == (1024, "cgroup-v1")


def test_hybrid_host_reads_v1_when_the_unified_mount_has_no_memory_files(fake_host: FakeHost) -> None:
    # What these build machines run: v1 controllers plus an empty cgroup2 mount at /sys/fs/cgroup/unified.
    fake_host.meminfo(24 * 1024)
    dirs = fake_host.v1({"memory": "/process_api/27b9", "cpu": "/"})
    fake_host.mount("/", "/sys/fs/cgroup/unified", "cgroup2", "rw")
    (dirs["memory"] / "memory.limit_in_bytes").write_text(f"{768 * MIB}\n")
    facts = fake_host.detect()
    assert (facts.memory_mb, facts.memory_source) == (768, "cgroup-v1")


def test_no_controllers_at_all(fake_host: FakeHost) -> None:
    fake_host.meminfo(4096)
    facts = fake_host.detect(affinity=4, nproc=4)
    assert (facts.memory_mb, facts.memory_source) == (4096, "meminfo")
    assert (facts.cpus, facts.cpu_source) == (4, "nproc")


def test_nothing_readable_at_all_does_not_crash(fake_host: FakeHost) -> None:
    fake_host.root.mkdir(parents=True)
    facts = fake_host.detect(affinity=None, nproc=None)
    assert (facts.memory_mb, facts.memory_source) == (None, "unknown")
    assert (facts.cpus, facts.cpu_source) == (1, "nproc")
    assert facts.memory_warnings
    assert facts.cpu_warnings


@pytest.mark.parametrize(
    ("cgroup_text", "mountinfo_text", "limit_text", "meminfo_text"),
    [
        ("garbage\n::::\n", "not a mount line\n1 2 3\n", "banana", "MemTotal: lots\n"),
        ("4:memory:relative/path\n", "- - - -\n", "-1", "MemTotal:\n"),
        ("\x00\xff\n", "1 1 0:1 / /sys/fs/cgroup/memory rw - cgroup\n", "12abc", "MemTotal: 100 MB\n"),
        ("", "", "", ""),
    ],
)
def test_garbage_files_mean_no_limit(
    fake_host: FakeHost, cgroup_text: str, mountinfo_text: str, limit_text: str, meminfo_text: str
) -> None:
    fake_host.write("/proc/self/cgroup", cgroup_text)
    fake_host.write("/proc/self/mountinfo", mountinfo_text)
    fake_host.write("/sys/fs/cgroup/memory/memory.limit_in_bytes", limit_text)
    fake_host.write("/sys/fs/cgroup/memory.max", limit_text)
    fake_host.write("/proc/meminfo", meminfo_text)
    facts = fake_host.detect(affinity=2, nproc=2)
    assert facts.memory_mb is None
    assert facts.memory_source == "unknown"
    assert (facts.cpus, facts.cpu_source) == (2, "nproc")


def test_garbage_limit_with_valid_meminfo_uses_meminfo(fake_host: FakeHost) -> None:
    fake_host.meminfo(2048)
    own = fake_host.v2("/a")
    (own / "memory.max").write_text("lots\n")
    (own / "memory.high").write_bytes(b"\xff\xfe\n")
    (own / "cpu.max").write_text("half 100000\n")
    facts = fake_host.detect(affinity=2, nproc=2)
    assert (facts.memory_mb, facts.memory_source) == (2048, "meminfo")
    assert (facts.cpus, facts.cpu_source) == (2, "nproc")


def test_unreadable_limit_file_is_no_limit(fake_host: FakeHost) -> None:
    fake_host.meminfo(2048)
    own = fake_host.v2("/a")
    (own / "memory.max").mkdir()  # reading a directory fails with IsADirectoryError
    facts = fake_host.detect()
    assert (facts.memory_mb, facts.memory_source) == (2048, "meminfo")


@pytest.mark.parametrize(
    ("cpu_max", "affinity", "nproc", "expected"),
    [
        ("150000 100000", 8, 8, (2, "cgroup-v2")),  # a fractional quota rounds up
        ("max 100000", 3, 16, (3, "affinity")),  # no quota: the affinity mask, narrower than nproc
        ("800000 100000", 4, 16, (4, "affinity")),  # a quota above the mask is bound by the mask
        ("max 100000", 16, 16, (16, "nproc")),  # the mask covers every CPU
    ],
)
def test_v2_cpu(
    fake_host: FakeHost, cpu_max: str, affinity: int, nproc: int, expected: tuple[int, str]
) -> None:
    fake_host.meminfo(2048)
    (fake_host.v2("/pg") / "cpu.max").write_text(cpu_max + "\n")
    facts = fake_host.detect(affinity=affinity, nproc=nproc)
    assert (facts.cpus, facts.cpu_source) == expected


@pytest.mark.parametrize(
    ("quota", "affinity", "expected"),
    [
        ("150000", 8, (2, "cgroup-v1")),  # 150000/100000 rounds up to 2
        ("-1", 2, (2, "affinity")),  # no quota, affinity of 2 CPUs out of 8
    ],
)
def test_v1_cpu(fake_host: FakeHost, quota: str, affinity: int, expected: tuple[int, str]) -> None:
    fake_host.meminfo(2048)
    dirs = fake_host.v1({"cpu": "/docker/x"})
    (dirs["cpu"] / "cpu.cfs_quota_us").write_text(quota + "\n")
    (dirs["cpu"] / "cpu.cfs_period_us").write_text("100000\n")
    facts = fake_host.detect(affinity=affinity, nproc=8)
    assert (facts.cpus, facts.cpu_source) == expected


def test_cpu_count_is_clamped_to_128(fake_host: FakeHost) -> None:
    fake_host.meminfo(2048)
    facts = fake_host.detect(affinity=256, nproc=256)
    assert facts.cpus == 128


def test_limit_above_memtotal_is_memtotal(fake_host: FakeHost) -> None:
    fake_host.meminfo(4096)
    own = fake_host.v2("/pg")
    (own / "memory.max").write_text(f"{64 * GIB}\n")
    facts = fake_host.detect()
    assert (facts.memory_mb, facts.memory_source) == (4096, "meminfo")
    assert any("above MemTotal" in w for w in facts.memory_warnings)
