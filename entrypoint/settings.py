"""PostgreSQL server settings from the environment (pure apart from reading ``*_FILE`` secrets).

``parse(env)`` returns a frozen :class:`Settings` or raises one ConfigError that names the variable and
what is allowed. Nothing here touches PGDATA: the flow calls it before anything on disk changes.

| variable | allowed | default |
| --- | --- | --- |
| POSTGRES_ROLE | single, primary, replica | single |
| POSTGRES_PASSWORD (+ _FILE) | any text without NUL or line breaks | required at first boot unless trust |
| POSTGRES_USER | role name: letters, digits, ``_ . -``, 1-63 bytes, not ``pg_*`` | postgres |
| POSTGRES_DB | database name, same alphabet | POSTGRES_USER |
| POSTGRES_INITDB_ARGS | shell-like words, no --pwfile/--username/-D (we set those) | empty |
| POSTGRES_INITDB_WALDIR | absolute path | unset |
| POSTGRES_HOST_AUTH_METHOD | scram-sha-256, md5, trust | scram-sha-256 |
| PGDATA | absolute path | /var/lib/postgresql/data |
| PGPORT | 1..65535 | 5432 |
| PG_REPLICATION_USER / PG_REPLICATION_PASSWORD (+ _FILE) | role name / secret | replicator / unset |
| REPLICATION_SLOT_NAME | ``[a-z0-9_]{1,63}`` | replica1_slot |
| PGBOUNCER_AUTH_PASS (+ _FILE), POSTGRES_EXPORTER_PASSWORD (+ _FILE) | secret | unset |
| POSTGRES_HBA_CIDRS | comma/space separated CIDRs, or ``none`` | the three RFC1918 ranges |
| POSTGRES_SHARED_PRELOAD_LIBRARIES | comma-separated library names (in $libdir); `none` = none | manifest |
| AZA_PG_SOCKET_DIR | absolute path | /var/run/postgresql |
| AZA_PG_LISTEN_ADDRESSES | listen_addresses value | ``*`` |
| AZA_PG_CONF_D, AZA_PG_INITDB_D, AZA_PG_EXTENSIONS_JSON, PG_BINDIR | paths (tests, other images) | image |
"""

from __future__ import annotations

import ipaddress
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from entrypoint import autoconfig, envparse
from entrypoint.errors import ConfigError

ROLES = ("single", "primary", "replica")
AUTH_METHODS = ("scram-sha-256", "md5", "trust")
DEFAULT_CIDRS = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")

# Every secret the server side knows; each may also come from <NAME>_FILE. Scrubbed before exec.
SECRET_VARS = (
    "POSTGRES_PASSWORD",
    "PG_REPLICATION_PASSWORD",
    "PGBOUNCER_AUTH_PASS",
    "POSTGRES_EXPORTER_PASSWORD",
    "PGBOUNCER_STATS_PASSWORD",
)

_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,62}")
_SLOT = re.compile(r"[a-z0-9_]{1,63}")
_LISTEN = re.compile(r"[A-Za-z0-9_.:*,\- ]{1,200}")
# initdb options the entrypoint itself controls; allowing them would break the contract or leak secrets.
_RESERVED_INITDB = ("--pwfile", "--pwprompt", "-W", "--username", "-U", "--pgdata", "-D", "--waldir", "-X")


