"""The real ``aza-pg pgbouncer`` entrypoint with PgBouncer and PostgreSQL on 127.0.0.1."""

from __future__ import annotations

import os
import pwd
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from entrypoint.render.pgbouncer import AUTH_QUERY
from tests.process.bouncerharness import PSQL, Bouncer, Postgres, base_dir, postgres, run_entrypoint

pytestmark = pytest.mark.process

AUTH_PASS = "auth:pa\\ss'\"# word"
LATE_PW = "late:pw\\'\""


@pytest.fixture(scope="module")
def server() -> Iterator[Postgres]:
    with postgres(AUTH_PASS) as pg:
        yield pg


@pytest.fixture
def bouncer(server: Postgres) -> Iterator[Bouncer]:
    with base_dir() as base:
        b = Bouncer(base, server.port, AUTH_PASS, {"PGBOUNCER_STATS_PASSWORD": 'st"ats pw'})
        try:
            b.start()
            yield b
        finally:
            b.stop()


def test_guide_health_check_through_pgbouncer(server: Postgres, bouncer: Bouncer) -> None:
    env = {"PATH": os.environ["PATH"], "PGPASSWORD": server.password}
    # the guide: PGPASSWORD=... psql -h localhost -p 6432 -U postgres -d postgres -c "SELECT 1;"
    argv = [PSQL, "-h", "localhost", "-p", str(bouncer.port), "-U", "postgres", "-d", "postgres"]
    argv += ["-c", "SELECT 1;"]
    result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 0, result.stderr
    assert "(1 row)" in result.stdout
    wrong = subprocess.run(
        argv, env={**env, "PGPASSWORD": "wrong"}, capture_output=True, text=True, timeout=30, check=False
    )
    assert wrong.returncode == 2
    assert "authentication failed" in wrong.stderr


def test_user_and_database_created_later_are_reachable(server: Postgres, bouncer: Bouncer) -> None:
    with server.connect() as conn:
        conn.execute("DROP DATABASE IF EXISTS late_db")
        conn.execute("DROP ROLE IF EXISTS late_user")
        conn.execute(sql.SQL("CREATE ROLE late_user LOGIN PASSWORD {}").format(sql.Literal(LATE_PW)))
        conn.execute("CREATE DATABASE late_db OWNER late_user")
    with bouncer.connect("late_user", LATE_PW, "late_db") as conn:
        row = conn.execute("SELECT current_user, current_database()").fetchone()
    assert row == ("late_user", "late_db")


def test_expired_password_is_refused(server: Postgres, bouncer: Bouncer) -> None:
    with server.connect() as conn:
        conn.execute("DROP ROLE IF EXISTS expiring")
        conn.execute("CREATE ROLE expiring LOGIN PASSWORD 'exp-pw' VALID UNTIL 'infinity'")
    with bouncer.connect("expiring", "exp-pw") as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    with server.connect() as conn:
        conn.execute("ALTER ROLE expiring VALID UNTIL '2000-01-01'")
    # PgBouncer 1.18 says "no such user" when the lookup returns no row; later releases say less.
    with pytest.raises(psycopg.OperationalError, match=r"no such user|authentication failed"):
        bouncer.connect("expiring", "exp-pw")


def test_files_are_0600_and_owned_by_the_daemon_user(bouncer: Bouncer) -> None:
    listing = subprocess.run(["ls", "-l", str(bouncer.pgpass)], capture_output=True, text=True, check=True)
    assert listing.stdout.startswith("-rw------- ")
    daemon = pwd.getpwnam("postgres")
    for path in (bouncer.pgpass, bouncer.run_dir / "userlist.txt", bouncer.run_dir / "pgbouncer.ini"):
        info = path.stat()
        assert stat.S_IMODE(info.st_mode) == 0o600, path
        assert info.st_uid == daemon.pw_uid, path
    assert stat.S_IMODE(bouncer.run_dir.stat().st_mode) == 0o700
    auth = (bouncer.run_dir / "userlist.txt").read_text()
    assert auth == '"pgbouncer_auth" "auth:pa\\ss\'""# word"\n"pgbouncer_stats" "st""ats pw"\n'
    expected = f"127.0.0.1:{bouncer.server_port}:*:pgbouncer_auth:auth\\:pa\\\\ss'\"# word\n"
    assert bouncer.pgpass.read_text() == expected


def test_pgpass_is_what_libpq_reads(server: Postgres, bouncer: Bouncer) -> None:
    with psycopg.connect(
        host="127.0.0.1", port=server.port, user="pgbouncer_auth", dbname="postgres",
        passfile=str(bouncer.pgpass), connect_timeout=10,
    ) as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("pgbouncer_auth",)


def test_exec_drops_root_scrubs_secrets_and_logs_no_secret(bouncer: Bouncer) -> None:
    assert bouncer.proc is not None
    pid = bouncer.proc.pid
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    assert cmdline[0].endswith(b"pgbouncer")  # the entrypoint became pgbouncer: same pid, signals go to it
    status = Path(f"/proc/{pid}/status").read_text()
    uid_line = next(line for line in status.splitlines() if line.startswith("Uid:"))
    assert uid_line.split()[1] == str(pwd.getpwnam("postgres").pw_uid)
    environ = Path(f"/proc/{pid}/environ").read_bytes().decode(errors="replace")
    assert "PGBOUNCER_AUTH_PASS" not in environ
    assert "PGBOUNCER_STATS_PASSWORD" not in environ
    assert AUTH_PASS not in environ
    log = bouncer.log()
    assert "[PGBOUNCER] [ENTRYPOINT] Rendered" in log
    assert "pool_mode transaction, max_client_conn 200, default_pool_size 25" in log
    assert AUTH_PASS not in log
    assert "st\"ats pw" not in log


