"""parse_env: the auto-config variables, their defaults and their errors."""

from __future__ import annotations

import pytest

from entrypoint.autoconfig import AutoConfigSettings, parse_env
from entrypoint.errors import ConfigError

pytestmark = pytest.mark.unit


def test_defaults() -> None:
    assert parse_env({}) == AutoConfigSettings()
    assert parse_env({"POSTGRES_MEMORY": "", "POSTGRES_CPUS": "  "}) == AutoConfigSettings()


def test_every_variable() -> None:
    settings = parse_env(
        {
            "POSTGRES_AUTO_CONFIG": "ON",
            "POSTGRES_MEMORY": "2GiB",
            "POSTGRES_CPUS": "1.5",
            "POSTGRES_WORKLOAD_TYPE": "OLTP",
            "POSTGRES_STORAGE_TYPE": "hdd",
            "POSTGRES_MAX_CONNECTIONS": "150",
            "POSTGRES_SHARED_BUFFERS": "1G",
            "POSTGRES_WORK_MEM": "64kB",
            "POSTGRES_MAINTENANCE_WORK_MEM": "256",
            "POSTGRES_EFFECTIVE_CACHE_SIZE": "3GB",
        }
    )
    assert settings == AutoConfigSettings(
        enabled=True,
        memory_mb=2048,
        cpus=2,
        workload="oltp",
        storage="hdd",
        max_connections=150,
        shared_buffers_kb=1024 * 1024,
        work_mem_kb=64,
        maintenance_work_mem_kb=256 * 1024,
        effective_cache_size_kb=3 * 1024 * 1024,
    )


@pytest.mark.parametrize(
    ("name", "raw", "fragment"),
    [
        ("POSTGRES_MEMORY", "abc", "not a size"),
        ("POSTGRES_MEMORY", "0", "greater than zero"),
        ("POSTGRES_MEMORY", "-5", "not a size"),
        ("POSTGRES_MEMORY", "1.5.5", "not a size"),
        ("POSTGRES_MEMORY", "99999999999", "larger than"),
        ("POSTGRES_CPUS", "0", "greater than zero"),
        ("POSTGRES_WORKLOAD_TYPE", "analytics", "mixed, web, oltp, dw"),
        ("POSTGRES_STORAGE_TYPE", "nvme", "ssd, hdd, san"),
        ("POSTGRES_AUTO_CONFIG", "maybe", "on or off"),
        ("POSTGRES_MAX_CONNECTIONS", "0", "1..262143"),
        ("POSTGRES_MAX_CONNECTIONS", "many", "1..262143"),
        ("POSTGRES_WORK_MEM", "32k", "out of range"),
        ("POSTGRES_SHARED_BUFFERS", "lots", "not a size"),
        ("POSTGRES_MAINTENANCE_WORK_MEM", "512kB", "out of range"),
    ],
)
def test_errors_name_the_variable(name: str, raw: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_env({name: raw})
    assert str(caught.value).startswith(f"{name}=")
    assert fragment in str(caught.value)
