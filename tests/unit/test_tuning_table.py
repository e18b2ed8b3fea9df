"""Tier boundaries of the AUTOCONFIG table, checked against values worked out by hand from the rules."""

from __future__ import annotations

import pytest

from entrypoint.autoconfig import AutoConfigSettings
from entrypoint.detect.host import HostFacts
from entrypoint.errors import ConfigError
from entrypoint.tuning import Tuning, tune

pytestmark = pytest.mark.unit

FACTS = HostFacts(memory_mb=None, memory_source="unknown", mem_total_mb=None, cpus=4, cpu_source="nproc")


def tuned(ram_mb: int, workload: str = "mixed", storage: str = "ssd", cpus: int = 4, pg: int = 17) -> Tuning:
    return tune(
        AutoConfigSettings(memory_mb=ram_mb, cpus=cpus, workload=workload, storage=storage), FACTS, pg
    )


# RAM -> shared_buffers, effective_cache_size, maintenance_work_mem (MB), max_connections (mixed)
BOUNDARIES = [
    (512, 128, 384, 16, 60),
    (2047, 511, 1535, 63, 60),
    (2048, 512, 1536, 64, 84),
    (4095, 1023, 3071, 127, 84),
    (4096, 1024, 3072, 128, 102),
    (8191, 2047, 6143, 255, 102),
    (8192, 2048, 6144, 256, 120),
    (8193, 2048, 6144, 256, 120),  # 20 % of 8193 is 1638: held at the 8 GB tier's 2048
    (32767, 6553, 24575, 1023, 120),
    (32768, 6553, 26214, 1024, 120),
    (32769, 6553, 26215, 1024, 120),  # 15 % is 4915: held at the 32 GB tier's 6553
    (262144, 32768, 222822, 2048, 120),
]


@pytest.mark.parametrize(("ram", "sb", "ecs", "mwm", "mc"), BOUNDARIES)
def test_tier_boundaries(ram: int, sb: int, ecs: int, mwm: int, mc: int) -> None:
    s = tuned(ram).settings
    assert s["shared_buffers"] == f"{sb}MB"
    assert s["effective_cache_size"] == f"{ecs}MB"
    assert s["maintenance_work_mem"] == f"{mwm}MB"
    assert s["max_connections"] == str(mc)


def test_511_mb_is_refused_with_the_fix() -> None:
    with pytest.raises(ConfigError) as caught:
        tuned(511)
    message = str(caught.value)
    assert message.startswith("POSTGRES_MEMORY=511")
    assert "mem_limit: 512m" in message
    assert "docker run -m 512m" in message


def test_detected_511_mb_is_refused_naming_the_source() -> None:
    facts = HostFacts(
        memory_mb=511, memory_source="cgroup-v1", mem_total_mb=24000, cpus=2, cpu_source="nproc"
    )
    with pytest.raises(ConfigError, match=r"511MB \(cgroup-v1\).*mem_limit: 512m"):
        tune(AutoConfigSettings(), facts, 17)


def test_work_mem_at_2048_follows_the_budget() -> None:
    # Baseline RAM/(84*4) = 6241kB does not fit. By hand: limit 2048MB - 209715kB headroom = 1887437kB;
    # fixed 512MB + 15MB wal + 3 x 64MB autovacuum + 24MB = 760832kB; (1887437 - 760832) / 88 backends
    # = 12802kB each; (12802 - 3072) / 2.5 = 3892kB -> 3840kB in 64kB steps.
    t = tuned(2048)
    assert t.settings["work_mem"] == "3840kB"
    assert t.settings["wal_buffers"] == "15MB"
    assert t.budget is not None
    assert t.budget.fits


def test_work_mem_at_512() -> None:
    # 2 parallel workers (one per 256MB); (458752 - 207872) // 62 = 4046; (4046 - 3072) / 2.5 = 389 -> 384kB.
    assert tuned(512).settings["work_mem"] == "384kB"


def test_work_mem_cap_at_large_ram() -> None:
    assert tuned(65536).settings["work_mem"] == "32MB"


@pytest.mark.parametrize(
    ("workload", "ram", "mc", "stats", "wal"),
    [
        ("mixed", 8192, 120, "100", ("1024MB", "4096MB")),
        ("web", 8192, 200, "100", ("1024MB", "4096MB")),
        ("oltp", 8192, 300, "100", ("2048MB", "8192MB")),
        ("dw", 8192, 100, "500", ("4096MB", "16384MB")),
        ("web", 1024, 100, "100", ("1024MB", "4096MB")),
        ("oltp", 3000, 210, "100", ("2048MB", "8192MB")),
        ("oltp", 6000, 255, "100", ("2048MB", "8192MB")),
    ],
)
def test_workloads(workload: str, ram: int, mc: int, stats: str, wal: tuple[str, str]) -> None:
    t = tuned(ram, workload)
    budget_lowered = any("memory budget" in c for c in t.decision("max_connections").clamps)
    assert t.settings["max_connections"] == str(mc) or budget_lowered
    assert t.settings["default_statistics_target"] == stats
    assert (t.settings["min_wal_size"], t.settings["max_wal_size"]) == wal


@pytest.mark.parametrize(
    ("storage", "rpc", "eic", "mic"),
    [("ssd", "1.1", "200", "20"), ("san", "1.1", "300", "20"), ("hdd", "4.0", "2", "10")],
)
def test_storage(storage: str, rpc: str, eic: str, mic: str) -> None:
    s = tuned(4096, storage=storage).settings
    assert (s["random_page_cost"], s["effective_io_concurrency"], s["maintenance_io_concurrency"]) == (
        rpc,
        eic,
        mic,
    )


@pytest.mark.parametrize(
    ("cpus", "mwp", "mpw", "gather", "maint", "io"),
    [
        (1, 8, 1, 1, 0, 1),
        (2, 8, 2, 1, 1, 1),
        (4, 8, 4, 2, 2, 1),
        (8, 12, 8, 4, 4, 2),
        (128, 132, 128, 64, 4, 32),
    ],
)
def test_cpu_settings(cpus: int, mwp: int, mpw: int, gather: int, maint: int, io: int) -> None:
    s = tuned(65536, cpus=cpus, pg=18).settings
    assert s["max_worker_processes"] == str(mwp)
    assert s["max_parallel_workers"] == str(mpw)
    assert s["max_parallel_workers_per_gather"] == str(gather)
    assert s["max_parallel_maintenance_workers"] == str(maint)
    assert s["io_workers"] == str(io)


@pytest.mark.parametrize("pg", [15, 16, 17])
def test_io_workers_only_on_18(pg: int) -> None:
    assert "io_workers" not in tuned(4096, pg=pg).settings
    assert "io_workers" in tuned(4096, pg=18).settings


def test_parallel_workers_limited_by_ram() -> None:
    s = tuned(1024, cpus=64).settings
    assert s["max_parallel_workers"] == "4"  # one per 256MB
    assert int(s["max_parallel_workers_per_gather"]) <= 4