def test_stats_user_reads_the_admin_console(bouncer: Bouncer) -> None:
    with bouncer.connect("pgbouncer_stats", 'st"ats pw', "pgbouncer") as conn:
        rows = conn.execute("SHOW POOLS").fetchall()
    assert isinstance(rows, list)
    with pytest.raises(psycopg.OperationalError):
        bouncer.connect("pgbouncer_stats", "wrong", "pgbouncer")


def test_max_client_conn_is_enforced(server: Postgres) -> None:
    with base_dir() as base:
        b = Bouncer(base, server.port, AUTH_PASS, {"PGBOUNCER_MAX_CLIENT_CONN": "5"})
        held: list[psycopg.Connection[tuple[object, ...]]] = []
        try:
            b.start()
            for _ in range(5):
                held.append(b.connect("postgres", server.password))
            refused = r"no more connections allowed \(max_client_conn\)"
            with pytest.raises(psycopg.OperationalError, match=refused):
                b.connect("postgres", server.password)
            assert held[0].execute("SELECT 1").fetchone() == (1,)
        finally:
            for conn in held:
                conn.close()
            b.stop()


def test_sigterm_reaches_pgbouncer(server: Postgres) -> None:
    with base_dir() as base:
        b = Bouncer(base, server.port, AUTH_PASS)
        try:
            b.start()
            assert b.proc is not None
            started = time.monotonic()
            b.proc.terminate()
            b.proc.wait(timeout=10)
            assert time.monotonic() - started < 5
            assert "got SIGTERM" in b.log()
        finally:
            b.stop()


def test_mounted_ini_is_used_as_is(server: Postgres) -> None:
    with base_dir() as base:
        port = Bouncer(base, server.port, AUTH_PASS).port
        user_ini = base / "user.ini"
        run_dir = base / "bouncer-run"
        lines = [
            "[databases]", f"* = host=127.0.0.1 port={server.port}", "[pgbouncer]", "listen_addr = 127.0.0.1",
            f"listen_port = {port}", "unix_socket_dir =", "auth_type = scram-sha-256",
            f"auth_file = {run_dir}/userlist.txt", "auth_user = pgbouncer_auth",
            "auth_query = " + AUTH_QUERY, "max_client_conn = 2",
        ]
        user_ini.write_text("\n".join(lines) + "\n")
        user_ini.chmod(0o644)
        b = Bouncer(base, server.port, AUTH_PASS, {"PGBOUNCER_CONFIG_PATH": str(user_ini)}, port=port)
        try:
            b.start()
            assert f"Using the mounted {user_ini} as is" in b.log()
            assert not (run_dir / "pgbouncer.ini").exists()
            assert (run_dir / "userlist.txt").exists()
            with b.connect("postgres", server.password) as one, b.connect("postgres", server.password):
                assert one.execute("SELECT 1").fetchone() == (1,)
                # the user's max_client_conn = 2, not our default of 200
                with pytest.raises(psycopg.OperationalError, match="max_client_conn"):
                    b.connect("postgres", server.password)
        finally:
            b.stop()


BAD_INPUTS = [
    {"PGBOUNCER_AUTH_PASS": ""},
    {"PGBOUNCER_AUTH_PASS": "two\nlines"},
    {"PGBOUNCER_AUTH_PASS": "x" * 2000},
    {"PGBOUNCER_AUTH_PASS_FILE": "/nonexistent/secret"},
    {"PGBOUNCER_STATS_PASSWORD": "a\rb"},
    {"POSTGRES_HOST": "two words"},
    {"POSTGRES_PORT": "99999"},
    {"POSTGRES_PORT": "fifty"},
    {"PGBOUNCER_PORT": "0"},
    {"PGBOUNCER_LISTEN_ADDR": "127.0.0.1;rm -rf"},
    {"PGBOUNCER_POOL_MODE": "transactions"},
    {"PGBOUNCER_MAX_CLIENT_CONN": "-1"},
    {"PGBOUNCER_MAX_CLIENT_CONN": "1e3"},
    {"PGBOUNCER_DEFAULT_POOL_SIZE": "0"},
    {"PGBOUNCER_MIN_POOL_SIZE": "100"},
    {"PGBOUNCER_RESERVE_POOL_SIZE": "lots"},
    {"PGBOUNCER_QUERY_WAIT_TIMEOUT": "2m"},
    {"PGBOUNCER_SERVER_CONNECT_TIMEOUT": "0"},
    {"PGBOUNCER_SERVER_SSLMODE": "yes"},
    {"PGBOUNCER_SERVER_SSLMODE": "verify-ca"},
    {"PGBOUNCER_SERVER_SSLMODE": "verify-full", "PGBOUNCER_SERVER_SSL_CA_FILE": "/nonexistent/ca.crt"},
    {"PGBOUNCER_ADMIN_USERS": "postgres;admin"},
    {"PGBOUNCER_RUN_DIR": "tmp/relative"},
]


@pytest.mark.parametrize("bad", BAD_INPUTS, ids=[list(b)[-1] for b in BAD_INPUTS])
def test_bad_input_exits_2_with_one_line_and_writes_nothing(bad: dict[str, str]) -> None:
    with base_dir() as base:
        b = Bouncer(base, 5432, "good-pass", bad)
        env = b.env()
        if "PGBOUNCER_AUTH_PASS_FILE" in bad:
            del env["PGBOUNCER_AUTH_PASS"]
        result = run_entrypoint(env)
        assert result.returncode == 2, result
        lines = result.stderr.splitlines()
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith("[PGBOUNCER] [FATAL] ")
        assert list(bad)[-1] in lines[0]  # the line names the offending variable
        assert result.stdout == ""
        assert not b.run_dir.exists()
        assert not b.pgpass.exists()
        assert "x" * 50 not in result.stderr
