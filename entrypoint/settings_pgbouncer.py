"""Environment -> validated PgBouncer settings (pure apart from reading ``*_FILE`` secrets).

Every problem is one ``ConfigError`` line naming the variable and what is allowed, raised before the
entrypoint writes anything. Defaults match the deployment guide: PgBouncer on 6432 in transaction mode,
200 clients, 25 server connections per database/user pair.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath

from entrypoint import envparse
from entrypoint.errors import ConfigError

POOL_MODES = ("transaction", "session", "statement")
SSLMODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
# PgBouncer keeps passwords in fixed buffers; longer ones are cut off or refused at load time.
MAX_PASSWORD_BYTES = 996
_AUTH_ROLE = "pgbouncer_auth"
MAX_NAME_BYTES = 63  # NAMEDATALEN - 1 on the PostgreSQL side

_LABEL = r"[A-Za-z0-9_][A-Za-z0-9_-]{0,62}"
_HOSTNAME = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*\.?$")
# A role or parameter name inside a comma-separated ini list: nothing that splits, quotes or comments.
_LIST_ITEM = re.compile(r"^[^\s,;#\"'=\\]+$")


@dataclass(frozen=True)
class PgBouncerSettings:
    server_host: str
    server_port: int
    auth_password: str
    stats_password: str | None
    listen_addr: str
    listen_port: int
    pool_mode: str
    max_client_conn: int
    default_pool_size: int
    min_pool_size: int
    reserve_pool_size: int
    reserve_pool_timeout: int
    max_db_connections: int
    server_idle_timeout: int
    server_lifetime: int
    server_connect_timeout: int
    query_wait_timeout: int
    client_idle_timeout: int
    server_sslmode: str
    server_tls_ca_file: str | None
    admin_users: tuple[str, ...]
    ignore_startup_parameters: tuple[str, ...]
    run_dir: PurePosixPath
    config_path: PurePosixPath
    pgpass_path: PurePosixPath


def _int(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    value = envparse.integer(env, name, default=default, low=low, high=high)
    return default if value is None else value


def _host(name: str, raw: str, *, allow_star: bool = False) -> str:
    value = raw.strip()
    if allow_star and value == "*":
        return value
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        pass
    if not _HOSTNAME.match(value):
        raise ConfigError(f"{name}={raw!r} is not a host name or IP address")
    return value


def _required_password(env: Mapping[str, str], name: str) -> str:
    value = _password(env, name)
    if value is None:
        raise ConfigError(f"{name} (or {name}_FILE) is required: the password of the {_AUTH_ROLE} role")
    return value


def _password(env: Mapping[str, str], name: str) -> str | None:
    value = envparse.secret(env, name)
    if value is None:
        return None
    if any(ch in value for ch in "\n\r\0"):
        raise ConfigError(f"{name} contains a line break or NUL character; those cannot be stored")
    if len(value.encode()) > MAX_PASSWORD_BYTES:
        raise ConfigError(f"{name} is longer than {MAX_PASSWORD_BYTES} bytes, PgBouncer's limit")
    return value


def _name_list(env: Mapping[str, str], name: str, default: str, *, max_bytes: int) -> tuple[str, ...]:
    raw = env.get(name, default)
    items = tuple(item.strip() for item in raw.split(",") if item.strip())
    for item in items:
        if not _LIST_ITEM.match(item) or len(item.encode()) > max_bytes:
            raise ConfigError(
                f"{name}={raw!r}: {item!r} is not allowed; use a comma-separated list of names without "
                f"spaces, quotes, ';', '#', '=' or backslashes (at most {max_bytes} bytes each)"
            )
    return items


def _path(env: Mapping[str, str], name: str, default: str) -> PurePosixPath:
    raw = env.get(name, "").strip() or default
    if not raw.startswith("/") or any(ch in raw for ch in "\n\r\0"):
        raise ConfigError(f"{name}={raw!r} must be an absolute path")
    return PurePosixPath(raw)


def parse(env: Mapping[str, str]) -> PgBouncerSettings:
    """Read and check every PgBouncer variable; the first problem raises ConfigError."""
    server_host = _host("POSTGRES_HOST", env.get("POSTGRES_HOST", "").strip() or "postgres")
    server_port = _int(env, "POSTGRES_PORT", 5432, 1, 65535)
    auth_password = _required_password(env, "PGBOUNCER_AUTH_PASS")
    stats_password = _password(env, "PGBOUNCER_STATS_PASSWORD")

    raw_listen = env.get("PGBOUNCER_LISTEN_ADDR", "").strip() or "0.0.0.0"  # noqa: S104 - inside a container
    listen = ",".join(_host("PGBOUNCER_LISTEN_ADDR", part, allow_star=True) for part in raw_listen.split(","))
    listen_port = _int(env, "PGBOUNCER_PORT", 6432, 1, 65535)
    pool_mode = envparse.choice(env, "PGBOUNCER_POOL_MODE", POOL_MODES, "transaction")

    max_client_conn = _int(env, "PGBOUNCER_MAX_CLIENT_CONN", 200, 1, 1_000_000)
    default_pool_size = _int(env, "PGBOUNCER_DEFAULT_POOL_SIZE", 25, 1, 100_000)
    min_pool_size = _int(env, "PGBOUNCER_MIN_POOL_SIZE", 0, 0, 100_000)
    if min_pool_size > default_pool_size:
        raise ConfigError(
            f"PGBOUNCER_MIN_POOL_SIZE={min_pool_size} is larger than "
            f"PGBOUNCER_DEFAULT_POOL_SIZE={default_pool_size}; use 0..{default_pool_size}"
        )
    reserve_pool_size = _int(env, "PGBOUNCER_RESERVE_POOL_SIZE", 5, 0, 100_000)
    reserve_pool_timeout = _int(env, "PGBOUNCER_RESERVE_POOL_TIMEOUT", 5, 0, 86_400)
    max_db_connections = _int(env, "PGBOUNCER_MAX_DB_CONNECTIONS", 0, 0, 100_000)
    server_idle_timeout = _int(env, "PGBOUNCER_SERVER_IDLE_TIMEOUT", 600, 0, 86_400)
    server_lifetime = _int(env, "PGBOUNCER_SERVER_LIFETIME", 3600, 0, 604_800)
    server_connect_timeout = _int(env, "PGBOUNCER_SERVER_CONNECT_TIMEOUT", 15, 1, 3600)
    query_wait_timeout = _int(env, "PGBOUNCER_QUERY_WAIT_TIMEOUT", 120, 0, 86_400)
    client_idle_timeout = _int(env, "PGBOUNCER_CLIENT_IDLE_TIMEOUT", 0, 0, 604_800)

    sslmode = envparse.choice(env, "PGBOUNCER_SERVER_SSLMODE", SSLMODES, "prefer")
    ca_raw = env.get("PGBOUNCER_SERVER_SSL_CA_FILE", "").strip()
    ca_file = str(_path(env, "PGBOUNCER_SERVER_SSL_CA_FILE", "/")) if ca_raw else None
    if sslmode.startswith("verify-") and ca_file is None:
        raise ConfigError(
            f"PGBOUNCER_SERVER_SSLMODE={sslmode} needs PGBOUNCER_SERVER_SSL_CA_FILE (the CA that signed "
            "the server certificate)"
        )

    admin_users = _name_list(env, "PGBOUNCER_ADMIN_USERS", "postgres", max_bytes=MAX_NAME_BYTES)
    ignore = _name_list(
        env, "PGBOUNCER_IGNORE_STARTUP_PARAMETERS", "extra_float_digits", max_bytes=MAX_NAME_BYTES
    )

    return PgBouncerSettings(
        server_host=server_host,
        server_port=server_port,
        auth_password=auth_password,
        stats_password=stats_password,
        listen_addr=listen,
        listen_port=listen_port,
        pool_mode=pool_mode,
        max_client_conn=max_client_conn,
        default_pool_size=default_pool_size,
        min_pool_size=min_pool_size,
        reserve_pool_size=reserve_pool_size,
        reserve_pool_timeout=reserve_pool_timeout,
        max_db_connections=max_db_connections,
        server_idle_timeout=server_idle_timeout,
        server_lifetime=server_lifetime,
        server_connect_timeout=server_connect_timeout,
        query_wait_timeout=query_wait_timeout,
        client_idle_timeout=client_idle_timeout,
        server_sslmode=sslmode,
        server_tls_ca_file=ca_file,
        admin_users=admin_users,
        ignore_startup_parameters=ignore,
        run_dir=_path(env, "PGBOUNCER_RUN_DIR", "/tmp/pgbouncer"),  # noqa: S108 - a private dir, created 0700
        config_path=_path(env, "PGBOUNCER_CONFIG_PATH", "/etc/pgbouncer/pgbouncer.ini"),
        pgpass_path=_path(env, "PGBOUNCER_PGPASS_PATH", "/tmp/.pgpass"),  # noqa: S108 - the guide's path
    )
