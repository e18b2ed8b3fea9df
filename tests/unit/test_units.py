"""Parsing sizes and CPU counts from the environment, and writing PostgreSQL memory units."""

from __future__ import annotations

import pytest

from entrypoint import units
from entrypoint.errors import ConfigError

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("raw", "mb"),
    [
        ("2048", 2048),
        (" 512 ", 512),
        ("512M", 512),
        ("512MB", 512),
        ("512mib", 512),
        ("2G", 2048),
        ("2GiB", 2048),
        ("2gb", 2048),
        ("1T", 1024 * 1024),
        ("1048576k", 1024),
        ("16777216", 16 * 1024 * 1024),
    ],
)
def test_memory_accepts_mb_and_sizes_with_units(raw: str, mb: int) -> None:
    assert units.parse_memory_mb("POSTGRES_MEMORY", raw) == mb


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ("abc", "is not a size"),
        ("0", "greater than zero"),
        ("0G", "greater than zero"),
        ("-5", "is not a size"),
        ("1.5.5", "is not a size"),
        ("1.5G", "is not a size"),
        ("99999999999", "larger than"),
        ("2X", "is not a size"),
        ("", "is not a size"),
        ("512 k", "less than 1 MB"),
        ("16777217", "larger than"),
    ],
)
def test_memory_rejects_bad_values_naming_the_variable(raw: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as caught:
        units.parse_memory_mb("POSTGRES_MEMORY", raw)
    message = str(caught.value)
    assert message.startswith("POSTGRES_MEMORY=")
    assert fragment in message
    assert "\n" not in message


@pytest.mark.parametrize(("raw", "cpus"), [("1", 1), ("4", 4), ("1.5", 2), ("0.25", 1), ("128", 128)])
def test_cpus(raw: str, cpus: int) -> None:
    assert units.parse_cpus("POSTGRES_CPUS", raw) == cpus


@pytest.mark.parametrize("raw", ["0", "0.0", "-1", "abc", "129", "1e3", "", "2 cores"])
def test_cpus_rejects(raw: str) -> None:
    with pytest.raises(ConfigError, match=r"^POSTGRES_CPUS="):
        units.parse_cpus("POSTGRES_CPUS", raw)


@pytest.mark.parametrize(
    ("raw", "unit", "kb"),
    [
        ("64MB", 1, 65536),
        ("'64MB'", 1, 65536),
        ("4096", 1, 4096),
        ("16384", 8, 131072),
        ("1GB", 8, 1048576),
        ("2048kB", 1, 2048),
        ("1048576B", 1, 1024),
        ("-1", 8, None),
        ("64 mb", 1, None),
    ],
)
def test_pg_sizes_are_read_like_postgresql(raw: str, unit: int, kb: int | None) -> None:
    assert units.parse_pg_size_kb(raw, default_unit_kb=unit) == kb


@pytest.mark.parametrize(
    ("kb", "text"), [(65536, "64MB"), (64, "64kB"), (3840, "3840kB"), (33554432, "32768MB")]
)
def test_format_kb(kb: int, text: str) -> None:
    assert units.format_kb(kb) == text
