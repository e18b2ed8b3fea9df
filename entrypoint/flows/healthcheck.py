"""``aza-pg healthcheck``: is the server up and in the role this container is meant to have?

Exit status: 0 accepts queries in the expected role (single/primary: not in recovery; replica: in
recovery); 1 down (no connection, not accepting, or the query failed); 3 up but in the wrong role.
(2 is the CLI's bad-configuration status, and Docker reserves it, so it is not used for a result.)
Connects over the unix socket as POSTGRES_USER to POSTGRES_DB (peer authentication inside the
container; no password needed or read).
"""

from __future__ import annotations

from collections.abc import Mapping

from entrypoint import envparse, log
from entrypoint.settings import ROLES

UP = 0
DOWN = 1
WRONG_ROLE = 3
CONNECT_TIMEOUT = 3


def run(env: Mapping[str, str]) -> int:
    import psycopg

    from entrypoint.render import conninfo

    role = envparse.choice(env, "POSTGRES_ROLE", ROLES, "single")
    user = env.get("POSTGRES_USER") or "postgres"
    db = env.get("POSTGRES_DB") or user
    port = envparse.integer(env, "PGPORT", default=5432, low=1, high=65535)
    params = {
        "host": env.get("AZA_PG_SOCKET_DIR") or "/var/run/postgresql",
        "port": str(port),
        "user": user,
        "dbname": db,
        "connect_timeout": str(CONNECT_TIMEOUT),
        "application_name": "aza-pg-healthcheck",
    }
    try:
        with psycopg.connect(conninfo.render(params), autocommit=True) as conn:
            row = conn.execute("SELECT pg_catalog.pg_is_in_recovery()").fetchone()
    except psycopg.Error as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        log.info("POSTGRES", "HEALTHCHECK", f"down: {first}")
        return DOWN
    in_recovery = bool(row and row[0])
    expected = role == "replica"
    if in_recovery != expected:
        actual = "in recovery (a standby)" if in_recovery else "not in recovery (a primary)"
        log.info("POSTGRES", "HEALTHCHECK", f"wrong role: POSTGRES_ROLE={role} but the server is {actual}")
        return WRONG_ROLE
    log.info("POSTGRES", "HEALTHCHECK", f"ok: accepting queries as {role} in database {db}")
    return UP
