"""``aza-pg pgbouncer``: render PgBouncer's configuration and secret files, then exec pgbouncer.

settings (env) -> detect (binary + version, user-provided ini) -> render (pure text) -> apply (files,
limits, privileges) -> exec. Clients log in as themselves: PgBouncer looks their SCRAM secret up with
``pgbouncer.get_auth`` as ``pgbouncer_auth`` (see ``entrypoint/sql/pgbouncer_auth.py``), so every role and
every database on the server is reachable, including ones created after PgBouncer started.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from entrypoint import log, settings_pgbouncer
from entrypoint.apply import pgbouncer as apply
from entrypoint.detect import pgbouncer as detect
from entrypoint.errors import ConfigError
from entrypoint.render import pgbouncer as render
from entrypoint.render import pgpass

COMPONENT = "PGBOUNCER"
TOPIC = "ENTRYPOINT"
AUTH_FILE_NAME = "userlist.txt"
INI_NAME = "pgbouncer.ini"
# File descriptors beyond the client connections: server connections, listeners, logs, DNS.
_FD_HEADROOM = 256


def _info(message: str) -> None:
    log.info(COMPONENT, TOPIC, message)


def plan_files(
    cfg: settings_pgbouncer.PgBouncerSettings, *, use_auth_dbname: bool
) -> tuple[str, str, str]:
    """(pgbouncer.ini, auth file, .pgpass) contents for these settings: pure."""
    users = [(render.AUTH_USER, cfg.auth_password)]
    if cfg.stats_password is not None:
        users.append((render.STATS_USER, cfg.stats_password))
    ini = render.render_ini(
        cfg,
        auth_file=str(cfg.run_dir / AUTH_FILE_NAME),
        unix_socket_dir=str(cfg.run_dir),
        stats_users=(render.STATS_USER,) if cfg.stats_password is not None else (),
        use_auth_dbname=use_auth_dbname,
    )
    auth = render.auth_file(users)
    passfile = pgpass.render(
        [
            pgpass.Entry(
                host=cfg.server_host, port=cfg.server_port, user=render.AUTH_USER, password=cfg.auth_password
            )
        ]
    )
    return ini, auth, passfile


def run(env: Mapping[str, str], args: Sequence[str]) -> int:
    cfg = settings_pgbouncer.parse(env)
    if cfg.server_tls_ca_file and not os.path.isfile(cfg.server_tls_ca_file):
        raise ConfigError(f"PGBOUNCER_SERVER_SSL_CA_FILE={cfg.server_tls_ca_file}: no such file")
    user_ini = Path(cfg.config_path)
    user_provided = user_ini.is_file()
    binary = detect.detect(env.get("PATH"))
    use_auth_dbname = binary.version[:2] >= render.AUTH_DBNAME_SINCE
    who = apply.identity(os.geteuid())

    ini_text, auth_text, pgpass_text = plan_files(cfg, use_auth_dbname=use_auth_dbname)
    run_dir = Path(cfg.run_dir)
    ini_path = user_ini if user_provided else run_dir / INI_NAME
    auth_path = run_dir / AUTH_FILE_NAME
    pgpass_path = Path(cfg.pgpass_path)

    apply.prepare_dir(run_dir, who)
    apply.write_files(
        ini=None if user_provided else (ini_path, ini_text),
        auth_file=(auth_path, auth_text),
        pgpass=(pgpass_path, pgpass_text),
        who=who,
    )
    soft, _hard = apply.raise_fd_limit(cfg.max_client_conn + cfg.default_pool_size * 4 + _FD_HEADROOM)

    _info(f"PgBouncer {binary.version_text} at {binary.path}, running as {who.name}")
    if user_provided:
        _info(f"Using the mounted {ini_path} as is; it must point auth_file at {auth_path}")
    else:
        auth_db = (
            f"auth_dbname={render.AUTH_DBNAME}"
            if use_auth_dbname
            else "auth_query runs in each client database (PgBouncer < 1.19: no auth_dbname)"
        )
        _info(
            f"Rendered {ini_path}: server {cfg.server_host}:{cfg.server_port}, listen "
            f"{cfg.listen_addr}:{cfg.listen_port}, pool_mode {cfg.pool_mode}, max_client_conn "
            f"{cfg.max_client_conn}, default_pool_size {cfg.default_pool_size}, reserve_pool_size "
            f"{cfg.reserve_pool_size}, server_tls_sslmode {cfg.server_sslmode}, auth_user "
            f"{render.AUTH_USER}, {auth_db}"
        )
    users = render.AUTH_USER + (f", {render.STATS_USER}" if cfg.stats_password is not None else "")
    _info(f"Wrote auth file {auth_path} (0600; users: {users}) and {pgpass_path} (0600; {render.AUTH_USER})")
    if soft < cfg.max_client_conn + _FD_HEADROOM:
        log.warn(
            COMPONENT, TOPIC,
            f"open-files limit {soft} is too low for max_client_conn {cfg.max_client_conn}; raise ulimit -n",
        )
    apply.exec_pgbouncer(binary.path, [*args, str(ini_path)], apply.scrub(env), who)
