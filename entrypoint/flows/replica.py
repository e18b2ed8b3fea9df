"""POSTGRES_ROLE=replica: make (or keep) this data directory a streaming standby of PRIMARY_HOST.

Called by the postgres flow (``entrypoint.flows.postgres``) after the privilege drop and before it writes
anything into PGDATA:

    settings -> inspect PGDATA -> remove what an interrupted clone left -> (empty: wait for the primary,
    clone) -> refresh the replication password file -> read the primary's settings from pg_controldata
    -> hand back floors + the standby's generated settings to the common start path.

A data directory that holds a cluster is never cloned over or wiped. The primary side has one switch,
``primary_config``: POSTGRES_SYNCHRONOUS_STANDBY_NAMES (asynchronous by default).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from entrypoint import log, settings_replica
from entrypoint.detect import controldata, standby
from entrypoint.errors import ConfigError, RuntimeFailure
from entrypoint.render import conninfo
from entrypoint.settings_replica import ReplicaSettings

COMPONENT = "POSTGRES"
TOPIC = "ENTRYPOINT"

# PostgreSQL's defaults for the floors that auto-config does not compute itself.
_PG_DEFAULTS = {"max_wal_senders": 10, "max_prepared_transactions": 0, "max_locks_per_transaction": 64}
# How the standby behaves. Plain values; the postgres flow renders them with render/conf.py.
STANDBY_SETTINGS: dict[str, str] = {
    "hot_standby": "on",
    # Queries on the standby keep the rows they read from being vacuumed away on the primary, so long
    # reads are not cancelled (at the price of some bloat on the primary while they run).
    "hot_standby_feedback": "on",
    # How long WAL replay may wait for conflicting standby queries before cancelling them.
    "max_standby_streaming_delay": "30s",
    "max_standby_archive_delay": "30s",
    # Retry a lost primary every 2 s instead of 5 s: streaming resumes soon after the primary restarts.
    "wal_retrieve_retry_interval": "2s",
    "wal_receiver_status_interval": "10s",
    "recovery_target_timeline": "latest",
}


@dataclass(frozen=True)
class ReplicaStart:
    cloned: bool
    floors: Mapping[str, int]
    config: Mapping[str, str] = field(default_factory=dict)


def validate(env: Mapping[str, str]) -> ReplicaSettings:
    """Settings only (ConfigError on bad input); call it with the other checks, before touching disk and
    before the privilege drop: it also loads what the clone needs (psycopg, psutil), which may be
    unreadable once the process runs as postgres. Role primary never pays for those imports."""
    from entrypoint.apply import basebackup  # noqa: F401 - loaded now, used by prepare()

    return settings_replica.parse(env)


def import_before_drop() -> None:
    """Load every module the replica path uses after the privilege drop (the postgres flow calls this while
    still root: a venv or interpreter under /root is unreadable for postgres afterwards)."""
    from entrypoint.apply import basebackup  # noqa: F401 - psycopg, psutil, encodings.idna come with it


def primary_config(env: Mapping[str, str]) -> dict[str, str]:
    """Settings for POSTGRES_ROLE=primary: the synchronous replication switch ('' = asynchronous)."""
    return {"synchronous_standby_names": settings_replica.synchronous_standby_names(env)}


def standby_config(s: ReplicaSettings, passfile: Path, floors: Mapping[str, int]) -> dict[str, str]:
    """The standby's generated settings (pure): where to stream from, with which slot, and how."""
    primary_conninfo = conninfo.render({
        "host": s.primary_host,
        "port": str(s.primary_port),
        "user": s.user,
        "passfile": str(passfile),
        "application_name": s.application_name,
    })
    config = {"primary_conninfo": primary_conninfo, "primary_slot_name": s.slot_name, **STANDBY_SETTINGS}
    for name, default in _PG_DEFAULTS.items():
        if name in floors:
            config[name] = str(max(floors[name], default))
    return config


def check_floors(floors: Mapping[str, int], effective: Mapping[str, int]) -> None:
    """Refuse a standby whose settings are below the primary's (AUTOCONFIG invariant 4)."""
    low = [(name, effective[name], floor) for name, floor in floors.items()
           if name in effective and effective[name] < floor]
    if low:
        name, value, floor = low[0]
        others = f" (also: {', '.join(n for n, _, _ in low[1:])})" if len(low) > 1 else ""
        raise ConfigError(
            f"{name}={value} is below the primary's {floor}{others}; a hot standby needs at least the "
            f"primary's value: remove the override or set {name} >= {floor}"
        )


def prepare(env: Mapping[str, str], pgdata: Path, bindir: Path) -> ReplicaStart:
    from entrypoint.apply import basebackup

    s = settings_replica.parse(env)
    state = standby.inspect(pgdata)
    if state.leftovers:
        names = ", ".join(state.leftovers)
        log.info(COMPONENT, TOPIC, f"removing what an interrupted clone left in PGDATA: {names}")
        basebackup.remove_leftovers(pgdata, state.leftovers)
    cloned = False
    if not state.has_cluster:
        if state.foreign:
            shown = ", ".join(state.foreign[:5]) + (" ..." if len(state.foreign) > 5 else "")
            raise RuntimeFailure(
                f"PGDATA={pgdata} holds no cluster (no PG_VERSION) but is not empty ({shown}); refusing to "
                "clone over files that are not ours: move them away or use an empty volume"
            )
        info = basebackup.wait_for_primary(s)
        create = None if info.slot_exists is None else not info.slot_exists
        basebackup.clone(s, pgdata, bindir, create_slot=create)
        cloned = True
    elif not state.standby_signal:
        raise RuntimeFailure(
            f"POSTGRES_ROLE=replica but PGDATA={pgdata} holds a cluster that is not a standby (no "
            "standby.signal: promoted, or an old primary). Set POSTGRES_ROLE=primary to run it as a "
            "primary, or start from an empty volume to clone it again from PRIMARY_HOST"
        )
    else:
        log.info(COMPONENT, TOPIC, f"PGDATA holds a standby; streaming from {s.primary_host}:"
                 f"{s.primary_port} (slot {s.slot_name}, application_name {s.application_name})")
    passfile = basebackup.passfile_path(pgdata)
    basebackup.write_passfile(passfile, s)  # every start: a rotated password takes effect on restart
    data = controldata.read(pgdata, bindir)
    if not cloned:
        basebackup.check_primary(s, data.system_identifier)
    shown = ", ".join(f"{k}={v}" for k, v in data.floors.items())
    log.info(COMPONENT, TOPIC, f"primary's settings (pg_controldata): {shown}; this standby stays at or "
             "above them")
    config = standby_config(s, passfile, data.floors)
    return ReplicaStart(cloned=cloned, floors=dict(data.floors), config=config)
