"""User settings win, POSTGRES_* overrides, hot-standby floors, auto-config off, warnings and outputs."""

from __future__ import annotations

import json

import pytest

from entrypoint.autoconfig import AutoConfigSettings, parse_env
from entrypoint.detect.host import HostFacts
from entrypoint.errors import ConfigError
from entrypoint.tuning import tune

pytestmark = pytest.mark.unit

DETECTED = HostFacts(
    memory_mb=2048,
    memory_source="cgroup-v2",
    mem_total_mb=24000,
    cpus=4,
    cpu_source="nproc",
    memory_detail="/sys/fs/cgroup/memory.max",
)


def test_detected_sources_appear_in_the_line() -> None:
    line = tune(AutoConfigSettings(), DETECTED, 17).summary_line()
    assert line.startswith(
        "[POSTGRES] [AUTO-CONFIG] RAM: 2048MB (cgroup-v2), CPU: 4 cores (nproc) → shared_buffers=512MB, "
        "effective_cache_size=1536MB, maintenance_work_mem=64MB, work_mem="
    )


def test_manual_values_replace_detection() -> None:
    t = tune(AutoConfigSettings(memory_mb=4096, cpus=2), DETECTED, 17)
    assert (t.memory_mb, t.memory_source, t.cpus, t.cpu_source) == (4096, "manual", 2, "manual")
    assert any("above the detected limit of 2048MB" in w for w in t.warnings)


def test_manual_memory_hides_the_meminfo_warning() -> None:
    facts = HostFacts(24000, "meminfo", 24000, 2, "nproc", memory_warnings=("no cgroup memory limit found",))
    assert tune(AutoConfigSettings(), facts, 17).warnings == ("no cgroup memory limit found",)
    assert tune(AutoConfigSettings(memory_mb=2048), facts, 17).warnings == ()


def test_user_work_mem_is_kept_and_others_adapt() -> None:
    t = tune(AutoConfigSettings(), DETECTED, 17, user={"work_mem": "64MB"})
    assert "work_mem" not in t.settings
    assert "work_mem" in t.overridden
    assert t.decision("work_mem").source == "user"
    assert t.budget is not None
    assert t.budget.work_mem_kb == 65536
    # 64MB x 2.5 + 3MB per backend only fits ~6 backends into 2GB: max_connections goes to its floor of 20
    # and the remaining excess is reported instead of silently ignored.
    assert t.settings["max_connections"] == "20"
    assert any("exceeds" in w for w in t.warnings)
    assert "work_mem=64MB (user)" in t.summary_line()


def test_user_max_connections_lowers_work_mem_only() -> None:
    t = tune(AutoConfigSettings(), DETECTED, 17, user={"MAX_CONNECTIONS": "150"})
    assert "max_connections" not in t.settings
    assert t.budget is not None
    assert t.budget.max_connections == 150
    assert t.budget.fits
    # (1887437 - 760832) // 154 backends = 7315kB; (7315 - 3072) / 2.5 = 1697kB -> 1664kB in 64kB steps.
    assert t.settings["work_mem"] == "1664kB"


def test_user_shared_buffers_in_8kb_pages_counts_in_the_budget() -> None:
    t = tune(AutoConfigSettings(), DETECTED, 17, user={"shared_buffers": "32768"})
    assert t.budget is not None
    assert t.budget.shared_buffers_kb == 256 * 1024


def test_user_hash_mem_multiplier_changes_the_factor() -> None:
    t = tune(AutoConfigSettings(), DETECTED, 17, user={"hash_mem_multiplier": "4.0"})
    assert t.budget is not None
    assert t.budget.work_mem_factor == 4.5


def test_postgres_overrides_are_emitted_and_named() -> None:
    settings = parse_env(
        {
            "POSTGRES_WORK_MEM": "8MB",
            "POSTGRES_SHARED_BUFFERS": "256MB",
            "POSTGRES_MAX_CONNECTIONS": "50",
            "POSTGRES_MEMORY": "2048",
        }
    )
    t = tune(settings, DETECTED, 17)
    assert t.settings["work_mem"] == "8MB"
    assert t.settings["shared_buffers"] == "256MB"
    assert t.settings["max_connections"] == "50"
    assert set(t.overridden) == {"work_mem", "shared_buffers", "max_connections"}
    assert "work_mem=8MB (POSTGRES_WORK_MEM)" in t.summary_line()
    assert t.budget is not None
    assert t.budget.fits


def test_oversized_override_warns_but_is_kept() -> None:
    t = tune(parse_env({"POSTGRES_SHARED_BUFFERS": "4GB"}), DETECTED, 17)
    assert t.settings["shared_buffers"] == "4096MB"
    assert any("exceeds" in w for w in t.warnings)


