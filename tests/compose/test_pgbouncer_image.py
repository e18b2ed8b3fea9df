"""The PgBouncer image (PgBouncer 1.24, so ``auth_dbname``) in front of the postgres image.

Two containers on a test-owned network, PgBouncer published on 127.0.0.1 only. Checks what the process
tests cannot on this host's PgBouncer 1.18: with ``auth_dbname`` even a database created from
template0 (which has no ``pgbouncer.get_auth``) is reachable through PgBouncer without a restart.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator

import psycopg
import pytest
from psycopg import sql

from tests.compose.dockerlib import HARD_PASSWORD, docker, free_port, image_name, run, unique, wait_until

pytestmark = pytest.mark.compose

AUTH_PASS = f"{HARD_PASSWORD} auth"
USER_PASS = f"'{HARD_PASSWORD} user"


@pytest.fixture
def pair(images: Callable[..., None]) -> Iterator[tuple[str, str, int]]:
    images(["postgres", "pgbouncer"])
    network, pg, bouncer = unique("azatest-pgb-net-"), unique("azatest-pgb-pg-"), unique("azatest-pgb-")
    port = free_port()
    docker("network", "create", network, timeout=60)
    try:
        docker("run", "-d", "--name", pg, "--network", network, "--network-alias", "postgres",
               "-e", f"POSTGRES_PASSWORD={HARD_PASSWORD}", "-e", f"PGBOUNCER_AUTH_PASS={AUTH_PASS}",
               image_name("postgres"), timeout=120)
        wait_until("postgres healthy", lambda: docker("exec", pg, "aza-pg", "healthcheck", check=False,
                                                        timeout=30).returncode == 0, timeout=180)
        docker("run", "-d", "--name", bouncer, "--network", network, "-p", f"127.0.0.1:{port}:6432",
               "-e", f"PGBOUNCER_AUTH_PASS={AUTH_PASS}", image_name("pgbouncer"), timeout=120)
        wait_until("PgBouncer up", lambda: "process up" in docker("logs", bouncer, check=False).stdout
                   + docker("logs", bouncer, check=False).stderr, timeout=60)
        yield pg, bouncer, port
    finally:
        docker("rm", "-f", "-v", pg, bouncer, timeout=120, check=False)
        docker("network", "rm", network, timeout=60, check=False)


def _logs(container: str) -> str:
    proc = docker("logs", container, check=False)
    return proc.stdout + proc.stderr


def test_image_serves_every_database_and_stops_on_sigterm(pair: tuple[str, str, int]) -> None:
    _pg, bouncer, port = pair
    log = _logs(bouncer)
    assert "PgBouncer 1.24" in log
    assert "auth_dbname=postgres" in log
    assert AUTH_PASS not in log

    # The guide's health check, from the host.
    check = run(["psql", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-d", "postgres", "-c",
                 "SELECT 1;"], env={"PGPASSWORD": HARD_PASSWORD}, timeout=60)
    assert "(1 row)" in check.stdout

    assert docker("exec", bouncer, "ls", "-l", "/tmp/.pgpass").stdout.startswith("-rw------- ")

    # A user and a database made after PgBouncer started; the database from template0 has no lookup
    # function, so only auth_dbname makes it reachable.
    with psycopg.connect(host="127.0.0.1", port=port, user="postgres", password=HARD_PASSWORD,
                         dbname="postgres", autocommit=True, connect_timeout=20) as conn:
        conn.execute(sql.SQL("CREATE ROLE late LOGIN PASSWORD {}").format(sql.Literal(USER_PASS)))
        conn.execute("CREATE DATABASE late_t0 OWNER late TEMPLATE template0")
    with psycopg.connect(host="127.0.0.1", port=port, user="late", password=USER_PASS, dbname="late_t0",
                         autocommit=True, connect_timeout=20) as conn:
        assert conn.execute("SELECT current_user, current_database()").fetchone() == ("late", "late_t0")
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(host="127.0.0.1", port=port, user="late", password="wrong", dbname="late_t0",
                        connect_timeout=20)

    # The admin console: with auth_dbname, an admin user from PostgreSQL logs in with its own password.
    with psycopg.connect(host="127.0.0.1", port=port, user="postgres", password=HARD_PASSWORD,
                         dbname="pgbouncer", autocommit=True, connect_timeout=20) as admin:
        pools = admin.execute("SHOW POOLS").fetchall()
    assert any(row[0] == "late_t0" and row[1] == "late" for row in pools), pools

    # pgbouncer is PID 1 (exec), so `docker stop` reaches it directly and it exits at once.
    started = time.monotonic()
    docker("stop", "-t", "20", bouncer, timeout=60)
    assert time.monotonic() - started < 10
    # PgBouncer >= 1.23 treats SIGTERM as a safe shutdown ("got SIGTERM, ..."), 1.18 as a fast exit.
    assert re.search(r"got SIG(TERM|INT)", _logs(bouncer)), _logs(bouncer)[-2000:]