@dataclass(frozen=True)
class Settings:
    role: str = "single"
    pgdata: Path = Path("/var/lib/postgresql/data")
    port: int = 5432
    user: str = "postgres"
    db: str = "postgres"
    password: str | None = None
    initdb_args: tuple[str, ...] = ()
    initdb_waldir: Path | None = None
    host_auth_method: str = "scram-sha-256"
    replication_user: str = "replicator"
    replication_password: str | None = None
    slot_name: str = "replica1_slot"
    pgbouncer_auth_password: str | None = None
    exporter_password: str | None = None
    hba_cidrs: tuple[str, ...] = DEFAULT_CIDRS
    preload_override: str | None = None  # None = manifest default; "" = no preloads
    socket_dir: Path = Path("/var/run/postgresql")
    listen_addresses: str = "*"
    conf_d: Path = Path("/etc/postgresql/conf.d")
    initdb_d: Path = Path("/docker-entrypoint-initdb.d")
    extensions_json: Path = Path("/usr/share/aza-pg/extensions.json")
    bindir: Path | None = None  # None = discover
    autoconfig: autoconfig.AutoConfigSettings = field(default_factory=autoconfig.AutoConfigSettings)

    @property
    def replication_enabled(self) -> bool:
        """The replicator role and slot exist on role primary, or whenever its password is set."""
        return self.role == "primary" or self.replication_password is not None

    def secrets(self) -> dict[str, str]:
        """role name -> clear-text password for every role whose password the environment sets."""
        out: dict[str, str] = {}
        if self.password is not None:
            out[self.user] = self.password
        if self.replication_password is not None and self.replication_enabled:
            out[self.replication_user] = self.replication_password
        if self.pgbouncer_auth_password is not None:
            out["pgbouncer_auth"] = self.pgbouncer_auth_password
        if self.exporter_password is not None:
            out["postgres_exporter"] = self.exporter_password
        return out


def _identifier(env: Mapping[str, str], name: str, default: str, what: str) -> str:
    raw = env.get(name, "")
    if not raw:
        return default
    if not _NAME.fullmatch(raw) or len(raw.encode()) > 63:
        raise ConfigError(
            f"{name}={raw!r} is not a valid {what} name; use 1-63 letters, digits, '_', '.' or '-'"
        )
    if raw.lower().startswith("pg_"):
        raise ConfigError(f"{name}={raw!r}: names starting with pg_ are reserved by PostgreSQL")
    return raw


def _abs_path(env: Mapping[str, str], name: str, default: str | None) -> Path | None:
    raw = env.get(name, "")
    if not raw:
        return None if default is None else Path(default)
    if not raw.startswith("/") or "\0" in raw or "\n" in raw:
        raise ConfigError(f"{name}={raw!r} must be an absolute path")
    return Path(raw)


def _secret(env: Mapping[str, str], name: str) -> str | None:
    value = envparse.secret(env, name)
    if value is not None and any(ch in value for ch in ("\0", "\n", "\r")):
        raise ConfigError(f"{name} must not contain line breaks or NUL characters")
    return value


def _cidrs(env: Mapping[str, str]) -> tuple[str, ...]:
    raw = env.get("POSTGRES_HBA_CIDRS")
    if raw is None or not raw.strip():
        return DEFAULT_CIDRS
    if raw.strip().lower() == "none":
        return ()
    out: list[str] = []
    for item in re.split(r"[,\s]+", raw.strip()):
        if not item:
            continue
        try:
            net = ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise ConfigError(
                f"POSTGRES_HBA_CIDRS: {item!r} is not an IP network; use CIDRs like 10.0.0.0/8, "
                "separated by commas, or 'none'"
            ) from None
        out.append(str(net))
    return tuple(out)


def _initdb_args(env: Mapping[str, str]) -> tuple[str, ...]:
    raw = env.get("POSTGRES_INITDB_ARGS", "")
    if not raw.strip():
        return ()
    try:
        words = shlex.split(raw)
    except ValueError as exc:
        raise ConfigError(f"POSTGRES_INITDB_ARGS cannot be split into words ({exc})") from None
    for word in words:
        flag = word.split("=", 1)[0]
        if flag in _RESERVED_INITDB or (not flag.startswith("--") and flag[:2] in ("-W", "-U", "-D", "-X")):
            raise ConfigError(
                f"POSTGRES_INITDB_ARGS: {flag} is set by the entrypoint; use POSTGRES_USER, "
                "POSTGRES_PASSWORD, PGDATA or POSTGRES_INITDB_WALDIR instead"
            )
    return tuple(words)