def test_floors_raise_computed_values_and_emit_standby_settings() -> None:
    floors = {
        "max_connections": 200,
        "max_worker_processes": 16,
        "max_wal_senders": 5,
        "max_prepared_transactions": 10,
        "max_locks_per_transaction": 128,
    }
    t = tune(AutoConfigSettings(), DETECTED, 17, floors=floors)
    s = t.settings
    assert s["max_connections"] == "200"
    assert s["max_worker_processes"] == "16"
    assert s["max_wal_senders"] == "10"  # PostgreSQL's default is above the primary's 5
    assert s["max_prepared_transactions"] == "10"
    assert s["max_locks_per_transaction"] == "128"
    assert t.budget is not None
    assert t.budget.fits


def test_budget_never_lowers_max_connections_below_a_floor() -> None:
    t = tune(AutoConfigSettings(memory_mb=512), DETECTED, 17, floors={"max_connections": 100})
    assert t.settings["max_connections"] == "100"
    assert t.settings["work_mem"] == "64kB"


@pytest.mark.parametrize(
    ("settings", "user", "fragment"),
    [
        (AutoConfigSettings(max_connections=50), {}, "max_connections=50 (POSTGRES_MAX_CONNECTIONS)"),
        (AutoConfigSettings(), {"max_connections": "50"}, "max_connections=50 (the user's setting)"),
        (AutoConfigSettings(), {"max_wal_senders": "2"}, "max_wal_senders=2 (the user's setting)"),
    ],
)
def test_explicit_values_below_a_floor_are_config_errors(
    settings: AutoConfigSettings, user: dict[str, str], fragment: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        tune(settings, DETECTED, 17, user=user, floors={"max_connections": 100, "max_wal_senders": 10})
    assert fragment in str(caught.value)
    assert "primary's" in str(caught.value)


def test_auto_config_off_writes_nothing() -> None:
    t = tune(parse_env({"POSTGRES_AUTO_CONFIG": "off"}), DETECTED, 17)
    assert not t.enabled
    assert dict(t.settings) == {}
    assert "off (POSTGRES_AUTO_CONFIG=off)" in t.summary_line()
    assert [x for x in t.to_conf().splitlines() if not x.startswith("#")] == []


def test_auto_config_off_does_not_refuse_small_memory() -> None:
    facts = HostFacts(256, "cgroup-v1", 24000, 1, "nproc")
    assert not tune(AutoConfigSettings(enabled=False), facts, 17).enabled


def test_unknown_memory_asks_for_postgres_memory() -> None:
    facts = HostFacts(None, "unknown", None, 1, "nproc")
    with pytest.raises(ConfigError, match="POSTGRES_MEMORY"):
        tune(AutoConfigSettings(), facts, 17)


def test_small_data_volume_limits_wal_size() -> None:
    facts = HostFacts(8192, "cgroup-v1", 24000, 4, "nproc", data_volume_mb=4096)
    s = tune(AutoConfigSettings(workload="dw"), facts, 17).settings
    assert s["max_wal_size"] == "1024MB"
    assert s["min_wal_size"] == "256MB"


def test_small_dev_shm_warns_with_the_fix() -> None:
    facts = HostFacts(2048, "cgroup-v1", 24000, 4, "nproc", shm_mb=64)
    warnings = tune(AutoConfigSettings(), facts, 17).warnings
    assert any("/dev/shm is only 64MB" in w and "shm_size: 256m" in w for w in warnings)
    facts_ok = HostFacts(2048, "cgroup-v1", 24000, 4, "nproc", shm_mb=1024)
    assert not any("shm" in w for w in tune(AutoConfigSettings(), facts_ok, 17).warnings)


def test_json_and_table_explain_every_value() -> None:
    t = tune(AutoConfigSettings(memory_mb=2048, cpus=4), DETECTED, 18)
    data = json.loads(t.to_json())
    assert data["settings"] == dict(t.settings)
    assert data["inputs"]["memory_source"] == "manual"
    assert data["budget"]["fits"] is True
    assert {d["name"] for d in data["decisions"]} == set(t.settings)
    table = t.table()
    for name, value in t.settings.items():
        assert any(line.startswith(name) and f" {value} " in line for line in table.splitlines()), name
    assert "memory budget" in table
    assert "lowered to fit the memory budget" in table


def test_conf_fragment_has_a_header_and_every_setting() -> None:
    t = tune(AutoConfigSettings(memory_mb=2048, cpus=4), DETECTED, 17, user={"work_mem": "4MB"})
    text = t.to_conf()
    assert text.startswith("# Generated by aza-pg auto-config")
    assert "work_mem" not in [x.split(" = ")[0] for x in text.splitlines() if not x.startswith("#")]
    assert "# Set by the user (not computed here): work_mem." in text
    assert "shared_buffers = 512MB\n" in text
