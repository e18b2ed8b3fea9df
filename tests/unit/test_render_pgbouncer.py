"""PgBouncer auth-file quoting and pgbouncer.ini rendering."""

from __future__ import annotations

import configparser
import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from entrypoint import settings_pgbouncer
from entrypoint.render import pgbouncer as render

pytestmark = pytest.mark.unit


def pgbouncer_read_auth_line(line: str) -> tuple[str, str]:
    """Read one auth-file line like PgBouncer's loader: two "..." tokens, "" meaning one quote."""

    def token(pos: int) -> tuple[str, int]:
        while pos < len(line) and line[pos] in " \t":
            pos += 1
        if pos >= len(line) or line[pos] != '"':
            raise ValueError(f"expected a quoted token at {pos} in {line!r}")
        pos += 1
        out: list[str] = []
        while True:
            if pos >= len(line):
                raise ValueError(f"unterminated token in {line!r}")
            if line[pos] == '"':
                if pos + 1 < len(line) and line[pos + 1] == '"':
                    out.append('"')
                    pos += 2
                    continue
                return "".join(out), pos + 1
            out.append(line[pos])
            pos += 1

    name, pos = token(0)
    password, pos = token(pos)
    if line[pos:].strip():
        raise ValueError(f"trailing text in {line!r}")
    return name, password


def test_quote_doubles_double_quotes_only() -> None:
    assert render.quote('a"b') == '"a""b"'
    assert render.quote("a\\b:c'd #") == '"a\\b:c\'d #"'


def test_auth_file_has_one_line_per_user() -> None:
    text = render.auth_file([("pgbouncer_auth", 'p"1'), ("pgbouncer_stats", "s")])
    assert text == '"pgbouncer_auth" "p""1"\n"pgbouncer_stats" "s"\n'


@pytest.mark.parametrize("bad", ["x\ny", "x\ry", "x\0y"])
def test_auth_file_refuses_line_breaks(bad: str) -> None:
    with pytest.raises(ValueError, match="line breaks"):
        render.quote(bad)


_printable = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=80
)
_tricky = st.text(alphabet="\"'\\:# @&$%", min_size=1, max_size=20)


@settings(max_examples=500)
@given(name=st.one_of(_printable, _tricky), password=st.one_of(_printable, _tricky, st.just('"')))
def test_auth_file_round_trip(name: str, password: str) -> None:
    text = render.auth_file([(name, password)])
    assert text.endswith("\n")
    assert text.count("\n") == 1
    assert pgbouncer_read_auth_line(text.rstrip("\n")) == (name, password)


def _cfg(**env: str) -> settings_pgbouncer.PgBouncerSettings:
    return settings_pgbouncer.parse({"PGBOUNCER_AUTH_PASS": "secret-pass", **env})


def _ini(cfg: settings_pgbouncer.PgBouncerSettings, *, auth_dbname: bool) -> configparser.ConfigParser:
    text = render.render_ini(
        cfg, auth_file="/run/x/userlist.txt", unix_socket_dir="/run/x", stats_users=("pgbouncer_stats",),
        use_auth_dbname=auth_dbname,
    )
    assert "secret-pass" not in text
    parser = configparser.ConfigParser(interpolation=None, comment_prefixes=(";", "#"))
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(text)
    return parser


def test_defaults_render_the_guides_pool() -> None:
    ini = _ini(_cfg(), auth_dbname=False)
    assert ini["databases"]["*"] == "host=postgres port=5432"
    assert "postgres" not in ini["databases"]
    bouncer = ini["pgbouncer"]
    assert dict(bouncer) == {
        "listen_addr": "0.0.0.0",  # noqa: S104
        "listen_port": "6432",
        "unix_socket_dir": "/run/x",
        "auth_type": "scram-sha-256",
        "auth_file": "/run/x/userlist.txt",
        "auth_user": "pgbouncer_auth",
        "auth_query": "SELECT usename, passwd FROM pgbouncer.get_auth($1)",
        "pool_mode": "transaction",
        "max_client_conn": "200",
        "default_pool_size": "25",
        "min_pool_size": "0",
        "reserve_pool_size": "5",
        "reserve_pool_timeout": "5",
        "max_db_connections": "0",
        "server_idle_timeout": "600",
        "server_lifetime": "3600",
        "server_connect_timeout": "15",
        "query_wait_timeout": "120",
        "client_idle_timeout": "0",
        "server_tls_sslmode": "prefer",
        "admin_users": "postgres",
        "stats_users": "pgbouncer_stats",
        "ignore_startup_parameters": "extra_float_digits",
    }


def test_auth_dbname_needs_an_explicit_database_entry() -> None:
    ini = _ini(_cfg(POSTGRES_HOST="db.internal", POSTGRES_PORT="5433"), auth_dbname=True)
    assert ini["pgbouncer"]["auth_dbname"] == "postgres"
    assert ini["databases"]["postgres"] == "host=db.internal port=5433 dbname=postgres"
    assert ini["databases"]["*"] == "host=db.internal port=5433"


def test_values_from_the_environment_reach_the_ini() -> None:
    cfg = _cfg(
        PGBOUNCER_POOL_MODE="Session", PGBOUNCER_MAX_CLIENT_CONN="1000", PGBOUNCER_DEFAULT_POOL_SIZE="40",
        PGBOUNCER_SERVER_SSLMODE="verify-full", PGBOUNCER_SERVER_SSL_CA_FILE="/certs/ca.crt",
        PGBOUNCER_ADMIN_USERS="postgres, admin", PGBOUNCER_LISTEN_ADDR="127.0.0.1,::1",
    )
    bouncer = _ini(cfg, auth_dbname=False)["pgbouncer"]
    assert bouncer["pool_mode"] == "session"
    assert bouncer["max_client_conn"] == "1000"
    assert bouncer["default_pool_size"] == "40"
    assert bouncer["server_tls_sslmode"] == "verify-full"
    assert bouncer["server_tls_ca_file"] == "/certs/ca.crt"
    assert bouncer["admin_users"] == "postgres,admin"
    assert bouncer["listen_addr"] == "127.0.0.1,::1"


def test_empty_user_lists_are_left_out() -> None:
    cfg = dataclasses.replace(_cfg(), admin_users=())
    text = render.render_ini(
        cfg, auth_file="/a", unix_socket_dir="/r", stats_users=(), use_auth_dbname=False
    )
    assert "stats_users" not in text
    assert "admin_users" not in text
    assert "ignore_startup_parameters = extra_float_digits\n" in text
