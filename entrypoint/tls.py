"""TLS for the PostgreSQL server (pure): POSTGRES_SSL, POSTGRES_SSL_CERT_FILE / _KEY_FILE / _CA_FILE and
POSTGRES_HBA_REQUIRE_SSL turned into settings, postgresql.conf values and the pg_hba connection type.

Certificates are usually mounted read-only and owned by root (``./certs:/etc/postgresql/certs:ro``).
PostgreSQL refuses a key it cannot read or that others may read, so the entrypoint copies the files
into ``$PGDATA/aza-pg/tls/`` owned by the server user (key 0600) at every start
(``entrypoint.detect.tls`` reads and checks them, ``entrypoint.apply.tls`` writes the copies), and
``ssl_cert_file`` / ``ssl_key_file`` point at the copies.

| variable | allowed | default |
| --- | --- | --- |
| POSTGRES_SSL | on, off | off |
| POSTGRES_SSL_CERT_FILE | absolute path | /etc/postgresql/certs/server.crt |
| POSTGRES_SSL_KEY_FILE | absolute path | /etc/postgresql/certs/server.key |
| POSTGRES_SSL_CA_FILE | absolute path (CA for client certificates: ssl_ca_file) | unset |
| POSTGRES_HBA_REQUIRE_SSL | on, off (on needs POSTGRES_SSL=on) | off |
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath

from entrypoint import envparse
from entrypoint.errors import ConfigError

DEFAULT_CERT_FILE = "/etc/postgresql/certs/server.crt"
DEFAULT_KEY_FILE = "/etc/postgresql/certs/server.key"
# Relative to PGDATA: where the server's own copies live.
INSTALL_DIR = PurePosixPath("aza-pg/tls")
MIN_PROTOCOL = "TLSv1.2"


@dataclass(frozen=True)
class TlsSettings:
    enabled: bool = False
    cert_file: str = DEFAULT_CERT_FILE
    key_file: str = DEFAULT_KEY_FILE
    ca_file: str | None = None
    require_ssl: bool = False


@dataclass(frozen=True)
class InstalledPaths:
    """Where the server reads its certificate, key and (optional) CA file from."""

    directory: PurePosixPath
    cert: PurePosixPath
    key: PurePosixPath
    ca: PurePosixPath


def _path(env: Mapping[str, str], name: str) -> str | None:
    raw = env.get(name, "").strip()
    if not raw:
        return None
    if not raw.startswith("/"):
        raise ConfigError(f"{name}={raw!r} must be an absolute path (e.g. /etc/postgresql/certs/...)")
    if any(ch in raw for ch in ("\0", "\n", "\r")):
        raise ConfigError(f"{name} must not contain line breaks or NUL characters")
    return raw


def parse(env: Mapping[str, str]) -> TlsSettings:
    """The TLS settings, or a ConfigError naming the variable and what is allowed."""
    enabled = envparse.boolean(env, "POSTGRES_SSL", default=False)
    require = envparse.boolean(env, "POSTGRES_HBA_REQUIRE_SSL", default=False)
    cert = _path(env, "POSTGRES_SSL_CERT_FILE") or DEFAULT_CERT_FILE
    key = _path(env, "POSTGRES_SSL_KEY_FILE") or DEFAULT_KEY_FILE
    ca = _path(env, "POSTGRES_SSL_CA_FILE")
    if require and not enabled:
        raise ConfigError(
            "POSTGRES_HBA_REQUIRE_SSL=on needs POSTGRES_SSL=on "
            "(otherwise no client could connect over the network)"
        )
    if cert == key:
        raise ConfigError(f"POSTGRES_SSL_CERT_FILE and POSTGRES_SSL_KEY_FILE are the same file ({cert}); "
                          "use separate certificate and key files")
    return TlsSettings(enabled=enabled, cert_file=cert, key_file=key, ca_file=ca, require_ssl=require)


def installed_paths(pgdata: str) -> InstalledPaths:
    directory = PurePosixPath(pgdata) / INSTALL_DIR
    return InstalledPaths(
        directory=directory,
        cert=directory / "server.crt",
        key=directory / "server.key",
        ca=directory / "ca.crt",
    )


def conf(settings: TlsSettings, pgdata: str) -> dict[str, str]:
    """postgresql.conf settings (raw values: render them with ``render.conf``); empty when TLS is off."""
    if not settings.enabled:
        return {}
    paths = installed_paths(pgdata)
    values = {
        "ssl": "on",
        "ssl_cert_file": str(paths.cert),
        "ssl_key_file": str(paths.key),
        "ssl_min_protocol_version": MIN_PROTOCOL,
    }
    if settings.ca_file is not None:
        values["ssl_ca_file"] = str(paths.ca)
    return values


def hba_connection_type(settings: TlsSettings) -> str:
    """``hostssl`` for the non-loopback pg_hba lines when TLS is required, else ``host``."""
    return "hostssl" if settings.require_ssl else "host"
