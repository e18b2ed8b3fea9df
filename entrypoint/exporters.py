"""Settings and launch plans for the two Prometheus exporters (pure).

Both exporters (postgres_exporter 0.17, pgbouncer_exporter 0.10) are Go programs using lib/pq, which reads
libpq's password file (``PGPASSFILE``) when the connection string carries no password. So the launcher
builds a connection string *without* the password, writes the password into a 0600 ``.pgpass`` and execs
the exporter with ``PGPASSFILE`` pointing at it: the password never appears in argv, in the exporter's
environment or in its log lines (postgres_exporter logs its DSN when a scrape fails).

lib/pq knows only the sslmodes disable, require, verify-ca and verify-full (no "prefer"), and its default is
require, so the mode is always written explicitly.

This module only computes; ``entrypoint.apply.exporters`` writes the file and execs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from entrypoint import envparse
from entrypoint.errors import ConfigError
from entrypoint.render import conninfo, pgpass

POSTGRES_EXPORTER_BINARY = "prometheus-postgres-exporter"
PGBOUNCER_EXPORTER_BINARY = "prometheus-pgbouncer-exporter"
QUERIES_PATH = "/etc/aza-pg/exporters/queries.yaml"
CONFIG_PATH = "/etc/aza-pg/exporters/postgres_exporter.yml"
SSLMODES = ("disable", "require", "verify-ca", "verify-full")
# Set by the user, these would bypass the password file (and put a password into the environment).
_FOREIGN_DSN_VARS = (
    "DATA_SOURCE_NAME", "DATA_SOURCE_URI", "DATA_SOURCE_USER", "DATA_SOURCE_USER_FILE",
    "DATA_SOURCE_PASS", "DATA_SOURCE_PASS_FILE",
)


@dataclass(frozen=True)
class Launch:
    """Everything needed to start one exporter."""

    binary: str  # looked up on the PATH of ``environ``
    argv: tuple[str, ...]  # arguments after the program name
    environ: Mapping[str, str]  # the exporter's environment, without secrets
    passfile: Path
    passfile_text: str
    summary: str  # one log line, no secret in it


def _port(env: Mapping[str, str], name: str, default: int) -> int:
    value = envparse.integer(env, name, default=default, low=1, high=65535)
    assert value is not None  # noqa: S101 - a default is given
    return value


def _name(env: Mapping[str, str], name: str, default: str) -> str:
    value = env.get(name, "").strip() or default
    if any(ch in value for ch in ("\n", "\r", "\0")):
        raise ConfigError(f"{name} must be a single line")
    if value == pgpass.WILDCARD:
        raise ConfigError(f"{name}='*' is not allowed")
    return value


def _required_secret(env: Mapping[str, str], name: str, purpose: str) -> str:
    value = envparse.secret(env, name)
    if value is None:
        raise ConfigError(f"{name} (or {name}_FILE) is not set; {purpose}")
    if any(ch in value for ch in ("\n", "\r", "\0")):
        raise ConfigError(f"{name} contains a line break or NUL character, which a .pgpass file cannot hold")
    return value


def _without_flags(args: Sequence[str], defaults: Sequence[tuple[str, str]]) -> tuple[str, ...]:
    """Our default flags, minus those the user passed (a flag given twice is an error or, for listen
    addresses, a second listener), followed by the user's arguments."""
    given = {arg.split("=", 1)[0] for arg in args if arg.startswith("--")}
    ours = tuple(f"{flag}={value}" for flag, value in defaults if flag not in given)
    return (*ours, *args)


def _listen(argv: Sequence[str]) -> str:
    """The listen address(es) the exporter will use, for the log line."""
    flag = "--web.listen-address="
    return ", ".join(arg[len(flag):] for arg in argv if arg.startswith(flag))


def _child_env(env: Mapping[str, str], passfile: Path) -> dict[str, str]:
    """The exporter's environment: ours minus anything secret-like (PGPASSWORD would even win over the
    password file), plus PGPASSFILE."""
    def secret_like(key: str) -> bool:
        upper = key.upper()
        return "PASS" in upper or "SECRET" in upper or "TOKEN" in upper or upper.startswith("DATA_SOURCE_")

    child = {key: value for key, value in env.items() if not secret_like(key)}
    child["PGPASSFILE"] = str(passfile)
    return child


