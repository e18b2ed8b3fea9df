"""Environment -> PgBouncer settings: defaults, accepted values and one clear error per bad input."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import pytest

from entrypoint.errors import ConfigError
from entrypoint.settings_pgbouncer import parse

pytestmark = pytest.mark.unit

BASE = {"PGBOUNCER_AUTH_PASS": "auth-pass"}


def test_defaults() -> None:
    cfg = parse(BASE)
    assert (cfg.server_host, cfg.server_port) == ("postgres", 5432)
    assert (cfg.listen_addr, cfg.listen_port) == ("0.0.0.0", 6432)  # noqa: S104
    assert cfg.pool_mode == "transaction"
    assert (cfg.max_client_conn, cfg.default_pool_size, cfg.reserve_pool_size) == (200, 25, 5)
    assert cfg.server_sslmode == "prefer"
    assert cfg.admin_users == ("postgres",)
    assert cfg.stats_password is None
    assert cfg.pgpass_path == PurePosixPath("/tmp/.pgpass")
    assert cfg.run_dir == PurePosixPath("/tmp/pgbouncer")
    assert cfg.config_path == PurePosixPath("/etc/pgbouncer/pgbouncer.ini")


def test_secrets_from_files(tmp_path: Path) -> None:
    auth = tmp_path / "auth"
    auth.write_text('p"a:s\\s\n')
    stats = tmp_path / "stats"
    stats.write_text("stats pass\n")
    cfg = parse({"PGBOUNCER_AUTH_PASS_FILE": str(auth), "PGBOUNCER_STATS_PASSWORD_FILE": str(stats)})
    assert cfg.auth_password == 'p"a:s\\s'
    assert cfg.stats_password == "stats pass"


def test_ipv6_and_names_are_accepted() -> None:
    cfg = parse({**BASE, "POSTGRES_HOST": "postgres-primary", "PGBOUNCER_LISTEN_ADDR": "::1, 127.0.0.1"})
    assert cfg.server_host == "postgres-primary"
    assert cfg.listen_addr == "::1,127.0.0.1"
    assert parse({**BASE, "PGBOUNCER_LISTEN_ADDR": "*"}).listen_addr == "*"


BAD = [
    ({"PGBOUNCER_AUTH_PASS": ""}, "PGBOUNCER_AUTH_PASS (or PGBOUNCER_AUTH_PASS_FILE) is required"),
    ({"PGBOUNCER_AUTH_PASS": "a\nb"}, "PGBOUNCER_AUTH_PASS contains a line break"),
    ({"PGBOUNCER_AUTH_PASS": "x" * 997}, "longer than 996 bytes"),
    (
        {"PGBOUNCER_AUTH_PASS": "", "PGBOUNCER_AUTH_PASS_FILE": "/nonexistent/s"},
        "PGBOUNCER_AUTH_PASS_FILE=/nonexistent/s: cannot read",
    ),
    ({"PGBOUNCER_STATS_PASSWORD": "a\rb"}, "PGBOUNCER_STATS_PASSWORD contains a line break"),
    ({"POSTGRES_HOST": "bad host"}, "POSTGRES_HOST='bad host' is not a host name"),
    ({"POSTGRES_HOST": "host=x"}, "POSTGRES_HOST='host=x'"),
    ({"POSTGRES_PORT": "0"}, "POSTGRES_PORT=0 is out of range"),
    ({"POSTGRES_PORT": "54x"}, "POSTGRES_PORT='54x' is not a whole number"),
    ({"PGBOUNCER_PORT": "70000"}, "PGBOUNCER_PORT=70000 is out of range"),
    ({"PGBOUNCER_LISTEN_ADDR": "0.0.0.0;rm"}, "PGBOUNCER_LISTEN_ADDR='0.0.0.0;rm'"),
    ({"PGBOUNCER_POOL_MODE": "txn"}, "PGBOUNCER_POOL_MODE='txn' is not valid; use one of: transaction"),
    ({"PGBOUNCER_MAX_CLIENT_CONN": "-5"}, "PGBOUNCER_MAX_CLIENT_CONN='-5' is not a whole number"),
    ({"PGBOUNCER_DEFAULT_POOL_SIZE": "0"}, "PGBOUNCER_DEFAULT_POOL_SIZE=0 is out of range"),
    ({"PGBOUNCER_MIN_POOL_SIZE": "30"}, "PGBOUNCER_MIN_POOL_SIZE=30 is larger than"),
    ({"PGBOUNCER_RESERVE_POOL_TIMEOUT": "1.5"}, "PGBOUNCER_RESERVE_POOL_TIMEOUT='1.5'"),
    ({"PGBOUNCER_SERVER_IDLE_TIMEOUT": "forever"}, "PGBOUNCER_SERVER_IDLE_TIMEOUT='forever'"),
    ({"PGBOUNCER_SERVER_SSLMODE": "on"}, "PGBOUNCER_SERVER_SSLMODE='on' is not valid"),
    ({"PGBOUNCER_SERVER_SSLMODE": "verify-full"}, "needs PGBOUNCER_SERVER_SSL_CA_FILE"),
    ({"PGBOUNCER_SERVER_SSL_CA_FILE": "ca.crt"}, "PGBOUNCER_SERVER_SSL_CA_FILE='ca.crt' must be an absolute"),
    ({"PGBOUNCER_ADMIN_USERS": "postgres admin"}, "PGBOUNCER_ADMIN_USERS='postgres admin'"),
    ({"PGBOUNCER_ADMIN_USERS": "a" * 64}, "at most 63 bytes"),
    ({"PGBOUNCER_RUN_DIR": "relative/dir"}, "PGBOUNCER_RUN_DIR='relative/dir' must be an absolute path"),
]


@pytest.mark.parametrize(("env", "message"), BAD, ids=[m[:40] for _, m in BAD])
def test_bad_input_is_one_clear_line(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse({**BASE, **env})
    text = str(err.value)
    assert message in text
    assert "\n" not in text


def test_both_secret_and_file_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "p").write_text("x")
    with pytest.raises(ConfigError, match="set only one"):
        parse({"PGBOUNCER_AUTH_PASS": "x", "PGBOUNCER_AUTH_PASS_FILE": str(tmp_path / "p")})


def test_the_secret_never_appears_in_an_error() -> None:
    with pytest.raises(ConfigError) as err:
        parse({"PGBOUNCER_AUTH_PASS": "topsecret\nvalue"})
    assert "topsecret" not in str(err.value)
