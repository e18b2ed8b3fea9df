"""Property test: any printable password works end to end through the real entrypoint and PgBouncer.

Each example sets a new ``pgbouncer_auth`` password (ALTER ROLE, then a fresh ``aza-pg pgbouncer``
start that renders the auth file and .pgpass from it) and a new password for a client role, then:
the client logs in through PgBouncer (auth_query as pgbouncer_auth, so the auth file was read right),
pgbouncer_auth logs in through PgBouncer (auth file again), libpq reads the rendered .pgpass to log in
directly, and a wrong password is refused. PostgreSQL is shared; PgBouncer restarts per example (~0.3 s).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from psycopg import sql

from tests.process.bouncerharness import Bouncer, Postgres, base_dir, postgres

pytestmark = pytest.mark.process

SPECIALS = ":\\'\" #@&$%"
CLIENT = "app_user"

_printable = st.characters(categories=("L", "N", "P", "S", "Zs"), exclude_characters="\0")
passwords = st.builds(
    lambda lead, body, chunk, tail: lead + body + chunk + tail,
    st.sampled_from(["", "'", '"', " ", "\\", ":", "#"]),
    st.text(alphabet=_printable, max_size=24),
    st.text(alphabet=SPECIALS, min_size=1, max_size=8),
    st.text(alphabet=_printable, max_size=8),
)


@pytest.fixture(scope="module")
def server() -> Iterator[Postgres]:
    with postgres("initial") as pg:
        with pg.connect() as conn:
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(CLIENT)))
        yield pg


def _set_password(server: Postgres, role: str, password: str) -> None:
    with server.connect() as conn:
        conn.execute(
            sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(role), sql.Literal(password))
        )


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@example(auth_pw="'" + SPECIALS + "é", client_pw='"' + SPECIALS[::-1] + " ü", via_file=False)
@example(auth_pw='"', client_pw="'", via_file=True)
@given(auth_pw=passwords, client_pw=passwords, via_file=st.booleans())
def test_any_printable_password_logs_in_through_pgbouncer(
    server: Postgres, auth_pw: str, client_pw: str, via_file: bool
) -> None:
    _set_password(server, "pgbouncer_auth", auth_pw)
    _set_password(server, CLIENT, client_pw)
    with base_dir("aza-pgb-prop-") as base:
        extra: dict[str, str] = {}
        if via_file:
            secret = base / "auth-pass"
            secret.write_text(auth_pw + "\n")
            extra = {"PGBOUNCER_AUTH_PASS": "", "PGBOUNCER_AUTH_PASS_FILE": str(secret)}
        bouncer = Bouncer(base, server.port, auth_pw, extra)
        try:
            bouncer.start()
            with bouncer.connect(CLIENT, client_pw) as conn:
                assert conn.execute("SELECT current_user").fetchone() == (CLIENT,)
            with bouncer.connect("pgbouncer_auth", auth_pw) as conn:
                assert conn.execute("SELECT current_user").fetchone() == ("pgbouncer_auth",)
            with psycopg.connect(
                host="127.0.0.1", port=server.port, user="pgbouncer_auth", dbname="postgres",
                passfile=str(bouncer.pgpass), connect_timeout=10,
            ) as conn:
                assert conn.execute("SELECT 1").fetchone() == (1,)
            with pytest.raises(psycopg.OperationalError, match="authentication failed"):
                bouncer.connect(CLIENT, client_pw + "x")
            if len(auth_pw) >= 8:  # a short one (":") occurs in any log by chance
                assert auth_pw not in bouncer.log()
        finally:
            bouncer.stop()
    assert not Path(bouncer.pgpass).exists()  # base_dir cleaned up
