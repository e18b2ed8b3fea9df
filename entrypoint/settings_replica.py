"""Settings of a streaming replica (POSTGRES_ROLE=replica) and the primary's replication switch.

Pure: the environment arrives as a plain mapping (only ``PG_REPLICATION_PASSWORD_FILE`` is read, as part
of parsing the user's input). Every problem is one ConfigError line naming the variable and what is
allowed, raised before the entrypoint changes anything on disk.

Variables (defaults in brackets):
    PRIMARY_HOST                       host name or IP address of the primary (required)
    PRIMARY_PORT                       [5432]
    PG_REPLICATION_USER                [replicator]
    PG_REPLICATION_PASSWORD[_FILE]     required
    REPLICATION_SLOT_NAME              [replica1_slot] physical slot on the primary (created when missing)
    REPLICA_APPLICATION_NAME           [replica1] the name synchronous_standby_names refers to
    PRIMARY_WAIT_TIMEOUT               [300] seconds to wait for the primary before the first clone
    REPLICA_CLONE_MAX_RATE             [unlimited] pg_basebackup --max-rate (e.g. 50M, 8192k)
    POSTGRES_SYNCHRONOUS_STANDBY_NAMES [''] on the primary: '' = asynchronous, else the standby names
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from entrypoint import envparse
from entrypoint.errors import ConfigError

DEFAULT_PORT = 5432
DEFAULT_USER = "replicator"
DEFAULT_SLOT = "replica1_slot"
DEFAULT_APPLICATION_NAME = "replica1"
DEFAULT_WAIT_TIMEOUT = 300

# A DNS name, an IPv4 address or an IPv6 address (no brackets): no spaces, quotes or shell characters.
_HOST = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._:%-]{0,252})$")
# Replication slot names: PostgreSQL allows lower-case letters, digits and underscores, at most 63.
_SLOT = re.compile(r"^[a-z0-9_]{1,63}$")
# application_name is what synchronous_standby_names matches; keep it a plain, unquoted-safe name.
_APP = re.compile(r"^[A-Za-z0-9_.-]{1,63}$")
_RATE = re.compile(r"^([0-9]{1,7})([kM]?)$")


@dataclass(frozen=True)
class ReplicaSettings:
    primary_host: str
    primary_port: int
    user: str
    password: str
    slot_name: str
    application_name: str
    wait_timeout: int
    max_rate: str | None

    def __repr__(self) -> str:  # never print the password, even in a traceback
        return (
            f"ReplicaSettings(primary_host={self.primary_host!r}, primary_port={self.primary_port}, "
            f"user={self.user!r}, password='***', slot_name={self.slot_name!r}, "
            f"application_name={self.application_name!r}, wait_timeout={self.wait_timeout}, "
            f"max_rate={self.max_rate!r})"
        )


def _role_name(env: Mapping[str, str], name: str, default: str) -> str:
    value = env.get(name, "").strip() or default
    if len(value.encode()) > 63:
        raise ConfigError(f"{name} is longer than 63 bytes; PostgreSQL role names are at most 63 bytes")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise ConfigError(f"{name} contains a control character; use a plain role name")
    return value


def _password(env: Mapping[str, str]) -> str:
    password = envparse.secret(env, "PG_REPLICATION_PASSWORD")
    if not password:
        raise ConfigError(
            "PG_REPLICATION_PASSWORD (or PG_REPLICATION_PASSWORD_FILE) is required with "
            "POSTGRES_ROLE=replica; use the same value as on the primary"
        )
    if any(ch in password for ch in "\0\r\n"):
        raise ConfigError("PG_REPLICATION_PASSWORD contains a line break or NUL byte; those cannot be "
                          "stored in a password file")
    return password


def _max_rate(env: Mapping[str, str]) -> str | None:
    raw = env.get("REPLICA_CLONE_MAX_RATE", "").strip()
    if not raw:
        return None
    match = _RATE.match(raw)
    if match is None:
        raise ConfigError(f"REPLICA_CLONE_MAX_RATE={raw!r} is not valid; use kB/s as a number, or with "
                          "k or M (32k..1024M), e.g. 50M")
    number, unit = int(match.group(1)), match.group(2)
    kilobytes = number * 1024 if unit == "M" else number
    if not 32 <= kilobytes <= 1024 * 1024:
        raise ConfigError(f"REPLICA_CLONE_MAX_RATE={raw!r} is out of range; use 32k..1024M")
    return f"{kilobytes}k"


def parse(env: Mapping[str, str]) -> ReplicaSettings:
    """The replica's settings, or a ConfigError naming the first bad variable."""
    host = env.get("PRIMARY_HOST", "").strip()
    if not host:
        raise ConfigError("PRIMARY_HOST is required with POSTGRES_ROLE=replica; set it to the primary's "
                          "host name or IP address")
    if not _HOST.match(host):
        raise ConfigError(f"PRIMARY_HOST={host!r} is not a host name or IP address "
                          "(letters, digits, . - : only)")
    port = envparse.integer(env, "PRIMARY_PORT", default=DEFAULT_PORT, low=1, high=65535) or DEFAULT_PORT
    user = _role_name(env, "PG_REPLICATION_USER", DEFAULT_USER)
    slot = env.get("REPLICATION_SLOT_NAME", "").strip() or DEFAULT_SLOT
    if not _SLOT.match(slot):
        raise ConfigError(f"REPLICATION_SLOT_NAME={slot!r} is not valid; "
                          "use 1-63 lower-case letters, digits or _")
    app = env.get("REPLICA_APPLICATION_NAME", "").strip() or DEFAULT_APPLICATION_NAME
    if not _APP.match(app):
        raise ConfigError(f"REPLICA_APPLICATION_NAME={app!r} is not valid; "
                          "use 1-63 letters, digits, _ . or -")
    wait = envparse.integer(env, "PRIMARY_WAIT_TIMEOUT", default=DEFAULT_WAIT_TIMEOUT, low=1, high=86400)
    wait = wait or DEFAULT_WAIT_TIMEOUT
    max_rate = _max_rate(env)
    password = _password(env)
    return ReplicaSettings(
        primary_host=host, primary_port=port, user=user, password=password, slot_name=slot,
        application_name=app, wait_timeout=wait, max_rate=max_rate,
    )


def synchronous_standby_names(env: Mapping[str, str]) -> str:
    """POSTGRES_SYNCHRONOUS_STANDBY_NAMES for the primary: '' (asynchronous, the default) or PostgreSQL's list
    syntax ('replica1', 'FIRST 1 (replica1, replica2)', 'ANY 1 (*)'). PostgreSQL itself checks the grammar
    when the rendered configuration is validated; here only what can never be valid is refused."""
    value = env.get("POSTGRES_SYNCHRONOUS_STANDBY_NAMES", "").strip()
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise ConfigError("POSTGRES_SYNCHRONOUS_STANDBY_NAMES contains a control character; use e.g. "
                          "'replica1' or 'ANY 1 (replica1, replica2)', or leave it empty (asynchronous)")
    if len(value) > 1024:
        raise ConfigError("POSTGRES_SYNCHRONOUS_STANDBY_NAMES is longer than 1024 characters")
    return value
