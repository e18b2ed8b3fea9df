"""Sizes and counts: parsing user input and writing PostgreSQL's memory units.

Pure functions. Everything memory-related inside the engine is a whole number of kB (PostgreSQL's own
base unit for work_mem and friends); the environment speaks MB (``POSTGRES_MEMORY=2048``) or sizes with
a unit (``512M``, ``2G``, ``2GiB``, ``64kB``). Units are binary (1 GB = 1024 MB), as in PostgreSQL.

Every parse error is a ConfigError whose message names the variable (or flag) and what is allowed.
"""

from __future__ import annotations

import math
import re

from entrypoint.errors import ConfigError

KB_PER_MB = 1024
MB_PER_GB = 1024

# Largest memory anyone can mean for one PostgreSQL container: 16 TiB. Larger is a typo (e.g. bytes
# given where MB was meant) and is refused rather than silently producing absurd settings.
MAX_MEMORY_MB = 16 * 1024 * 1024
MAX_CPUS = 128

_UNIT_KB = {
    "": None,  # the caller's default unit
    "k": 1,
    "kb": 1,
    "kib": 1,
    "m": KB_PER_MB,
    "mb": KB_PER_MB,
    "mib": KB_PER_MB,
    "g": KB_PER_MB * MB_PER_GB,
    "gb": KB_PER_MB * MB_PER_GB,
    "gib": KB_PER_MB * MB_PER_GB,
    "t": KB_PER_MB * MB_PER_GB * 1024,
    "tb": KB_PER_MB * MB_PER_GB * 1024,
    "tib": KB_PER_MB * MB_PER_GB * 1024,
}
_SIZE = re.compile(r"(?P<num>[0-9]+)\s*(?P<unit>[a-z]*)")
_DECIMAL = re.compile(r"[0-9]+(\.[0-9]+)?")


def parse_size_kb(name: str, raw: str, *, default_unit_kb: int = KB_PER_MB) -> int:
    """``raw`` as kB. A bare integer is in ``default_unit_kb`` (MB unless told otherwise).

    Accepts ``512``, ``512M``, ``512MB``, ``512MiB``, ``2G``, ``2GiB``, ``64kB``, ``1T`` (any case).
    Refuses fractions, signs, empty strings, zero and unknown units.
    """
    text = raw.strip()
    match = _SIZE.fullmatch(text.lower())
    if match is None or match["unit"] not in _UNIT_KB:
        raise ConfigError(
            f"{name}={raw!r} is not a size; use a whole number of MB (e.g. 2048) or a number with a unit "
            "(512M, 2G, 2GiB)"
        )
    factor = _UNIT_KB[match["unit"]] or default_unit_kb
    value = int(match["num"]) * factor
    if value <= 0:
        raise ConfigError(f"{name}={raw!r} must be greater than zero")
    return value


def parse_memory_mb(name: str, raw: str) -> int:
    """Container memory in MB: a whole number of MB or a size with a unit; 1 MB .. 16 TiB."""
    kb = parse_size_kb(name, raw)
    if kb > MAX_MEMORY_MB * KB_PER_MB:
        raise ConfigError(f"{name}={raw!r} is larger than {MAX_MEMORY_MB} MB (16 TiB); give the memory in MB")
    if kb < KB_PER_MB:
        raise ConfigError(f"{name}={raw!r} is less than 1 MB; give the memory in MB (e.g. 2048)")
    return kb // KB_PER_MB


def parse_cpus(name: str, raw: str) -> int:
    """A CPU count (``4``) or a fractional Docker-style quota (``1.5`` -> 2); 1..128 after rounding up."""
    text = raw.strip()
    if not _DECIMAL.fullmatch(text):
        raise ConfigError(f"{name}={raw!r} is not a number of CPUs; use a number from 1 to {MAX_CPUS}")
    value = float(text)
    if value <= 0:
        raise ConfigError(f"{name}={raw!r} must be greater than zero; use a number from 1 to {MAX_CPUS}")
    cpus = math.ceil(value)
    if cpus > MAX_CPUS:
        raise ConfigError(f"{name}={raw!r} is more than {MAX_CPUS} CPUs; use a number from 1 to {MAX_CPUS}")
    return cpus


def parse_pg_size_kb(raw: str, *, default_unit_kb: int) -> int | None:
    """A PostgreSQL memory setting as PostgreSQL reads it (``64MB``, ``8192`` in the GUC's own unit).

    For values the user set outside our control (``-c``, conf.d files, ``ALTER SYSTEM``). Returns None
    when the text is not a plain size (``-1``, an expression PostgreSQL will judge itself).
    """
    text = raw.strip().strip("'\"").strip()
    match = re.fullmatch(r"([0-9]+)\s*(kB|MB|GB|TB|B)?", text)
    if match is None:
        return None
    number = int(match[1])
    unit = match[2]
    if unit is None:
        return number * default_unit_kb
    if unit == "B":
        return number // 1024
    return (
        number
        * {"kB": 1, "MB": KB_PER_MB, "GB": KB_PER_MB * MB_PER_GB, "TB": KB_PER_MB * MB_PER_GB * 1024}[unit]
    )


def format_kb(kb: int) -> str:
    """kB as PostgreSQL writes it: whole MB as ``NNNMB``, anything else as ``NNNkB``."""
    if kb % KB_PER_MB == 0:
        return f"{kb // KB_PER_MB}MB"
    return f"{kb}kB"


def format_mb(mb: int) -> str:
    return f"{mb}MB"
