"""Passwords with every awkward character work for each managed role, rotate on restart, and never leak
into a log line, an argv or the postmaster's environment."""

from __future__ import annotations

import os
from pathlib import Path

import psycopg
import pytest

from tests.process.pgharness import Instance

pytestmark = pytest.mark.process

NASTY = ": \\ ' \" space # @ & $ % é日本 ü\u00a0end"
SUPER = "su" + NASTY
REPL = "repl" + NASTY
BOUNCER = "pgb" + NASTY
EXPORTER = "exp" + NASTY


def _all_secrets(*extra: str) -> list[str]:
    return [SUPER, REPL, BOUNCER, EXPORTER, *extra]


def _postgres_pids(root_pid: int) -> list[int]:
    """The postmaster and all its children."""
    pids = [root_pid]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if ppid == root_pid:
                pids.append(int(entry.name))
    return pids


def _assert_no_leak(pg: Instance, secrets: list[str]) -> None:
    log = pg.log_text()
    for pid in _postgres_pids(pg.pid):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
            environ = Path(f"/proc/{pid}/environ").read_bytes().decode(errors="replace")
        except OSError:
            continue
        for secret in secrets:
            assert secret not in cmdline, pid
            assert secret not in environ, pid
    environ = Path(f"/proc/{pg.pid}/environ").read_bytes().decode(errors="replace")
    for secret in secrets:
        assert secret not in log
        for piece in (secret[:6], secret[-8:]):  # no fragment of a password either
            assert f"PASSWORD={piece}" not in environ
    assert "POSTGRES_PASSWORD" not in environ
    assert "PG_REPLICATION_PASSWORD" not in environ
    assert "PGBOUNCER_AUTH_PASS" not in environ
    # state file keeps fingerprints only
    state = (pg.pgdata / "aza-pg/state.json").read_text()
    for secret in secrets:
        assert secret not in state


def _can_login(pg: Instance, user: str, password: str, *, replication: bool = False) -> bool:
    dsn = pg.dsn(user=user, password=password, dbname="postgres")
    if replication:
        dsn += " replication=true"
    try:
        with psycopg.connect(dsn, autocommit=True):
            return True
    except psycopg.OperationalError as exc:
        if "password authentication failed" not in str(exc):
            raise
        return False


def test_awkward_passwords_work_for_every_role_rotate_and_never_leak(tmp_path: Path) -> None:
    secret_dir = Path("/tmp") / f"aza-pg-secret-{os.getpid()}"
    secret_dir.mkdir(mode=0o700, exist_ok=True)
    try:
        pw_file = secret_dir / "superuser"
        pw_file.write_text(SUPER + "\n")  # exactly one trailing newline is stripped
        env = {
            "POSTGRES_PASSWORD": "",
            "POSTGRES_PASSWORD_FILE": str(pw_file),
            "POSTGRES_ROLE": "primary",
            "PG_REPLICATION_PASSWORD": REPL,
            "PGBOUNCER_AUTH_PASS": BOUNCER,
            "POSTGRES_EXPORTER_PASSWORD": EXPORTER,
        }
        with Instance.create(env) as pg:
            pg.start()
            assert _can_login(pg, "postgres", SUPER)
            assert _can_login(pg, "replicator", REPL, replication=True)
            assert _can_login(pg, "pgbouncer_auth", BOUNCER)
            assert _can_login(pg, "postgres_exporter", EXPORTER)
            assert not _can_login(pg, "postgres", SUPER + "x")
            rows = pg.query("SELECT slot_name FROM pg_replication_slots", password=SUPER)
            assert rows == [("replica1_slot",)]
            roles = pg.query(
                "SELECT rolname, rolsuper, rolreplication FROM pg_roles WHERE rolname IN "
                "('replicator', 'pgbouncer_auth', 'postgres_exporter') ORDER BY 1",
                password=SUPER,
            )
            assert roles == [
                ("pgbouncer_auth", False, False),
                ("postgres_exporter", False, False),
                ("replicator", False, True),
            ]
            member = pg.query(
                "SELECT pg_has_role('postgres_exporter', 'pg_monitor', 'member')", password=SUPER
            )
            assert member == [(True,)]
            for db in ("postgres", "template1"):
                fn = pg.query(
                    "SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
                    "WHERE n.nspname = 'pgbouncer' AND p.proname = 'get_auth'",
                    password=SUPER,
                    dbname=db,
                )
                assert fn == [(1,)]
            _assert_no_leak(pg, _all_secrets())
            pg.stop()

            # rotation: every password changes in the environment; restart; new ones work, old ones do not
            new = {
                k: "new-" + v for k, v in (("su", SUPER), ("repl", REPL), ("pgb", BOUNCER), ("exp", EXPORTER))
            }
            pw_file.write_text(new["su"] + "\n")
            pg.env.update(
                {
                    "PG_REPLICATION_PASSWORD": new["repl"],
                    "PGBOUNCER_AUTH_PASS": new["pgb"],
                    "POSTGRES_EXPORTER_PASSWORD": new["exp"],
                }
            )
            pg.start()
            assert "setting the password of" in pg.start_output()
            assert _can_login(pg, "postgres", new["su"])
            assert not _can_login(pg, "postgres", SUPER)
            assert _can_login(pg, "replicator", new["repl"], replication=True)
            assert not _can_login(pg, "replicator", REPL, replication=True)
            assert _can_login(pg, "pgbouncer_auth", new["pgb"])
            assert _can_login(pg, "postgres_exporter", new["exp"])
            _assert_no_leak(pg, _all_secrets(*new.values()))
            pg.stop()

            # unchanged passwords: no single-user step on the next start
            pg.start()
            assert "setting the password of" not in pg.start_output()
            assert _can_login(pg, "postgres", new["su"])
    finally:
        import shutil

        shutil.rmtree(secret_dir, ignore_errors=True)


def test_pgbouncer_auth_added_to_an_existing_cluster_gets_role_and_function() -> None:
    with Instance.create() as pg:
        pg.start()
        pg.stop()
        pg.env["PGBOUNCER_AUTH_PASS"] = BOUNCER
        pg.start()
        assert _can_login(pg, "pgbouncer_auth", BOUNCER)
        for db in ("postgres", "template1"):
            rows = pg.query(
                "SELECT has_function_privilege('pgbouncer_auth', 'pgbouncer.get_auth(text)', "
                "'EXECUTE'), has_function_privilege('public', 'pgbouncer.get_auth(text)', 'EXECUTE')",
                dbname=db,
            )
            assert rows == [(True, False)]
