"""``aza-pg promote``: turn this running standby into a primary, wait until it takes writes, and say
what must happen to the old primary (two primaries taking writes is a split brain that cannot be merged).

Run inside the replica's container (``docker exec postgres-replica aza-pg promote``). The server is found
through ``$PGDATA/postmaster.pid`` (port and socket directory), so it works whatever port it listens on.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from entrypoint import envparse, log
from entrypoint.apply import promote
from entrypoint.detect import standby
from entrypoint.errors import RuntimeFailure

COMPONENT = "POSTGRES"
TOPIC = "ENTRYPOINT"
DEFAULT_PGDATA = "/var/lib/postgresql/data"


def _server(env: Mapping[str, str], pgdata: Path) -> promote.LocalServer:
    address = standby.postmaster_address(pgdata)
    if address is None:
        raise RuntimeFailure(f"no running server: {pgdata}/postmaster.pid is missing (is PGDATA right?)")
    user = env.get("POSTGRES_USER", "").strip() or "postgres"
    dbname = env.get("POSTGRES_DB", "").strip() or user
    host = address.socket_dir or "127.0.0.1"
    return promote.LocalServer(host=host, port=address.port, user=user, dbname=dbname,
                               password=envparse.secret(env, "POSTGRES_PASSWORD"))


def split_brain_warning(old_primary: str) -> str:
    return (
        f"the old primary ({old_primary}) must never take writes again: stop it now and keep it stopped "
        "(two primaries taking writes is a split brain; their changes cannot be merged). To reuse it, "
        "empty its volume and start it with POSTGRES_ROLE=replica and PRIMARY_HOST pointing at this "
        "server (or rewind it with pg_rewind first). Set POSTGRES_ROLE=primary on this server before its "
        "next restart, and point clients and PgBouncer (POSTGRES_HOST) here."
    )


def run(env: Mapping[str, str]) -> int:
    pgdata = Path(env.get("PGDATA", "").strip() or DEFAULT_PGDATA)
    timeout = envparse.integer(env, "PROMOTE_TIMEOUT", default=60, low=1, high=3600) or 60
    server = _server(env, pgdata)
    host = env.get("PRIMARY_HOST", "").strip()
    old_primary = f"{host}:{env.get('PRIMARY_PORT', '').strip() or 5432}" if host else "PRIMARY_HOST"
    if not promote.in_recovery(server):
        log.info(COMPONENT, TOPIC, "this server is not in recovery: it already is a primary; nothing to do")
        return 0
    log.info(COMPONENT, TOPIC, f"promoting the standby in {pgdata} (waiting up to {timeout}s)")
    promote.promote(server, timeout)
    attempts = promote.wait_writable(server, timeout)
    log.info(COMPONENT, TOPIC, f"promoted: pg_is_in_recovery() is false and writes work "
             f"(checked in {attempts} attempt{'s' if attempts != 1 else ''})")
    log.warn(COMPONENT, TOPIC, split_brain_warning(old_primary))
    return 0
