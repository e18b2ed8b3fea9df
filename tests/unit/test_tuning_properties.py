"""Property tests of the tuning invariants over RAM 512MB-1TB, CPUs 1-128, every workload/storage, PG 15-18.

The budget is recomputed here from the emitted settings with the formula documented in AGENTS.md and
entrypoint/tuning.py, not read back from the Budget object.
"""

from __future__ import annotations

import math
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from entrypoint.autoconfig import STORAGES, WORKLOADS, AutoConfigSettings
from entrypoint.detect.host import HostFacts
from entrypoint.tuning import Tuning, tune

pytestmark = pytest.mark.unit

FACTS = HostFacts(memory_mb=None, memory_source="unknown", mem_total_mb=None, cpus=1, cpu_source="nproc")
RAM = st.integers(min_value=512, max_value=1024 * 1024)
CPUS = st.integers(min_value=1, max_value=128)
PG = st.sampled_from([15, 16, 17, 18])
WORKLOAD = st.sampled_from(WORKLOADS)
STORAGE = st.sampled_from(STORAGES)
UNITS_KB = {"kB": 1, "MB": 1024, "GB": 1024 * 1024}


def kb(text: str) -> int:
    match = re.fullmatch(r"([0-9]+)(kB|MB|GB)", text)
    assert match, f"not a PostgreSQL memory value: {text!r}"
    return int(match[1]) * UNITS_KB[match[2]]


def run(ram: int, cpus: int, workload: str, storage: str, pg: int) -> Tuning:
    return tune(AutoConfigSettings(memory_mb=ram, cpus=cpus, workload=workload, storage=storage), FACTS, pg)


@settings(max_examples=400, deadline=None)
@given(RAM, CPUS, WORKLOAD, STORAGE, PG)
def test_values_are_legal_and_within_caps(ram: int, cpus: int, workload: str, storage: str, pg: int) -> None:
    s = run(ram, cpus, workload, storage, pg).settings
    ram_kb = ram * 1024
    assert 128 <= kb(s["shared_buffers"]) <= min(32 * 1024 * 1024, ram_kb // 4)
    assert kb(s["shared_buffers"]) >= ram_kb * 15 // 100 - 1024 or kb(s["shared_buffers"]) == 32 * 1024 * 1024
    assert ram_kb * 74 // 100 <= kb(s["effective_cache_size"]) <= ram_kb * 85 // 100
    assert 1024 <= kb(s["maintenance_work_mem"]) <= 2 * 1024 * 1024
    assert 64 <= kb(s["work_mem"]) <= 32 * 1024
    assert 20 <= int(s["max_connections"]) <= 300
    assert 1024 <= kb(s["wal_buffers"]) <= 16 * 1024
    assert 32 * 1024 <= kb(s["min_wal_size"]) <= kb(s["max_wal_size"])
    assert s["checkpoint_completion_target"] == "0.9"
    assert 1 <= int(s["default_statistics_target"]) <= 10000
    assert float(s["random_page_cost"]) > 0
    assert 0 <= int(s["effective_io_concurrency"]) <= 1000
    assert 0 <= int(s["maintenance_io_concurrency"]) <= 1000
    mwp = int(s["max_worker_processes"])
    assert 8 <= mwp <= 262143
    assert 0 <= int(s["max_parallel_workers"]) <= min(cpus, mwp)
    assert 0 <= int(s["max_parallel_workers_per_gather"]) <= max(int(s["max_parallel_workers"]), 1)
    assert 0 <= int(s["max_parallel_maintenance_workers"]) <= 4
    if pg >= 18:
        assert 1 <= int(s["io_workers"]) <= 64
    else:
        assert "io_workers" not in s


@settings(max_examples=400, deadline=None)
@given(RAM, CPUS, WORKLOAD, STORAGE, PG)
def test_budget_invariant(ram: int, cpus: int, workload: str, storage: str, pg: int) -> None:
    t = run(ram, cpus, workload, storage, pg)
    s = t.settings
    backends = int(s["max_connections"]) + int(s["max_parallel_workers"])
    per_backend = math.ceil(kb(s["work_mem"]) * 2.5) + 3 * 1024
    estimate = (
        kb(s["shared_buffers"])
        + kb(s["wal_buffers"])
        + backends * per_backend
        + 3 * kb(s["maintenance_work_mem"])
        + 24 * 1024
    )
    limit = ram * 1024 - max(ram * 1024 // 10, 64 * 1024)
    assert estimate <= limit
    assert t.budget is not None
    assert t.budget.estimate_kb == estimate
    assert t.budget.fits
    assert not any("exceeds" in w for w in t.warnings)


@settings(max_examples=300, deadline=None)
@given(RAM, st.integers(min_value=1, max_value=64 * 1024), CPUS, WORKLOAD, STORAGE, PG)
def test_shared_buffers_and_effective_cache_size_never_decrease(
    ram: int, more: int, cpus: int, workload: str, storage: str, pg: int
) -> None:
    small = run(ram, cpus, workload, storage, pg).settings
    large = run(ram + more, cpus, workload, storage, pg).settings
    assert kb(large["shared_buffers"]) >= kb(small["shared_buffers"])
    assert kb(large["effective_cache_size"]) >= kb(small["effective_cache_size"])


@pytest.mark.parametrize("ram", [8192, 32768])
def test_monotone_across_the_tier_edges(ram: int) -> None:
    values = [
        kb(run(r, 4, "mixed", "ssd", 17).settings["shared_buffers"]) for r in range(ram - 8, ram + 4096, 7)
    ]
    assert values == sorted(values)


@settings(max_examples=200, deadline=None)
@given(RAM, CPUS, WORKLOAD, STORAGE, PG)
def test_outputs_are_consistent(ram: int, cpus: int, workload: str, storage: str, pg: int) -> None:
    t = run(ram, cpus, workload, storage, pg)
    line = t.summary_line()
    assert line.startswith(f"[POSTGRES] [AUTO-CONFIG] RAM: {ram}MB (manual), CPU: {cpus} cores (manual) → ")
    assert "\n" not in line
    pairs = dict(p.split("=", 1) for p in line.split(" → ", 1)[1].split(", "))
    assert pairs == dict(t.settings)
    conf_lines = [x for x in t.to_conf().splitlines() if x and not x.startswith("#")]
    assert [x.split(" = ", 1)[0] for x in conf_lines] == list(t.settings)
