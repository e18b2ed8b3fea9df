"""The pgbouncer_auth role and pgbouncer.get_auth, as the postgres entrypoint installs them."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from psycopg import errors, sql

from entrypoint.sql import pgbouncer_auth
from tests.process.bouncerharness import Postgres, postgres

pytestmark = pytest.mark.process

AUTH_PASS = "sql auth:pw'\"\\"
OTHER_PASS = "other-pw"


@pytest.fixture(scope="module")
def server() -> Iterator[Postgres]:
    with postgres(AUTH_PASS) as pg:
        with pg.connect() as conn:
            conn.execute(sql.SQL("CREATE ROLE other LOGIN PASSWORD {}").format(sql.Literal(OTHER_PASS)))
            conn.execute("CREATE ROLE nologin_role NOLOGIN PASSWORD 'x'")
        yield pg


def _as(server: Postgres, user: str, password: str) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(host="127.0.0.1", port=server.port, user=user, password=password,
                           dbname="postgres", autocommit=True, connect_timeout=10)


def test_statements_are_idempotent_and_keep_the_password(server: Postgres) -> None:
    for db in ("postgres", "template1"):
        with server.connect(db) as conn:
            for _ in range(2):
                for stmt in pgbouncer_auth.statements():
                    conn.execute(stmt)
    with _as(server, "pgbouncer_auth", AUTH_PASS) as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("pgbouncer_auth",)


def test_password_statement_is_third(server: Postgres) -> None:
    # the postgres entrypoint slices statements(pw)[:3] for a password rotation
    with server.connect() as conn:
        texts = [stmt.as_string(conn) for stmt in pgbouncer_auth.statements("p'w")]
    assert "CREATE ROLE" in texts[0]
    assert texts[2] == "ALTER ROLE \"pgbouncer_auth\" PASSWORD 'p''w'"
    assert all("PASSWORD" not in text for text in texts[3:])


def test_only_pgbouncer_auth_may_look_up_secrets(server: Postgres) -> None:
    with _as(server, "pgbouncer_auth", AUTH_PASS) as conn:
        rows = conn.execute("SELECT usename, passwd FROM pgbouncer.get_auth('other')").fetchall()
        assert len(rows) == 1
        assert rows[0][0] == "other"
        assert str(rows[0][1]).startswith("SCRAM-SHA-256$")
        assert conn.execute("SELECT * FROM pgbouncer.get_auth('nologin_role')").fetchall() == []
        assert conn.execute("SELECT * FROM pgbouncer.get_auth('no such role')").fetchall() == []
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute("SELECT rolpassword FROM pg_catalog.pg_authid")
    with _as(server, "other", OTHER_PASS) as conn, pytest.raises(errors.InsufficientPrivilege):
        conn.execute("SELECT * FROM pgbouncer.get_auth('postgres')")


def test_function_is_security_definer_with_a_pinned_search_path(server: Postgres) -> None:
    with server.connect() as conn:
        row = conn.execute(
            "SELECT p.prosecdef, p.proconfig, r.rolsuper FROM pg_proc p JOIN pg_namespace n "
            "ON n.oid = p.pronamespace JOIN pg_roles r ON r.oid = p.proowner "
            "WHERE n.nspname = 'pgbouncer' AND p.proname = 'get_auth'"
        ).fetchone()
        role = conn.execute(
            "SELECT rolcanlogin, rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls "
            "FROM pg_roles WHERE rolname = 'pgbouncer_auth'"
        ).fetchone()
    assert row == (True, ["search_path=pg_catalog"], True)
    assert role == (True, False, False, False, False, False)


def test_a_hijacking_operator_in_public_does_not_change_the_lookup(server: Postgres) -> None:
    # Without the function's own search_path, a caller putting public first would make the body's
    # `rolname = p_usename` use this always-true operator and return every role's secret.
    with server.connect() as conn:
        conn.execute("CREATE FUNCTION public.aza_evil_eq(name, text) RETURNS boolean LANGUAGE sql "
                     "IMMUTABLE AS 'SELECT true'")
        conn.execute("CREATE OPERATOR public.= "
                     "(LEFTARG = name, RIGHTARG = text, FUNCTION = public.aza_evil_eq)")
    try:
        with _as(server, "pgbouncer_auth", AUTH_PASS) as conn:
            conn.execute("SET search_path = public, pg_catalog")
            assert conn.execute("SELECT 'a'::name = 'b'::text").fetchone() == (True,)  # the trap is armed
            rows = conn.execute("SELECT usename FROM pgbouncer.get_auth('other')").fetchall()
        assert rows == [("other",)]
    finally:
        with server.connect() as conn:
            conn.execute("DROP OPERATOR public.= (name, text)")
            conn.execute("DROP FUNCTION public.aza_evil_eq(name, text)")
