"""Auto-config settings from the environment (pure).

``parse_env`` turns the ``POSTGRES_*`` auto-config variables into a frozen AutoConfigSettings or raises
one ConfigError that names the variable and what is allowed. It reads nothing but the mapping it is
given.

| variable | allowed | default |
| --- | --- | --- |
| POSTGRES_AUTO_CONFIG | on, off | on |
| POSTGRES_MEMORY | MB as an integer, or a size with a unit (512M, 2G, 2GiB) | detected |
| POSTGRES_CPUS | 1..128 (a fraction such as 1.5 is rounded up) | detected |
| POSTGRES_WORKLOAD_TYPE | mixed, web, oltp, dw | mixed |
| POSTGRES_STORAGE_TYPE | ssd, hdd, san | ssd |
| POSTGRES_MAX_CONNECTIONS | 1..262143 | computed |
| POSTGRES_SHARED_BUFFERS | a size: integer = MB, or 64kB, 512MB, 2GB | computed |
| POSTGRES_WORK_MEM, POSTGRES_MAINTENANCE_WORK_MEM | a size, as above | computed |
| POSTGRES_EFFECTIVE_CACHE_SIZE | a size, as above | computed |
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from entrypoint import envparse, units
from entrypoint.errors import ConfigError

WORKLOADS = ("mixed", "web", "oltp", "dw")
STORAGES = ("ssd", "hdd", "san")
SUPPORTED_PG_MAJORS = (15, 16, 17, 18)
MAX_CONNECTIONS_LIMIT = 262143  # PostgreSQL's own maximum

# POSTGRES_<NAME> memory overrides: PostgreSQL setting -> (variable, minimum kB, maximum kB).
MEMORY_OVERRIDES: dict[str, tuple[str, int, int]] = {
    "shared_buffers": ("POSTGRES_SHARED_BUFFERS", 128, 1024 * 1024 * 1024),
    "work_mem": ("POSTGRES_WORK_MEM", 64, 2147483647),
    "maintenance_work_mem": ("POSTGRES_MAINTENANCE_WORK_MEM", 1024, 2147483647),
    "effective_cache_size": ("POSTGRES_EFFECTIVE_CACHE_SIZE", 8, 2147483647 * 8),
}


@dataclass(frozen=True)
class AutoConfigSettings:
    enabled: bool = True
    memory_mb: int | None = None  # POSTGRES_MEMORY: replaces detection (source "manual")
    cpus: int | None = None  # POSTGRES_CPUS: replaces detection (source "manual")
    workload: str = "mixed"
    storage: str = "ssd"
    max_connections: int | None = None
    shared_buffers_kb: int | None = None
    work_mem_kb: int | None = None
    maintenance_work_mem_kb: int | None = None
    effective_cache_size_kb: int | None = None
    memory_name: str = "POSTGRES_MEMORY"  # what error messages call the memory input (a flag may replace it)

    def memory_overrides(self) -> dict[str, int]:
        """The POSTGRES_* memory overrides that are set, by PostgreSQL setting name, in kB."""
        values = {
            "shared_buffers": self.shared_buffers_kb,
            "work_mem": self.work_mem_kb,
            "maintenance_work_mem": self.maintenance_work_mem_kb,
            "effective_cache_size": self.effective_cache_size_kb,
        }
        return {name: value for name, value in values.items() if value is not None}


def _value(env: Mapping[str, str], name: str) -> str | None:
    raw = env.get(name)
    if raw is None or not raw.strip():
        return None
    return raw


def parse_setting_kb(name: str, raw: str, low_kb: int, high_kb: int) -> int:
    kb = units.parse_size_kb(name, raw)
    if not low_kb <= kb <= high_kb:
        raise ConfigError(
            f"{name}={raw!r} is out of range; use {units.format_kb(low_kb)} .. {units.format_kb(high_kb)}"
        )
    return kb


def parse_pg_major(name: str, raw: str) -> int:
    text = raw.strip()
    major = text.split(".", 1)[0]
    if not major.isdigit() or int(major) not in SUPPORTED_PG_MAJORS:
        allowed = ", ".join(str(v) for v in SUPPORTED_PG_MAJORS)
        raise ConfigError(f"{name}={raw!r} is not a supported PostgreSQL major version; use {allowed}")
    return int(major)


def parse_env(env: Mapping[str, str]) -> AutoConfigSettings:
    """The auto-config variables of ``env`` as settings; ConfigError for the first bad one."""
    enabled = envparse.boolean(env, "POSTGRES_AUTO_CONFIG", default=True)
    memory = None
    if (raw := _value(env, "POSTGRES_MEMORY")) is not None:
        memory = units.parse_memory_mb("POSTGRES_MEMORY", raw)
    cpus = None
    if (raw := _value(env, "POSTGRES_CPUS")) is not None:
        cpus = units.parse_cpus("POSTGRES_CPUS", raw)
    workload = envparse.choice(env, "POSTGRES_WORKLOAD_TYPE", WORKLOADS, "mixed")
    storage = envparse.choice(env, "POSTGRES_STORAGE_TYPE", STORAGES, "ssd")
    max_connections = envparse.integer(
        env, "POSTGRES_MAX_CONNECTIONS", default=None, low=1, high=MAX_CONNECTIONS_LIMIT
    )
    sizes: dict[str, int | None] = {}
    for setting, (variable, low, high) in MEMORY_OVERRIDES.items():
        raw = _value(env, variable)
        sizes[setting] = None if raw is None else parse_setting_kb(variable, raw, low, high)
    return AutoConfigSettings(
        enabled=enabled,
        memory_mb=memory,
        cpus=cpus,
        workload=workload,
        storage=storage,
        max_connections=max_connections,
        shared_buffers_kb=sizes["shared_buffers"],
        work_mem_kb=sizes["work_mem"],
        maintenance_work_mem_kb=sizes["maintenance_work_mem"],
        effective_cache_size_kb=sizes["effective_cache_size"],
    )