def _refuse_foreign_dsn(env: Mapping[str, str]) -> None:
    for var in _FOREIGN_DSN_VARS:
        if env.get(var):
            raise ConfigError(
                f"{var} is set; aza-pg builds the exporter's connection itself (POSTGRES_HOST, "
                "POSTGRES_PORT, POSTGRES_EXPORTER_PASSWORD, ...) and keeps the password in a .pgpass file: "
                "unset it"
            )


def runtime_dir(env: Mapping[str, str], name: str) -> Path:
    """Where the launcher keeps its password file: ``$TMPDIR/aza-pg-<name>`` (``/tmp`` by default)."""
    base = env.get("TMPDIR", "").strip() or "/tmp"  # noqa: S108 - a private 0700 directory is made inside
    return Path(base) / f"aza-pg-{name}"


def postgres_exporter(env: Mapping[str, str], args: Sequence[str]) -> Launch:
    """postgres_exporter as the least-privilege ``postgres_exporter`` role (member of pg_monitor)."""
    _refuse_foreign_dsn(env)
    host = _name(env, "POSTGRES_HOST", "postgres")
    port = _port(env, "POSTGRES_PORT", 5432)
    user = _name(env, "POSTGRES_EXPORTER_USER", "postgres_exporter")
    dbname = _name(env, "POSTGRES_EXPORTER_DATABASE", "postgres")
    sslmode = envparse.choice(env, "POSTGRES_EXPORTER_SSLMODE", SSLMODES, "disable")
    root_cert = env.get("POSTGRES_EXPORTER_SSL_ROOT_CERT", "").strip()
    listen = _port(env, "POSTGRES_EXPORTER_PORT", 9187)
    password = _required_secret(
        env, "POSTGRES_EXPORTER_PASSWORD", "the exporter logs in as the postgres_exporter role with it"
    )

    params = {"host": host, "port": str(port), "user": user, "dbname": dbname, "sslmode": sslmode,
              "application_name": "postgres_exporter"}
    if root_cert:
        params["sslrootcert"] = root_cert
    passfile = runtime_dir(env, "postgres-exporter") / "pgpass"
    environ = _child_env(env, passfile)
    environ["DATA_SOURCE_NAME"] = conninfo.render(params)
    argv = _without_flags(args, (
        ("--web.listen-address", f":{listen}"),
        ("--extend.query-path", env.get("POSTGRES_EXPORTER_QUERIES", "").strip() or QUERIES_PATH),
        ("--config.file", CONFIG_PATH),
    ))
    return Launch(
        binary=POSTGRES_EXPORTER_BINARY,
        argv=argv,
        environ=environ,
        passfile=passfile,
        passfile_text=pgpass.render([pgpass.Entry(password=password, user=user)]),
        summary=f"postgres_exporter -> {host}:{port}/{dbname} as {user} (sslmode={sslmode}), listening on "
                f"{_listen(argv)}; password in {passfile} (0600)",
    )


def pgbouncer_exporter(env: Mapping[str, str], args: Sequence[str]) -> Launch:
    """pgbouncer_exporter on PgBouncer's admin console (database ``pgbouncer``) as the stats user."""
    host = _name(env, "PGBOUNCER_HOST", "pgbouncer")
    port = _port(env, "PGBOUNCER_PORT", 6432)
    user = _name(env, "PGBOUNCER_STATS_USER", "pgbouncer_stats")
    sslmode = envparse.choice(env, "PGBOUNCER_EXPORTER_SSLMODE", SSLMODES, "disable")
    listen = _port(env, "PGBOUNCER_EXPORTER_PORT", 9127)
    password = _required_secret(
        env, "PGBOUNCER_STATS_PASSWORD", "the exporter logs in to PgBouncer's console with it"
    )
    dsn = conninfo.render(
        {"host": host, "port": str(port), "user": user, "dbname": "pgbouncer", "sslmode": sslmode}
    )
    passfile = runtime_dir(env, "pgbouncer-exporter") / "pgpass"
    argv = _without_flags(args, (
        ("--web.listen-address", f":{listen}"),
        ("--pgBouncer.connectionString", dsn),
        # PgBouncer runs in another container: no pid file to read process metrics from.
        ("--pgBouncer.pid-file", ""),
    ))
    return Launch(
        binary=PGBOUNCER_EXPORTER_BINARY,
        argv=argv,
        environ=_child_env(env, passfile),
        passfile=passfile,
        passfile_text=pgpass.render([pgpass.Entry(password=password, user=user)]),
        summary=f"pgbouncer_exporter -> {host}:{port}/pgbouncer as {user} (sslmode={sslmode}), listening on "
                f"{_listen(argv)}; password in {passfile} (0600)",
    )
