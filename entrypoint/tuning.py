"""Tuning: settings + host facts -> PostgreSQL settings (pure; no I/O, no environment).

One named rule function per setting, each returning the value with the rule text and the clamps that
applied, so ``aza-pg tune --format table`` can explain every number. After the rules, the memory budget
(``fit_budget``) checks a documented worst-case estimate against the memory limit and lowers work_mem,
then max_connections, then max_parallel_workers until it fits.

The memory budget (all figures in kB internally)::

    estimate = shared_buffers + wal_buffers
             + (max_connections + max_parallel_workers) x (work_mem x F + 3MB)
             + autovacuum_max_workers x maintenance memory
             + 24MB for the postmaster and auxiliary processes
    limit    = memory - headroom,  headroom = max(10 % of memory, 64MB)
    F        = hash_mem_multiplier (2.0) + 0.5

F covers one sort or hash node per backend: a hash table may grow to hash_mem_multiplier x work_mem, and
a sort measured under a real 1 GiB cgroup used 2-2.5x work_mem plus about 3MB resident. Parallel
workers are separate processes with their own work_mem, so they count as backends. The autovacuum
workers use autovacuum_work_mem, which defaults to maintenance_work_mem.

Settings the user set elsewhere (``user``: ``-c``, conf.d, ``ALTER SYSTEM``) are taken as given, not
emitted, and the budget adapts the others to them. ``floors`` (a hot standby's primary values) are
lower bounds no rule or budget step goes below.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, NamedTuple

from entrypoint import units
from entrypoint.autoconfig import MEMORY_OVERRIDES, AutoConfigSettings
from entrypoint.detect.host import HostFacts
from entrypoint.errors import ConfigError

MIN_MEMORY_MB = 512
MB = units.KB_PER_MB
GB = MB * 1024

# --- tables -------------------------------------------------------------------------------------------

# shared_buffers: share of RAM per tier (upper bound of the tier in MB, share). Above a tier the share
# drops, but never below the previous tier's top value, so shared_buffers never shrinks as RAM grows.
SHARED_BUFFERS_TIERS: tuple[tuple[int | None, float], ...] = ((8192, 0.25), (32768, 0.20), (None, 0.15))
SHARED_BUFFERS_CAP_MB = 32768
# effective_cache_size: share of RAM (lower bound of the tier in MB, share); grows with RAM.
EFFECTIVE_CACHE_TIERS: tuple[tuple[int, float], ...] = ((0, 0.75), (32768, 0.80), (131072, 0.85))
MAINTENANCE_WORK_MEM_DIVISOR = 32
MAINTENANCE_WORK_MEM_CAP_MB = 2048
WORK_MEM_CAP_KB = 32 * MB
WORK_MEM_MIN_KB = 64  # PostgreSQL's minimum
WORK_MEM_DIVISOR = 4  # work_mem = RAM / (max_connections x 4)
MAX_CONNECTIONS_BASE = {"mixed": 120, "web": 200, "oltp": 300, "dw": 100}
# max_connections scale by RAM: (RAM below this many MB, factor); else 100 %.
MAX_CONNECTIONS_SCALE: tuple[tuple[int, float], ...] = ((2048, 0.50), (4096, 0.70), (8192, 0.85))
MAX_CONNECTIONS_FLOOR = 20
WAL_BUFFERS_SHARE = 0.03
WAL_BUFFERS_MIN_MB, WAL_BUFFERS_MAX_MB = 1, 16
WAL_SIZE_MB = {"mixed": (1024, 4096), "web": (1024, 4096), "oltp": (2048, 8192), "dw": (4096, 16384)}
WAL_SIZE_VOLUME_SHARE = 0.25  # max_wal_size never above a quarter of the data volume
WAL_SIZE_MIN_MB = 64
DEFAULT_STATISTICS_TARGET = {"mixed": 100, "web": 100, "oltp": 100, "dw": 500}
RANDOM_PAGE_COST = {"ssd": "1.1", "san": "1.1", "hdd": "4.0"}
EFFECTIVE_IO_CONCURRENCY = {"ssd": 200, "san": 300, "hdd": 2}
MAINTENANCE_IO_CONCURRENCY = {"ssd": 20, "san": 20, "hdd": 10}
MAX_WORKER_PROCESSES_MIN = 8
MAX_WORKER_PROCESSES_EXTRA = 4  # background workers beside the parallel ones (extensions, replication)
PARALLEL_WORKER_RAM_MB = 256  # each parallel worker is a backend with its own work_mem
IO_WORKERS_MIN, IO_WORKERS_MAX = 1, 64

# Version gates: a setting is emitted only for PostgreSQL majors in its range (inclusive).
VERSION_GATES: dict[str, tuple[int, int]] = {"io_workers": (18, 99)}

# Memory budget constants (see the module docstring).
BACKEND_OVERHEAD_KB = 3 * MB
AUX_PROCESSES_KB = 24 * MB
HEADROOM_SHARE = 0.10
HEADROOM_MIN_KB = 64 * MB
WORK_MEM_SLACK = 0.5
DEFAULT_HASH_MEM_MULTIPLIER = 2.0
DEFAULT_AUTOVACUUM_MAX_WORKERS = 3

# Hot-standby settings the primary's values bound from below, with PostgreSQL's defaults.
STANDBY_DEFAULTS = {
    "max_connections": 100,
    "max_worker_processes": 8,
    "max_wal_senders": 10,
    "max_prepared_transactions": 0,
    "max_locks_per_transaction": 64,
}

SUMMARY_ORDER = (
    "shared_buffers",
    "effective_cache_size",
    "maintenance_work_mem",
    "work_mem",
    "max_connections",
)


# --- rules --------------------------------------------------------------------------------------------


class Rule(NamedTuple):
    """One computed value with its explanation."""

    value: int | str
    rule: str
    clamps: tuple[str, ...] = ()


def rule_shared_buffers(ram_mb: int) -> Rule:
    floor_mb = 0
    lower = 0
    for upper, share in SHARED_BUFFERS_TIERS:
        if upper is None or ram_mb <= upper:
            raw = int(ram_mb * share)
            clamps: list[str] = []
            value = raw
            if value < floor_mb:
                value = floor_mb
                clamps.append(f"raised to the previous tier's {floor_mb}MB (never shrinks as RAM grows)")
            if value > SHARED_BUFFERS_CAP_MB:
                value = SHARED_BUFFERS_CAP_MB
                clamps.append(f"capped at {SHARED_BUFFERS_CAP_MB}MB")
            tier = f"RAM {lower}-{upper}MB" if upper is not None else f"RAM above {lower}MB"
            return Rule(value * MB, f"{share:.0%} of RAM ({tier})", tuple(clamps))
        floor_mb = int(upper * share)
        lower = upper
    raise AssertionError("unreachable: the last tier is open")


def rule_effective_cache_size(ram_mb: int) -> Rule:
    share = next(s for low, s in reversed(EFFECTIVE_CACHE_TIERS) if ram_mb >= low)
    return Rule(int(ram_mb * share) * MB, f"{share:.0%} of RAM")


def rule_maintenance_work_mem(ram_mb: int) -> Rule:
    value = max(ram_mb // MAINTENANCE_WORK_MEM_DIVISOR, 1)
    clamps: tuple[str, ...] = ()
    if value > MAINTENANCE_WORK_MEM_CAP_MB:
        value = MAINTENANCE_WORK_MEM_CAP_MB
        clamps = (f"capped at {MAINTENANCE_WORK_MEM_CAP_MB}MB",)
    return Rule(value * MB, f"RAM / {MAINTENANCE_WORK_MEM_DIVISOR}", clamps)


def rule_max_connections(ram_mb: int, workload: str) -> Rule:
    base = MAX_CONNECTIONS_BASE[workload]
    factor = next((f for below, f in MAX_CONNECTIONS_SCALE if ram_mb < below), 1.0)
    value = int(base * factor)
    clamps: tuple[str, ...] = ()
    if value < MAX_CONNECTIONS_FLOOR:
        value = MAX_CONNECTIONS_FLOOR
        clamps = (f"floor {MAX_CONNECTIONS_FLOOR}",)
    return Rule(value, f"{workload} base {base} x {factor:.0%} (RAM tier)", clamps)


def round_work_mem(kb: int) -> int:
    """Whole MB from 8MB up, 64kB steps below; never under PostgreSQL's 64kB minimum."""
    if kb >= 8 * MB:
        return kb // MB * MB
    return max(kb // 64 * 64, WORK_MEM_MIN_KB)


def rule_work_mem(ram_mb: int, max_connections: int) -> Rule:
    raw = ram_mb * MB // (max_connections * WORK_MEM_DIVISOR)
    clamps: list[str] = []
    value = raw
    if value > WORK_MEM_CAP_KB:
        value = WORK_MEM_CAP_KB
        clamps.append(f"capped at {units.format_kb(WORK_MEM_CAP_KB)}")
    if value < WORK_MEM_MIN_KB:
        value = WORK_MEM_MIN_KB
        clamps.append("raised to PostgreSQL's 64kB minimum")
    return Rule(
        round_work_mem(value),
        f"RAM / (max_connections {max_connections} x {WORK_MEM_DIVISOR})",
        tuple(clamps),
    )


def rule_wal_buffers(shared_buffers_kb: int) -> Rule:
    raw_mb = int(shared_buffers_kb * WAL_BUFFERS_SHARE) // MB
    value = min(max(raw_mb, WAL_BUFFERS_MIN_MB), WAL_BUFFERS_MAX_MB)
    clamps = () if value == raw_mb else (f"clamped to {WAL_BUFFERS_MIN_MB}-{WAL_BUFFERS_MAX_MB}MB",)
    return Rule(value * MB, f"{WAL_BUFFERS_SHARE:.0%} of shared_buffers", clamps)


def rule_wal_sizes(workload: str, volume_mb: int | None) -> tuple[Rule, Rule]:
    low, high = WAL_SIZE_MB[workload]
    clamps: tuple[str, ...] = ()
    if volume_mb is not None:
        share = max(int(volume_mb * WAL_SIZE_VOLUME_SHARE), WAL_SIZE_MIN_MB)
        if high > share:
            high = share
            low = min(low, max(share // 4, WAL_SIZE_MIN_MB))
            clamps = (f"limited to {WAL_SIZE_VOLUME_SHARE:.0%} of the {volume_mb}MB data volume",)
    return (
        Rule(low * MB, f"{workload}: {WAL_SIZE_MB[workload][0]}MB", clamps),
        Rule(high * MB, f"{workload}: {WAL_SIZE_MB[workload][1]}MB", clamps),
    )


def rule_checkpoint_completion_target() -> Rule:
    return Rule("0.9", "spread checkpoints over 90 % of the interval")


def rule_default_statistics_target(workload: str) -> Rule:
    return Rule(DEFAULT_STATISTICS_TARGET[workload], f"{workload}: {DEFAULT_STATISTICS_TARGET[workload]}")


def rule_random_page_cost(storage: str) -> Rule:
    return Rule(RANDOM_PAGE_COST[storage], f"{storage}: {RANDOM_PAGE_COST[storage]}")


def rule_effective_io_concurrency(storage: str) -> Rule:
    return Rule(EFFECTIVE_IO_CONCURRENCY[storage], f"{storage}: {EFFECTIVE_IO_CONCURRENCY[storage]}")


def rule_maintenance_io_concurrency(storage: str) -> Rule:
    return Rule(MAINTENANCE_IO_CONCURRENCY[storage], f"{storage}: {MAINTENANCE_IO_CONCURRENCY[storage]}")


def rule_max_worker_processes(cpus: int) -> Rule:
    value = max(MAX_WORKER_PROCESSES_MIN, cpus + MAX_WORKER_PROCESSES_EXTRA)
    return Rule(value, f"max({MAX_WORKER_PROCESSES_MIN}, CPUs + {MAX_WORKER_PROCESSES_EXTRA})")


def rule_max_parallel_workers(cpus: int, ram_mb: int) -> Rule:
    by_ram = max(ram_mb // PARALLEL_WORKER_RAM_MB, 1)
    if by_ram < cpus:
        return Rule(by_ram, "CPUs", (f"at most one per {PARALLEL_WORKER_RAM_MB}MB of RAM ({by_ram})",))
    return Rule(cpus, "CPUs")


def rule_max_parallel_workers_per_gather(cpus: int, max_parallel_workers: int) -> Rule:
    value = max(cpus // 2, 1)
    if value > max_parallel_workers:
        return Rule(max(max_parallel_workers, 1), "CPUs / 2, at least 1", ("at most max_parallel_workers",))
    return Rule(value, "CPUs / 2, at least 1")


def rule_max_parallel_maintenance_workers(cpus: int, max_parallel_workers: int) -> Rule:
    value = min(cpus // 2, 4)
    if value > max_parallel_workers:
        return Rule(max_parallel_workers, "min(CPUs / 2, 4)", ("at most max_parallel_workers",))
    return Rule(value, "min(CPUs / 2, 4)")


def rule_io_workers(cpus: int) -> Rule:
    raw = cpus // 4
    value = min(max(raw, IO_WORKERS_MIN), IO_WORKERS_MAX)
    clamps = () if value == raw else (f"clamped to {IO_WORKERS_MIN}-{IO_WORKERS_MAX}",)
    return Rule(value, "CPUs / 4", clamps)


MEMORY_SETTINGS = frozenset(
    {
        "shared_buffers",
        "effective_cache_size",
        "maintenance_work_mem",
        "work_mem",
        "wal_buffers",
        "min_wal_size",
        "max_wal_size",
    }
)


# --- result types -------------------------------------------------------------------------------------


class Decision(NamedTuple):
    name: str
    value: str  # as written in postgresql.conf
    source: str  # "computed" | "POSTGRES_<NAME>" | "user" | "primary"
    rule: str
    inputs: str
    clamps: tuple[str, ...] = ()

    @property
    def emitted(self) -> bool:
        return self.source != "user"


class Budget(NamedTuple):
    """The worst-case memory estimate (kB) against the limit; see the module docstring."""

    memory_kb: int
    headroom_kb: int
    shared_buffers_kb: int
    wal_buffers_kb: int
    max_connections: int
    parallel_workers: int
    work_mem_kb: int
    work_mem_factor: float
    backend_overhead_kb: int
    autovacuum_workers: int
    autovacuum_mem_kb: int
    aux_kb: int
    steps: tuple[str, ...] = ()

    @property
    def per_backend_kb(self) -> int:
        return math.ceil(self.work_mem_kb * self.work_mem_factor) + self.backend_overhead_kb

    @property
    def backends(self) -> int:
        return self.max_connections + self.parallel_workers

    @property
    def estimate_kb(self) -> int:
        return (
            self.shared_buffers_kb
            + self.wal_buffers_kb
            + self.backends * self.per_backend_kb
            + self.autovacuum_workers * self.autovacuum_mem_kb
            + self.aux_kb
        )

    @property
    def limit_kb(self) -> int:
        return self.memory_kb - self.headroom_kb

    @property
    def fits(self) -> bool:
        return self.estimate_kb <= self.limit_kb

    def describe(self) -> list[str]:
        f = units.format_kb

        def mb(kb: int) -> str:
            return f"{kb / MB:.0f}MB"

        return [
            "memory budget (worst case: every backend and parallel worker runs one sort/hash node at once):",
            f"  shared_buffers {f(self.shared_buffers_kb)} + wal_buffers {f(self.wal_buffers_kb)}",
            f"  + ({self.max_connections} connections + {self.parallel_workers} parallel workers)"
            f" x (work_mem {f(self.work_mem_kb)} x {self.work_mem_factor:g} + {f(self.backend_overhead_kb)})",
            f"  + {self.autovacuum_workers} autovacuum workers x {f(self.autovacuum_mem_kb)}"
            f" + {f(self.aux_kb)} postmaster and auxiliary processes",
            f"  = {mb(self.estimate_kb)} of {mb(self.limit_kb)} allowed"
            f" (memory {mb(self.memory_kb)} - headroom {mb(self.headroom_kb)}): "
            + ("fits" if self.fits else "DOES NOT FIT"),
            *(f"  adjusted: {step}" for step in self.steps),
        ]

    def as_dict(self) -> dict[str, Any]:
        return {
            "memory_kb": self.memory_kb,
            "headroom_kb": self.headroom_kb,
            "limit_kb": self.limit_kb,
            "shared_buffers_kb": self.shared_buffers_kb,
            "wal_buffers_kb": self.wal_buffers_kb,
            "max_connections": self.max_connections,
            "parallel_workers": self.parallel_workers,
            "work_mem_kb": self.work_mem_kb,
            "work_mem_factor": self.work_mem_factor,
            "backend_overhead_kb": self.backend_overhead_kb,
            "per_backend_kb": self.per_backend_kb,
            "autovacuum_workers": self.autovacuum_workers,
            "autovacuum_mem_kb": self.autovacuum_mem_kb,
            "aux_kb": self.aux_kb,
            "estimate_kb": self.estimate_kb,
            "fits": self.fits,
            "steps": list(self.steps),
        }


@dataclass(frozen=True)
class Tuning:
    enabled: bool
    memory_mb: int | None
    memory_source: str
    cpus: int
    cpu_source: str
    workload: str
    storage: str
    pg_major: int
    decisions: tuple[Decision, ...]
    budget: Budget | None
    facts: HostFacts
    overridden: tuple[str, ...] = ()
    warnings: tuple[str, ...] = field(default=())

    @property
    def settings(self) -> Mapping[str, str]:
        """What auto-config writes: name -> value text, in a stable order (user-set names excluded)."""
        return MappingProxyType({d.name: d.value for d in self.decisions if d.emitted})

    def decision(self, name: str) -> Decision:
        for d in self.decisions:
            if d.name == name:
                return d
        raise KeyError(name)

    def summary(self) -> str:
        """The summary line without the ``[POSTGRES] [AUTO-CONFIG]`` tag (for log.info)."""
        ram = f"{self.memory_mb}MB" if self.memory_mb is not None else "unknown"
        head = f"RAM: {ram} ({self.memory_source}), CPU: {self.cpus} cores ({self.cpu_source})"
        if not self.enabled:
            return f"{head} → off (POSTGRES_AUTO_CONFIG=off): PostgreSQL's defaults and your files apply"
        parts = []
        for d in self.decisions:
            mark = "" if d.source in ("computed", "primary") else f" ({d.source})"
            parts.append(f"{d.name}={d.value}{mark}")
        return f"{head} → {', '.join(parts)}"

    def summary_line(self) -> str:
        return f"[POSTGRES] [AUTO-CONFIG] {self.summary()}"

    def to_conf(self) -> str:
        from entrypoint.render import conf

        header = [
            "Generated by aza-pg auto-config at every start; do not edit, it is rewritten.",
            f"Inputs: RAM {self.memory_mb}MB ({self.memory_source}), {self.cpus} CPUs ({self.cpu_source}),"
            f" workload {self.workload}, storage {self.storage}, PostgreSQL {self.pg_major}.",
            "Override any value in /etc/postgresql/conf.d/*.conf (read after this file), with -c or"
            " ALTER SYSTEM.",
        ]
        if self.overridden:
            header.append(f"Set by the user (not computed here): {', '.join(self.overridden)}.")
        if not self.enabled:
            header.append("POSTGRES_AUTO_CONFIG=off: nothing is computed.")
        return conf.render(self.settings, header=header)

    def as_dict(self) -> dict[str, Any]:
        return {
            "enabled": self.enabled,
            "inputs": {
                "memory_mb": self.memory_mb,
                "memory_source": self.memory_source,
                "cpus": self.cpus,
                "cpu_source": self.cpu_source,
                "workload": self.workload,
                "storage": self.storage,
                "pg_major": self.pg_major,
                "mem_total_mb": self.facts.mem_total_mb,
                "shm_mb": self.facts.shm_mb,
                "data_volume_mb": self.facts.data_volume_mb,
            },
            "settings": dict(self.settings),
            "decisions": [
                {
                    "name": d.name,
                    "value": d.value,
                    "source": d.source,
                    "rule": d.rule,
                    "inputs": d.inputs,
                    "clamps": list(d.clamps),
                }
                for d in self.decisions
            ],
            "budget": self.budget.as_dict() if self.budget is not None else None,
            "overridden": list(self.overridden),
            "warnings": list(self.warnings),
        }

    def to_json(self) -> str:
        import json

        return json.dumps(self.as_dict(), indent=2, ensure_ascii=False)

    def table(self) -> str:
        lines = [
            f"aza-pg auto-config for PostgreSQL {self.pg_major}",
            f"inputs: RAM {self.memory_mb}MB ({self.memory_source}"
            + (
                f": {self.facts.memory_detail}"
                if self.memory_source == self.facts.memory_source and self.facts.memory_detail
                else ""
            )
            + f"), CPUs {self.cpus} ({self.cpu_source}), workload {self.workload}, storage {self.storage}",
        ]
        if not self.enabled:
            lines.append("POSTGRES_AUTO_CONFIG=off: nothing is computed or written.")
            return "\n".join(lines) + "\n"
        rows = [("setting", "value", "source", "rule", "inputs / clamps")]
        for d in self.decisions:
            notes = "; ".join((d.inputs, *d.clamps)) if d.inputs else "; ".join(d.clamps)
            rows.append((d.name, d.value, d.source, d.rule, notes))
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        lines.append("")
        for r in rows:
            lines.append("  ".join(r[i].ljust(widths[i]) for i in range(4)) + "  " + r[4])
        if self.budget is not None:
            lines.append("")
            lines.extend(self.budget.describe())
        for w in self.warnings:
            lines.append(f"WARNING: {w}")
        return "\n".join(lines).rstrip() + "\n"


# --- the engine ---------------------------------------------------------------------------------------


def _user_kb(user: Mapping[str, str], name: str, default_unit_kb: int) -> int | None:
    raw = user.get(name)
    return None if raw is None else units.parse_pg_size_kb(raw, default_unit_kb=default_unit_kb)


def _user_int(user: Mapping[str, str], name: str) -> int | None:
    raw = user.get(name)
    if raw is None:
        return None
    text = raw.strip().strip("'\"").strip()
    return int(text) if text.isdigit() else None


def _user_float(user: Mapping[str, str], name: str) -> float | None:
    raw = user.get(name)
    if raw is None:
        return None
    try:
        return float(raw.strip().strip("'\"").strip())
    except ValueError:
        return None


def _memory(settings: AutoConfigSettings, facts: HostFacts) -> tuple[int, str]:
    if settings.memory_mb is not None:
        return settings.memory_mb, "manual"
    if facts.memory_mb is None:
        raise ConfigError("could not detect the memory limit; set POSTGRES_MEMORY=<MB> (e.g. 2048)")
    return facts.memory_mb, facts.memory_source


def tune(
    settings: AutoConfigSettings,
    facts: HostFacts,
    pg_major: int,
    *,
    user: Mapping[str, str] | None = None,
    floors: Mapping[str, int] | None = None,
) -> Tuning:
    """Compute every setting.

    ConfigError below 512MB of memory, or when an explicit value (POSTGRES_* or ``user``) is below a floor.
    """
    user = {k.lower(): v for k, v in (user or {}).items()}
    floors = dict(floors or {})
    warnings = list(facts.warnings)
    if settings.memory_mb is None:
        warnings[:0] = facts.memory_warnings
    if settings.cpus is None:
        warnings[:0] = facts.cpu_warnings
    cpus, cpu_source = (
        (settings.cpus, "manual") if settings.cpus is not None else (facts.cpus, facts.cpu_source)
    )

    if not settings.enabled:
        memory = settings.memory_mb if settings.memory_mb is not None else facts.memory_mb
        source = "manual" if settings.memory_mb is not None else facts.memory_source
        return Tuning(
            False,
            memory,
            source,
            cpus,
            cpu_source,
            settings.workload,
            settings.storage,
            pg_major,
            (),
            None,
            facts,
            tuple(sorted(user)),
            tuple(warnings),
        )

    ram, ram_source = _memory(settings, facts)
    if ram < MIN_MEMORY_MB:
        where = (
            f"{settings.memory_name}={ram}"
            if ram_source == "manual"
            else f"the container has {ram}MB ({ram_source})"
        )
        raise ConfigError(
            f"{where}: PostgreSQL needs at least {MIN_MEMORY_MB}MB; raise the limit "
            "(compose: mem_limit: 512m, docker run -m 512m) "
            f"or set POSTGRES_MEMORY to at least {MIN_MEMORY_MB}"
        )
    if (
        settings.memory_mb is not None
        and facts.memory_mb is not None
        and settings.memory_mb > facts.memory_mb
        and facts.memory_source != "meminfo"
    ):
        warnings.append(
            f"POSTGRES_MEMORY={settings.memory_mb} is above the detected limit of {facts.memory_mb}MB "
            f"({facts.memory_source}); the kernel may OOM-kill PostgreSQL"
        )
    workload, storage = settings.workload, settings.storage
    overrides = settings.memory_overrides()
    inputs_ram = f"RAM {ram}MB"
    decisions: dict[str, Decision] = {}
    values: dict[str, int] = {}  # numeric view for the budget (kB for memory, counts otherwise)

    def decide(name: str, rule: Rule, inputs: str, *, default_unit_kb: int = 1) -> None:
        """Record a rule's result unless the user or a POSTGRES_* override set the value."""
        if name in user:
            decisions[name] = Decision(name, user[name].strip(), "user", "set by the user; kept as given", "")
            parsed = (
                _user_kb(user, name, default_unit_kb) if name in MEMORY_SETTINGS else _user_int(user, name)
            )
            if parsed is not None:
                values[name] = parsed
            elif isinstance(rule.value, int):
                values[name] = rule.value
            return
        if name in overrides:
            variable = MEMORY_OVERRIDES[name][0]
            decisions[name] = Decision(
                name, units.format_kb(overrides[name]), variable, f"set by {variable}", ""
            )
            values[name] = overrides[name]
            return
        text = (
            units.format_kb(rule.value)
            if name in MEMORY_SETTINGS and isinstance(rule.value, int)
            else str(rule.value)
        )
        decisions[name] = Decision(name, text, "computed", rule.rule, inputs, rule.clamps)
        if isinstance(rule.value, int):
            values[name] = rule.value

    decide("shared_buffers", rule_shared_buffers(ram), inputs_ram, default_unit_kb=8)
    decide("effective_cache_size", rule_effective_cache_size(ram), inputs_ram, default_unit_kb=8)
    decide("maintenance_work_mem", rule_maintenance_work_mem(ram), inputs_ram)

    if settings.max_connections is not None and "max_connections" not in user:
        decisions["max_connections"] = Decision(
            "max_connections",
            str(settings.max_connections),
            "POSTGRES_MAX_CONNECTIONS",
            "set by POSTGRES_MAX_CONNECTIONS",
            "",
        )
        values["max_connections"] = settings.max_connections
    else:
        decide("max_connections", rule_max_connections(ram, workload), f"{inputs_ram}, workload {workload}")
    mc_floor = floors.get("max_connections")
    if mc_floor is not None and values["max_connections"] < mc_floor:
        _raise_to_floor(decisions, values, "max_connections", mc_floor)

    decide("work_mem", rule_work_mem(ram, values["max_connections"]), inputs_ram)
    # work_mem must be placed before max_connections in the output; reorder at the end.
    decide(
        "wal_buffers",
        rule_wal_buffers(values["shared_buffers"]),
        f"shared_buffers {units.format_kb(values['shared_buffers'])}",
        default_unit_kb=8,
    )
    low, high = rule_wal_sizes(workload, facts.data_volume_mb)
    volume = f", data volume {facts.data_volume_mb}MB" if facts.data_volume_mb else ""
    decide("min_wal_size", low, f"workload {workload}{volume}", default_unit_kb=MB)
    decide("max_wal_size", high, f"workload {workload}{volume}", default_unit_kb=MB)
    decide("checkpoint_completion_target", rule_checkpoint_completion_target(), "")
    decide("default_statistics_target", rule_default_statistics_target(workload), f"workload {workload}")
    decide("random_page_cost", rule_random_page_cost(storage), f"storage {storage}")
    decide("effective_io_concurrency", rule_effective_io_concurrency(storage), f"storage {storage}")
    decide("maintenance_io_concurrency", rule_maintenance_io_concurrency(storage), f"storage {storage}")
    inputs_cpu = f"{cpus} CPUs"
    decide("max_worker_processes", rule_max_worker_processes(cpus), inputs_cpu)
    if (floor := floors.get("max_worker_processes")) is not None and values["max_worker_processes"] < floor:
        _raise_to_floor(decisions, values, "max_worker_processes", floor)
    decide("max_parallel_workers", rule_max_parallel_workers(cpus, ram), f"{inputs_cpu}, {inputs_ram}")
    parallel = values["max_parallel_workers"]
    decide(
        "max_parallel_workers_per_gather", rule_max_parallel_workers_per_gather(cpus, parallel), inputs_cpu
    )
    decide(
        "max_parallel_maintenance_workers", rule_max_parallel_maintenance_workers(cpus, parallel), inputs_cpu
    )
    low_v, high_v = VERSION_GATES["io_workers"]
    if low_v <= pg_major <= high_v:
        decide("io_workers", rule_io_workers(cpus), inputs_cpu)
    for name in ("max_wal_senders", "max_prepared_transactions", "max_locks_per_transaction"):
        if name in floors and name in user:
            given = _user_int(user, name)
            if given is not None and given < floors[name]:
                raise ConfigError(
                    f"{name}={given} (the user's setting) is below the primary's {floors[name]}; "
                    f"a hot standby needs at least the primary's value: raise it to {floors[name]} or more"
                )
        elif name in floors:
            value = max(floors[name], STANDBY_DEFAULTS[name])
            decisions[name] = Decision(
                name,
                str(value),
                "primary",
                "at least the primary's value",
                f"primary {floors[name]}, default {STANDBY_DEFAULTS[name]}",
            )
            values[name] = value

    budget = fit_budget(ram, decisions, values, user, floors, warnings)

    ordered = [decisions[n] for n in SUMMARY_ORDER] + [
        d for n, d in decisions.items() if n not in SUMMARY_ORDER
    ]
    overridden = tuple(d.name for d in ordered if d.source not in ("computed", "primary"))
    shm_warning = _shm_warning(facts, values.get("max_parallel_workers", 0))
    if shm_warning:
        warnings.append(shm_warning)
    return Tuning(
        True,
        ram,
        ram_source,
        cpus,
        cpu_source,
        workload,
        storage,
        pg_major,
        tuple(ordered),
        budget,
        facts,
        overridden,
        tuple(warnings),
    )


def _raise_to_floor(decisions: dict[str, Decision], values: dict[str, int], name: str, floor: int) -> None:
    current = decisions[name]
    if current.source != "computed":
        where = current.source if current.source != "user" else "the user's setting"
        raise ConfigError(
            f"{name}={current.value} ({where}) is below the primary's {floor}; a hot standby needs at least "
            f"the primary's value: raise it to {floor} or more"
        )
    decisions[name] = Decision(
        name,
        str(floor),
        current.source if current.source != "computed" else "primary",
        current.rule,
        current.inputs,
        (*current.clamps, f"raised to the primary's {floor} (hot standby)"),
    )
    values[name] = floor


def _shm_warning(facts: HostFacts, parallel_workers: int) -> str | None:
    if facts.shm_mb is None or parallel_workers == 0 or facts.shm_mb >= 256:
        return None
    return (
        f"/dev/shm is only {facts.shm_mb}MB; parallel queries can fail with 'could not resize shared "  # noqa: S108
        "memory segment'. Set shm_size: 256m in compose (docker run --shm-size=256m)"
    )


def fit_budget(
    ram_mb: int,
    decisions: dict[str, Decision],
    values: dict[str, int],
    user: Mapping[str, str],
    floors: Mapping[str, int],
    warnings: list[str],
) -> Budget:
    """Lower work_mem, then max_connections, then max_parallel_workers until the estimate fits."""
    memory_kb = ram_mb * MB
    headroom = max(int(memory_kb * HEADROOM_SHARE), HEADROOM_MIN_KB)
    hash_mult = _user_float(user, "hash_mem_multiplier") or DEFAULT_HASH_MEM_MULTIPLIER
    factor = max(hash_mult, 1.0) + WORK_MEM_SLACK
    av_workers = _user_int(user, "autovacuum_max_workers") or DEFAULT_AUTOVACUUM_MAX_WORKERS
    av_mem = _user_kb(user, "autovacuum_work_mem", 1)
    if av_mem is None or av_mem <= 0:
        av_mem = values["maintenance_work_mem"]
    wal = values.get("wal_buffers", 16 * MB)
    steps: list[str] = []

    def make(work_mem: int, connections: int, parallel: int) -> Budget:
        return Budget(
            memory_kb,
            headroom,
            values["shared_buffers"],
            wal,
            connections,
            parallel,
            work_mem,
            factor,
            BACKEND_OVERHEAD_KB,
            av_workers,
            av_mem,
            AUX_PROCESSES_KB,
            tuple(steps),
        )

    work_mem, connections, parallel = (
        values["work_mem"],
        values["max_connections"],
        values["max_parallel_workers"],
    )
    budget = make(work_mem, connections, parallel)
    if budget.fits:
        return budget
    fixed = budget.estimate_kb - budget.backends * budget.per_backend_kb
    available = budget.limit_kb - fixed

    def adjustable(name: str) -> bool:
        return decisions[name].source == "computed"

    if adjustable("work_mem"):
        per_backend = available // budget.backends if available > 0 else 0
        fit = round_work_mem(max(int((per_backend - BACKEND_OVERHEAD_KB) / factor), WORK_MEM_MIN_KB))
        if fit < work_mem:
            steps.append(f"work_mem {units.format_kb(work_mem)} -> {units.format_kb(fit)}")
            _lower(
                decisions, values, "work_mem", units.format_kb(fit), fit, "lowered to fit the memory budget"
            )
            work_mem = fit
    budget = make(work_mem, connections, parallel)
    if not budget.fits and adjustable("max_connections"):
        fit_backends = max(available, 0) // budget.per_backend_kb
        lowest = max(MAX_CONNECTIONS_FLOOR, floors.get("max_connections", 0))
        new = max(min(connections, fit_backends - parallel), lowest)
        if new < connections:
            steps.append(f"max_connections {connections} -> {new}")
            _lower(decisions, values, "max_connections", str(new), new, "lowered to fit the memory budget")
            connections = new
    budget = make(work_mem, connections, parallel)
    if not budget.fits and adjustable("max_parallel_workers"):
        fit_backends = max(available, 0) // budget.per_backend_kb
        new = max(min(parallel, fit_backends - connections), 0)
        if new < parallel:
            steps.append(f"max_parallel_workers {parallel} -> {new}")
            _lower(
                decisions, values, "max_parallel_workers", str(new), new, "lowered to fit the memory budget"
            )
            parallel = new
            for name in ("max_parallel_workers_per_gather", "max_parallel_maintenance_workers"):
                if adjustable(name) and values[name] > new:
                    _lower(decisions, values, name, str(new), new, "at most max_parallel_workers")
    budget = make(work_mem, connections, parallel)
    if not budget.fits:
        warnings.append(
            f"the worst-case memory estimate ({budget.estimate_kb // MB}MB) exceeds the "
            f"{budget.limit_kb // MB}MB allowed; user-set values leave no room to adjust. "
            "Under full load the kernel may OOM-kill backends"
        )
    return budget


def _lower(
    decisions: dict[str, Decision], values: dict[str, int], name: str, text: str, value: int, why: str
) -> None:
    current = decisions[name]
    decisions[name] = Decision(
        name,
        text,
        current.source,
        current.rule,
        current.inputs,
        (*current.clamps, f"{why} (was {current.value})"),
    )
    values[name] = value