def parse(env: Mapping[str, str]) -> Settings:
    """The server settings of ``env``; ConfigError for the first bad variable."""
    role = envparse.choice(env, "POSTGRES_ROLE", ROLES, "single")
    pgdata = _abs_path(env, "PGDATA", "/var/lib/postgresql/data")
    assert pgdata is not None  # noqa: S101 - default given
    if pgdata == Path("/"):
        raise ConfigError("PGDATA=/ is not allowed; use a dedicated directory")
    port = envparse.integer(env, "PGPORT", default=5432, low=1, high=65535)
    user = _identifier(env, "POSTGRES_USER", "postgres", "role")
    db = _identifier(env, "POSTGRES_DB", user, "database")
    password = _secret(env, "POSTGRES_PASSWORD")
    auth = envparse.choice(env, "POSTGRES_HOST_AUTH_METHOD", AUTH_METHODS, "scram-sha-256")
    replication_user = _identifier(env, "PG_REPLICATION_USER", "replicator", "role")
    if replication_user == user:
        raise ConfigError("PG_REPLICATION_USER must differ from POSTGRES_USER (the superuser)")
    replication_password = _secret(env, "PG_REPLICATION_PASSWORD")
    slot = env.get("REPLICATION_SLOT_NAME", "") or "replica1_slot"
    if not _SLOT.fullmatch(slot):
        raise ConfigError(
            f"REPLICATION_SLOT_NAME={slot!r} is not valid; use 1-63 lower-case letters, digits or '_'"
        )
    if role == "primary" and replication_password is None:
        raise ConfigError(
            "POSTGRES_ROLE=primary needs PG_REPLICATION_PASSWORD (or PG_REPLICATION_PASSWORD_FILE) "
            "for the replication role"
        )
    # Unset or empty (compose's unset .env value) = the manifest default; "none" = no preloads.
    preload: str | None = env.get("POSTGRES_SHARED_PRELOAD_LIBRARIES", "").strip() or None
    if preload is not None and preload.lower() == "none":
        preload = ""
    listen = env.get("AZA_PG_LISTEN_ADDRESSES", "") or "*"
    if not _LISTEN.fullmatch(listen):
        raise ConfigError(f"AZA_PG_LISTEN_ADDRESSES={listen!r} is not a list of host names or addresses")
    settings = Settings(
        role=role,
        pgdata=pgdata,
        port=port or 5432,
        user=user,
        db=db,
        password=password,
        initdb_args=_initdb_args(env),
        initdb_waldir=_abs_path(env, "POSTGRES_INITDB_WALDIR", None),
        host_auth_method=auth,
        replication_user=replication_user,
        replication_password=replication_password,
        slot_name=slot,
        pgbouncer_auth_password=_secret(env, "PGBOUNCER_AUTH_PASS"),
        exporter_password=_secret(env, "POSTGRES_EXPORTER_PASSWORD"),
        hba_cidrs=_cidrs(env),
        preload_override=preload,
        socket_dir=_abs_path(env, "AZA_PG_SOCKET_DIR", "/var/run/postgresql") or Path("/var/run/postgresql"),
        listen_addresses=listen,
        conf_d=_abs_path(env, "AZA_PG_CONF_D", "/etc/postgresql/conf.d") or Path("/etc/postgresql/conf.d"),
        initdb_d=_abs_path(env, "AZA_PG_INITDB_D", "/docker-entrypoint-initdb.d")
        or Path("/docker-entrypoint-initdb.d"),
        extensions_json=_abs_path(env, "AZA_PG_EXTENSIONS_JSON", "/usr/share/aza-pg/extensions.json")
        or Path("/usr/share/aza-pg/extensions.json"),
        bindir=_abs_path(env, "PG_BINDIR", None),
        autoconfig=autoconfig.parse_env(env),
    )
    _ = _secret(env, "PGBOUNCER_STATS_PASSWORD")  # validated (both forms set, unreadable file) even if unused
    return settings


def require_first_boot_password(settings: Settings) -> None:
    """initdb needs a superuser password unless the user explicitly chose trust (as the official image)."""
    if settings.password is None and settings.host_auth_method != "trust":
        raise ConfigError(
            "POSTGRES_PASSWORD (or POSTGRES_PASSWORD_FILE) is required to initialise a new cluster; "
            "set it, or POSTGRES_HOST_AUTH_METHOD=trust to allow connections without a password (unsafe)"
        )


def scrubbed_env(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` without any secret or secret-file variable (what the daemon and helpers get)."""
    drop = set(SECRET_VARS) | {f"{name}_FILE" for name in SECRET_VARS}
    return {key: value for key, value in env.items() if key not in drop}
