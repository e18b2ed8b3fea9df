"""``aza-pg tune``: print what auto-config computes (line | table | json | conf).

Flags override the environment; without flags the host is detected. Needs no root, no Docker and no
PostgreSQL. ``--format line`` is exactly the line the postgres entrypoint prints at every start, so this
path is kept light (no psutil, no json unless asked).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path

from entrypoint import autoconfig, envparse, units
from entrypoint.detect import host
from entrypoint.errors import ConfigError
from entrypoint.tuning import tune

DEFAULT_PG_MAJOR = 17
_FLAG_VARIABLES = {
    "memory": "POSTGRES_MEMORY",
    "cpus": "POSTGRES_CPUS",
    "workload": "POSTGRES_WORKLOAD_TYPE",
    "storage": "POSTGRES_STORAGE_TYPE",
}


def resolve_pg_major(env: Mapping[str, str], flag: str | None, root: Path = Path("/")) -> int:
    """--pg-version, else PG_MAJOR, else the newest installed server, else 17."""
    if flag is not None:
        return autoconfig.parse_pg_major("--pg-version", flag)
    if env.get("PG_MAJOR", "").strip():
        return autoconfig.parse_pg_major("PG_MAJOR", env["PG_MAJOR"])
    installed = host.installed_pg_major(root)
    if installed is not None and installed in autoconfig.SUPPORTED_PG_MAJORS:
        return installed
    return DEFAULT_PG_MAJOR


def settings_with_flags(
    env: Mapping[str, str], *, memory: str | None, cpus: str | None, workload: str | None, storage: str | None
) -> autoconfig.AutoConfigSettings:
    """parse_env, with each given flag replacing its variable (errors name the flag)."""
    flags = {"memory": memory, "cpus": cpus, "workload": workload, "storage": storage}
    overridden = {_FLAG_VARIABLES[flag] for flag, value in flags.items() if value is not None}
    base_env = {k: v for k, v in env.items() if k not in overridden}
    settings = autoconfig.parse_env(base_env)
    changes: dict[str, object] = {}
    if memory is not None:
        changes["memory_mb"] = units.parse_memory_mb("--memory", memory)
        changes["memory_name"] = "--memory"
    if cpus is not None:
        changes["cpus"] = units.parse_cpus("--cpus", cpus)
    if workload is not None:
        changes["workload"] = envparse.choice(
            {"--workload": workload}, "--workload", autoconfig.WORKLOADS, "mixed"
        )
    if storage is not None:
        changes["storage"] = envparse.choice({"--storage": storage}, "--storage", autoconfig.STORAGES, "ssd")
    return dataclasses.replace(settings, **changes)  # type: ignore[arg-type]


def run(
    env: Mapping[str, str],
    *,
    memory: str | None = None,
    cpus: str | None = None,
    workload: str | None = None,
    storage: str | None = None,
    pg_version: str | None = None,
    fmt: str = "table",
) -> int:
    settings = settings_with_flags(env, memory=memory, cpus=cpus, workload=workload, storage=storage)
    pg_major = resolve_pg_major(env, pg_version)
    facts = host.detect(data_dir=env.get("PGDATA") or "/var/lib/postgresql/data")
    result = tune(settings, facts, pg_major)
    if fmt == "line":
        out = (
            result.summary_line()
            + "\n"
            + "".join(f"[POSTGRES] [AUTO-CONFIG] WARNING: {w}\n" for w in result.warnings)
        )
    elif fmt == "json":
        out = result.to_json() + "\n"
    elif fmt == "conf":
        out = result.to_conf()
    elif fmt == "table":
        out = result.table()
    else:
        raise ConfigError(f"--format={fmt!r} is not valid; use one of: line, table, json, conf")
    import sys

    sys.stdout.write(out)
    sys.stdout.flush()
    return 0
