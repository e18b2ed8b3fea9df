"""``aza-pg postgres [ARGS]``: the image's ENTRYPOINT.

settings (validate everything) -> detect (PGDATA, host, binaries) -> tune -> [root: prepare dirs, drop
to postgres] -> first boot (initdb in a staging dir, temporary socket-only server, roles, extensions,
init scripts, move into place) -> every start (generated config, pg_hba, passwords when changed,
validation when anything changed) -> exec postgres.

Nothing on disk changes before every input has been validated.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from entrypoint import log, plan
from entrypoint import settings as settings_mod
from entrypoint.apply import execute, fs, privileges
from entrypoint.detect import pgdata as detect_pgdata
from entrypoint.errors import ConfigError, RuntimeFailure
from entrypoint.settings import Settings

C = "POSTGRES"
T = "ENTRYPOINT"
AUTO = "AUTO-CONFIG"
DEFAULT_PRELOAD = ("pg_stat_statements",)
FLOOR_KEYS = (
    "max_connections",
    "max_worker_processes",
    "max_wal_senders",
    "max_prepared_transactions",
    "max_locks_per_transaction",
)


def _optional(name: str) -> ModuleType | None:
    """A module another engineer provides, or None while it does not exist yet."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name == name:
            return None
        raise


@dataclass
class Hooks:
    """Other concerns' modules, parsed up front with the rest of the settings."""

    replica: ModuleType | None = None
    tls: ModuleType | None = None
    tls_settings: Any = None
    tls_material: Any = None
    archive: ModuleType | None = None
    archive_settings: Any = None
    archive_existing: str | None = None


@dataclass
class Context:
    env: Mapping[str, str]
    args: list[str]
    settings: Settings
    hooks: Hooks
    bindir: Path
    pg_major: int
    preload: list[str]
    extensions: list[str] = field(default_factory=list)
    skipped_extensions: list[str] = field(default_factory=list)
    account: privileges.Account | None = None
    os_users: list[str] = field(default_factory=list)
    floors: dict[str, int] = field(default_factory=dict)
    extra_base: dict[str, str] = field(default_factory=dict)  # image-driven values for 00-aza-pg.conf
    server_cache: dict[str, Any] = field(default_factory=dict)  # saved as state["server"]


# --- validation (nothing on disk changes) -------------------------------------------------------------


def _hooks(env: Mapping[str, str], s: Settings) -> Hooks:
    hooks = Hooks()
    if s.role == "replica":
        hooks.replica = _optional("entrypoint.flows.replica")
        if hooks.replica is None:
            raise ConfigError("POSTGRES_ROLE=replica is not available yet")
        hooks.replica.validate(env)
    elif s.role == "primary":
        hooks.replica = _optional("entrypoint.flows.replica")
    hooks.tls = _optional("entrypoint.tls")
    detect_tls = _optional("entrypoint.detect.tls")
    if hooks.tls is not None and detect_tls is not None:
        hooks.tls_settings = hooks.tls.parse(env)
        hooks.tls_material = detect_tls.read_material(hooks.tls_settings)
    else:
        hooks.tls = None
    hooks.archive = _optional("entrypoint.archive")
    detect_archive = _optional("entrypoint.detect.archive")
    if hooks.archive is not None and detect_archive is not None:
        hooks.archive_settings = hooks.archive.parse(env)
        if hooks.archive_settings.enabled:
            hooks.archive_existing = detect_archive.existing_config(Path(hooks.archive.CONFIG_PATH))
    else:
        hooks.archive = None
    return hooks


def _manifest(s: Settings) -> tuple[list[str], list[str], Any]:
    """(default preload, first-boot extensions, runtime or None) from image/extensions.json."""
    try:
        text = s.extensions_json.read_text()
    except FileNotFoundError:
        return list(DEFAULT_PRELOAD), [], None
    except OSError as exc:
        raise RuntimeFailure(f"cannot read {s.extensions_json}: {exc.strerror}") from None
    from entrypoint import manifest

    try:
        runtime = manifest.parse_runtime(text)
    except ValueError as exc:
        raise RuntimeFailure(f"{s.extensions_json} is broken (an image defect): {exc}") from None
    return list(runtime.default_preload), list(runtime.first_boot_extensions), runtime


def _preload(s: Settings, default: list[str], bindir: Path) -> list[str]:
    if s.preload_override is None:
        return default
    from entrypoint import manifest

    return manifest.check_preload(s.preload_override, detect_pgdata.installed_libraries(bindir))


def _check_args(args: Sequence[str]) -> None:
    for i, arg in enumerate(args):
        if arg in ("-D", "--single", "--boot", "--describe-config") or arg.startswith("-D"):
            raise ConfigError(f"postgres argument {arg!r} is managed by the entrypoint; set PGDATA instead")
        if arg == "-c" and (i + 1 >= len(args) or "=" not in args[i + 1]):
            raise ConfigError("postgres argument -c needs name=value")


def _pg_major(state: detect_pgdata.PgdataState, bindir: Path) -> int:
    binary_major = detect_pgdata.bindir_major(bindir)
    if binary_major is None:
        from entrypoint.apply import pg

        version = pg.postgres_version(bindir).split()
        binary_major = int(version[-1].split(".")[0]) if version and version[-1][0].isdigit() else None
    if (
        state.initialised
        and state.pg_major is not None
        and binary_major is not None
        and state.pg_major != binary_major
    ):
        raise ConfigError(
            f"PGDATA={state.path} holds a PostgreSQL {state.pg_major} cluster but this image runs "
            f"PostgreSQL {binary_major}; upgrade the data (dump/restore or pg_upgrade) "
            "or use a matching image"
        )
    major = binary_major or state.pg_major
    if major is None:
        raise RuntimeFailure(f"cannot tell the PostgreSQL version of {bindir}")
    return major


def _tune(ctx: Context, user: Mapping[str, tuple[str, str]], floors: Mapping[str, int] | None = None) -> Any:
    from entrypoint.detect import host
    from entrypoint.tuning import tune

    facts = host.detect(Path("/"), data_dir=str(ctx.settings.pgdata))
    return tune(
        ctx.settings.autoconfig,
        facts,
        ctx.pg_major,
        user={k: v for k, (v, _) in user.items()},
        floors=floors or {},
    )


# --- the run ------------------------------------------------------------------------------------------


def run(env: Mapping[str, str], args: list[str]) -> int:
    if args and not args[0].startswith("-"):
        execute.exec_command(args, env)
    started = time.monotonic()
    s = settings_mod.parse(env)
    _check_args(args)
    hooks = _hooks(env, s)
    bindir = detect_pgdata.find_bindir(s.bindir)
    if bindir is None:
        where = f"PG_BINDIR={s.bindir}" if s.bindir else "/usr/lib/postgresql/*/bin or PATH"
        raise ConfigError(f"no PostgreSQL server binary found in {where}")
    state = detect_pgdata.inspect(s.pgdata)
    if not state.initialised and s.role != "replica":
        settings_mod.require_first_boot_password(s)
        if state.foreign_entries:
            shown = ", ".join(state.foreign_entries[:5])
            raise ConfigError(
                f"PGDATA={s.pgdata} is not empty but holds no cluster (no PG_VERSION): {shown}; "
                "point PGDATA at an empty directory (for a volume root, use a subdirectory)"
            )
    major = _pg_major(state, bindir)
    default_preload, first_boot_ext, runtime = _manifest(s)
    ctx = Context(
        env=env,
        args=list(args),
        settings=s,
        hooks=hooks,
        bindir=bindir,
        pg_major=major,
        preload=_preload(s, default_preload, bindir),
    )
    if runtime is not None:
        ctx.extensions, ctx.skipped_extensions = runtime.first_boot_plan(ctx.preload)
        _image_settings(ctx, runtime, state.state)
    else:
        ctx.extensions = first_boot_ext
    sources = (
        detect_pgdata.user_sources(s.pgdata, s.conf_d, args)
        if state.initialised
        else detect_pgdata.user_sources(Path("/nonexistent-aza-pg"), s.conf_d, args)
    )
    user = plan.user_values(sources)
    tuning = _tune(ctx, user)  # ConfigError (e.g. below 512MB) before anything on disk changes
    if s.role == "replica":
        sqlplan = SqlPlan()
    elif state.initialised:
        sqlplan = _password_sql(ctx, state.state)
    else:
        sqlplan = _first_boot_sql(ctx)
    root = os.geteuid() == 0
    account = privileges.lookup("postgres") if root else privileges.current()
    ctx.os_users = ["root", account.name] if root else ["root", "postgres", account.name]
    role_conf: dict[str, str] = {}
    if s.role == "primary":
        role_conf = (
            dict(hooks.replica.primary_config(env))
            if hooks.replica is not None
            else {"synchronous_standby_names": env.get("POSTGRES_SYNCHRONOUS_STANDBY_NAMES", "")}
        )
    # a replica's files depend on its clone, made after the drop; everyone else's are known now
    generated = _generated_files(ctx, tuning, role_conf) if s.role != "replica" else None
    needs_tools = (
        generated is None
        or not state.initialised
        or bool(sqlplan.steps)
        or plan.validation_fingerprint(generated, sources, detect_pgdata.binary_id(bindir))
        != state.state.get("validated")
    )
    _import_before_drop(ctx, needs_tools=needs_tools)

    # --- from here on, things change on disk ---------------------------------------------------------
    if root:
        privileges.ensure_dir(s.pgdata, account, 0o700, allowed=(0o750,))
        privileges.ensure_dir(s.socket_dir, account, 0o2775, allowed=(0o2777, 0o3777, 0o775, 0o755, 0o777))
        if s.initdb_waldir is not None and not state.initialised:
            privileges.ensure_dir(s.initdb_waldir, account, 0o700)
        _apply_pre_hooks(ctx, account)
        privileges.drop(account)
        os.chdir("/")  # the caller's directory may be unreadable for postgres; children inherit it
    else:
        try:
            s.pgdata.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise RuntimeFailure(
                f"cannot create PGDATA={s.pgdata} as {account.name}: {exc.strerror}"
            ) from None
        _apply_pre_hooks(ctx, account)
    ctx.account = account
    child_env = _child_env(env, account)

    floors: Mapping[str, int] = {}
    if s.role == "replica":
        assert hooks.replica is not None  # noqa: S101 - checked in _hooks
        rs = hooks.replica.prepare(env, s.pgdata, bindir)
        floors, role_conf = dict(rs.floors), dict(rs.config)
        ctx.floors = dict(floors)
        state = detect_pgdata.inspect(s.pgdata)
        sources = detect_pgdata.user_sources(s.pgdata, s.conf_d, args)
        user = plan.user_values(sources)
        tuning = _tune(ctx, user, floors)
        generated = _generated_files(ctx, tuning, role_conf)
    assert generated is not None  # noqa: S101 - every role has its files by now
    first_boot = not state.initialised
    if first_boot:
        if state.staging_leftover:
            log.warn(C, T, "removing the incomplete cluster a failed first boot left behind")
            _remove_failed_staging(s)
        saved = _first_boot(ctx, tuning, generated, child_env, sqlplan)
        sqlplan = SqlPlan(fingerprints=sqlplan.fingerprints, salt_hex=sqlplan.salt_hex)
        state = detect_pgdata.inspect(s.pgdata)
        sources = detect_pgdata.user_sources(s.pgdata, s.conf_d, args)
        user = plan.user_values(sources)
    else:
        saved = dict(state.state)
        if not state.has_include:
            log.warn(
                C,
                T,
                f'{s.pgdata}/postgresql.conf does not contain "{detect_pgdata.INCLUDE_LINE}": '
                "the generated configuration (auto-config, pg_hba) is not applied; add that line at its top",
            )
        _write_generated(s.pgdata, generated)

    _log_start(ctx, tuning, user, saved)
    _passwords(ctx, saved, sqlplan, child_env)
    _validate(ctx, generated, sources, saved, child_env, floors, tuning, user)
    saved["facts"] = {"memory_mb": tuning.memory_mb, "cpus": tuning.cpus}
    if ctx.server_cache:
        saved["server"] = ctx.server_cache
    _save_state(s.pgdata, saved)
    log.info(
        C,
        T,
        f"starting PostgreSQL {ctx.pg_major} (role {s.role}, port {s.port}) "
        f"after {time.monotonic() - started:.2f}s of preparation",
    )
    execute.exec_postgres(bindir, s.pgdata, args, settings_mod.scrubbed_env(child_env))


def _image_settings(ctx: Context, runtime: Any, saved: Mapping[str, Any]) -> None:
    """Values the image's extension catalog asks for: pg_cron without TCP connections, and the logical
    decoding plugins allowed on servers that have output_plugin_libraries (PostgreSQL 17.12+ on Debian)."""
    if "pg_cron" in ctx.preload:
        ctx.extra_base["cron.use_background_workers"] = "on"
    plugins = getattr(runtime, "output_plugin_libraries", None)
    if not callable(plugins):
        return
    binary = detect_pgdata.binary_id(ctx.bindir)
    cached = saved.get("server")
    if (
        isinstance(cached, dict)
        and cached.get("binary") == binary
        and isinstance(cached.get("settings"), dict)
    ):
        ctx.server_cache = dict(cached)
    else:
        from entrypoint.apply import pg

        known = pg.known_settings(ctx.bindir)
        ctx.server_cache = {
            "binary": binary,
            "settings": {name: name in known for name in ("output_plugin_libraries",)},
        }
    if ctx.server_cache["settings"].get("output_plugin_libraries"):
        ctx.extra_base["output_plugin_libraries"] = ", ".join(plugins())


def _import_before_drop(ctx: Context, *, needs_tools: bool) -> None:
    """Import now everything the rest of this start runs in Python.

    After the drop to the postgres user the interpreter may no longer be able to read its own files (a
    venv or pyenv under /root, a checkout in a 0700 directory), so no module may be imported after it.
    The process tests enforce this with an import guard (tests/process/pgharness.py). Everything below
    is cheap; ``needs_tools`` (first boot, a password or configuration change, a replica) adds the
    process helpers, and psycopg (slow to import) only for role replica, whose clone talks to the primary.
    """
    if needs_tools:
        importlib.import_module("entrypoint.apply.pg")
    for name in (
        "entrypoint.render.conf",
        "entrypoint.render.hba",
        "entrypoint.scram",
        "entrypoint.tuning",
        "entrypoint.detect.host",
    ):
        importlib.import_module(name)
    if ctx.settings.role == "replica":
        importlib.import_module("psycopg")
        _optional("entrypoint.apply.basebackup")
        preload = getattr(ctx.hooks.replica, "import_before_drop", None)
        if callable(preload):
            preload()


def _remove_failed_staging(s: Settings) -> None:
    """The staging dir of a failed first boot, and the WAL it wrote into POSTGRES_INITDB_WALDIR."""
    staging = s.pgdata / detect_pgdata.STAGING
    wal = staging / "pg_wal"
    if s.initdb_waldir is not None and wal.is_symlink() and Path(os.readlink(wal)) == s.initdb_waldir:
        for entry in s.initdb_waldir.iterdir():
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
    shutil.rmtree(staging)


def _apply_pre_hooks(ctx: Context, account: privileges.Account) -> None:
    """Concerns that may need root, before the drop: TLS key copies, pgBackRest's config (BACKUP)."""
    hooks, s = ctx.hooks, ctx.settings
    uid, gid = (account.uid, account.gid) if os.geteuid() == 0 else (None, None)
    if hooks.tls is not None:
        mod = _optional("entrypoint.apply.tls")
        if mod is not None:
            mod.install(hooks.tls_material, s.pgdata, uid, gid)
    if hooks.archive is not None and hooks.archive_settings.enabled:
        mod = _optional("entrypoint.apply.archive")
        if mod is not None:
            text = hooks.archive.pgbackrest_config(
                hooks.archive_settings,
                pgdata=str(s.pgdata),
                socket_dir=str(s.socket_dir),
                port=s.port,
                superuser=s.user,
            )
            mod.install(hooks.archive_settings, text, hooks.archive_existing, uid=uid, gid=gid)


def _child_env(env: Mapping[str, str], account: privileges.Account) -> dict[str, str]:
    out = dict(env)
    out.update({"HOME": account.home or "/", "USER": account.name, "LOGNAME": account.name})
    return out


def _generated_files(ctx: Context, tuning: Any, role_conf: Mapping[str, str]) -> plan.GeneratedFiles:
    from entrypoint.render import conf, hba

    s = ctx.settings
    aza = s.pgdata / detect_pgdata.AZA_DIR
    base = plan.base_conf(
        listen_addresses=s.listen_addresses,
        socket_dir=str(s.socket_dir),
        hba_file=str(aza / "pg_hba.conf"),
        ident_file=str(aza / "pg_ident.conf"),
        preload=ctx.preload,
        db=s.db,
        extra=ctx.extra_base,
    )
    auto = tuning.to_conf()
    if tuning.enabled:
        auto += conf.render(
            plan.facts_conf(tuning.memory_source, tuning.memory_mb, tuning.cpu_source, tuning.cpus)
        )
    files = {"conf.d/" + plan.BASE_FILE: base, "conf.d/" + plan.AUTO_FILE: auto}
    if role_conf:
        files["conf.d/" + plan.ROLE_FILE] = plan.extra_conf(role_conf, f"POSTGRES_ROLE={s.role}")
    extra: dict[str, str] = {}
    if ctx.hooks.tls is not None:
        extra.update(ctx.hooks.tls.conf(ctx.hooks.tls_settings, str(s.pgdata)))
    if ctx.hooks.archive is not None:
        extra.update(ctx.hooks.archive.conf(ctx.hooks.archive_settings))
    if extra:
        files["conf.d/30-tls-archive.conf"] = plan.extra_conf(extra, "TLS (POSTGRES_SSL) and WAL archiving")
    files["mounted.conf"] = plan.mounted_conf(str(s.conf_d), s.conf_d.is_dir())
    network_type = "host"
    if ctx.hooks.tls is not None:
        network_type = ctx.hooks.tls.hba_connection_type(ctx.hooks.tls_settings)
    files["pg_hba.conf"] = hba.render_hba(
        hba.HbaInput(
            superuser=s.user,
            auth_method=s.host_auth_method,
            cidrs=s.hba_cidrs,
            replication_user=s.replication_user if (s.replication_enabled or s.role == "primary") else None,
            network_type=network_type,
        )
    )
    files["pg_ident.conf"] = hba.render_ident(s.user, ctx.os_users)
    return plan.GeneratedFiles(files)


def _write_generated(pgdata: Path, generated: plan.GeneratedFiles) -> None:
    aza = pgdata / detect_pgdata.AZA_DIR
    (aza / "conf.d").mkdir(mode=0o700, parents=True, exist_ok=True)
    for rel, content in generated.files.items():
        path = aza / rel
        try:
            if path.read_text() == content:
                continue
        except OSError:
            pass
        fs.write_atomic(path, content, mode=0o600)
    wanted = {rel.split("/", 1)[1] for rel in generated.files if rel.startswith("conf.d/")}
    for entry in (aza / "conf.d").iterdir():
        if entry.name not in wanted:
            entry.unlink()


# --- first boot ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SqlPlan:
    """SQL rendered to text before the privilege drop: (database, statements) steps, in order."""

    steps: tuple[tuple[str, tuple[str, ...]], ...] = ()
    roles: tuple[str, ...] = ()  # roles whose password the steps set
    fingerprints: Mapping[str, str] = field(default_factory=dict)
    salt_hex: str = ""
    superuser_verifier: str | None = None


def _text(statements: Sequence[Any]) -> tuple[str, ...]:
    return tuple(stmt.as_string(None) for stmt in statements)


def _first_boot_sql(ctx: Context) -> SqlPlan:
    """Everything first boot runs in SQL, with passwords as SCRAM verifiers."""
    from psycopg import sql

    from entrypoint import scram
    from entrypoint.sql import pgbouncer_auth, roles

    s = ctx.settings
    steps: list[tuple[str, tuple[str, ...]]] = []
    if s.db not in ("postgres", "template1", "template0"):
        steps.append(("postgres", _text([sql.SQL("CREATE DATABASE {}").format(sql.Identifier(s.db))])))
    global_stmts: list[Any] = []
    if s.replication_enabled:
        rv = scram.scram_verifier(s.replication_password) if s.replication_password else None
        global_stmts += roles.replicator(s.replication_user, rv)
        global_stmts.append(roles.replication_slot(s.slot_name))
    if s.exporter_password is not None:
        global_stmts += roles.monitoring(scram.scram_verifier(s.exporter_password))
    if global_stmts:
        steps.append(("postgres", _text(global_stmts)))
    if s.pgbouncer_auth_password is not None:
        pv = scram.scram_verifier(s.pgbouncer_auth_password)
        for i, dbname in enumerate(dict.fromkeys([s.db, "postgres", "template1"])):
            steps.append((dbname, _text(pgbouncer_auth.statements(pv if i == 0 else None))))
    if ctx.extensions:
        steps.append((s.db, _text([roles.create_extension(n) for n in ctx.extensions])))
    salt = os.urandom(16)
    return SqlPlan(
        steps=tuple(steps),
        roles=tuple(s.secrets()),
        fingerprints={role: scram.secret_fingerprint(pw, salt) for role, pw in s.secrets().items()},
        salt_hex=salt.hex(),
        superuser_verifier=scram.scram_verifier(s.password) if s.password is not None else None,
    )


def _first_boot(
    ctx: Context, tuning: Any, generated: plan.GeneratedFiles, env: Mapping[str, str], sqlplan: SqlPlan
) -> dict[str, Any]:
    from entrypoint.apply import pg

    s = ctx.settings
    staging = s.pgdata / detect_pgdata.STAGING
    clean_env = settings_mod.scrubbed_env(env)
    if s.host_auth_method == "trust":
        log.warn(
            C,
            T,
            "POSTGRES_HOST_AUTH_METHOD=trust: ANYONE who can reach the server can log in as ANY "
            "role WITHOUT a password. Never use this outside a throw-away test.",
        )
    pg.initdb(
        ctx.bindir,
        staging,
        superuser=s.user,
        verifier=sqlplan.superuser_verifier,
        auth=s.host_auth_method,
        waldir=s.initdb_waldir,
        extra_args=s.initdb_args,
        env=clean_env,
    )
    managed = [d.name for d in tuning.decisions] + [
        "listen_addresses",
        "max_connections",
        "shared_buffers",
        "max_wal_size",
        "min_wal_size",
    ]
    conf_path = staging / "postgresql.conf"
    fs.write_atomic(conf_path, plan.first_boot_postgresql_conf(conf_path.read_text(), managed), mode=0o600)
    (s.pgdata / detect_pgdata.AZA_DIR).mkdir(mode=0o700, exist_ok=True)
    (staging / detect_pgdata.AZA_DIR).symlink_to(Path("..") / detect_pgdata.AZA_DIR)
    _write_generated(s.pgdata, generated)

    for name in ctx.skipped_extensions:
        log.warn(C, T, f"not creating extension {name}: its library is not in shared_preload_libraries")
    if ctx.extensions:
        log.info(C, T, f"creating extensions in {s.db}: {', '.join(ctx.extensions)}")
    with pg.temp_server(ctx.bindir, staging, s.port, clean_env) as server:
        for dbname, statements in sqlplan.steps:
            pg.run_sql(server, s.user, dbname, statements, bindir=ctx.bindir)
        script_env = {**env, "PGDATA": str(staging), "POSTGRES_USER": s.user, "POSTGRES_DB": s.db}
        for script in detect_pgdata.init_scripts(s.initdb_d):
            pg.run_init_script(
                script,
                server,
                user=s.user,
                dbname=s.db,
                bindir=ctx.bindir,
                env=clean_env,
                script_env=script_env,
            )
    saved: dict[str, Any] = {
        "version": 1,
        "salt": sqlplan.salt_hex,
        "passwords": dict(sqlplan.fingerprints),
    }
    _save_state(s.pgdata, saved)
    pg.promote_staging(staging, s.pgdata, keep=detect_pgdata.AZA_DIR)
    log.info(C, T, "first boot complete: the cluster is initialised")
    return saved


# --- every start --------------------------------------------------------------------------------------


def _save_state(pgdata: Path, saved: Mapping[str, Any]) -> None:
    path = pgdata / detect_pgdata.AZA_DIR / detect_pgdata.STATE_FILE
    text = json.dumps(saved, indent=1, sort_keys=True) + "\n"
    try:
        if path.read_text() == text:
            return
    except OSError:
        pass
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fs.write_secret(path, text)


def _log_start(
    ctx: Context, tuning: Any, user: Mapping[str, tuple[str, str]], saved: Mapping[str, Any]
) -> None:
    s = ctx.settings
    log.info(C, AUTO, tuning.summary())
    if not tuning.enabled:
        log.info(C, AUTO, "POSTGRES_AUTO_CONFIG=off: no computed values are written")
    for warning in tuning.warnings:
        log.warn(C, AUTO, warning)
    changed = plan.facts_changed(saved.get("facts") or {}, tuning.memory_mb, tuning.cpus)
    if changed:
        log.info(C, AUTO, changed)
    by_user = [name for name in tuning.overridden if name in user]
    if by_user:
        from entrypoint.tuning import tune

        baseline = tune(
            ctx.settings.autoconfig, tuning.facts, ctx.pg_major, user={}, floors=ctx.floors
        ).settings
        for override in plan.overrides(baseline, user):
            log.info(C, AUTO, override.message())
    for name in tuning.overridden:
        if name not in user:
            with contextlib.suppress(KeyError):
                d = tuning.decision(name)
                log.info(C, AUTO, f"{name}={d.value} set by {d.source}")
    for name in ("listen_addresses", "hba_file", "ident_file", "unix_socket_directories"):
        if name in user:
            log.info(C, T, f"{name}={user[name][0]} set by {user[name][1]}")
    preload = user.get("shared_preload_libraries", None)
    if preload is not None:
        log.info(C, T, f"shared_preload_libraries={preload[0]} (set by {preload[1]})")
    else:
        log.info(C, T, f"shared_preload_libraries={','.join(ctx.preload)}")
    if s.host_auth_method == "trust":
        log.warn(
            C,
            T,
            "POSTGRES_HOST_AUTH_METHOD=trust: every pg_hba line is trust; ANY client can log in "
            "as ANY role without a password",
        )
    nets = ", ".join(("127.0.0.1/32", "::1/128", *s.hba_cidrs))
    log.info(
        C,
        T,
        f"pg_hba: {s.host_auth_method} over TCP from {nets}; socket: {s.user} by peer for "
        f"{', '.join(dict.fromkeys(ctx.os_users))}",
    )


def _password_sql(ctx: Context, saved: Mapping[str, Any]) -> SqlPlan:
    """The single-user statements that bring role passwords in line with the environment (often none).

    Only HMAC fingerprints are compared (salt from the state file); psycopg is imported only when a
    password changed, so an ordinary restart stays cheap.
    """
    from entrypoint import scram

    s = ctx.settings
    salt_hex = saved.get("salt")
    if not isinstance(salt_hex, str):
        salt_hex = os.urandom(16).hex()
    salt = bytes.fromhex(salt_hex)
    secrets = s.secrets()
    current = {role: scram.secret_fingerprint(pw, salt) for role, pw in secrets.items()}
    recorded = saved.get("passwords")
    todo = plan.password_plan(current, recorded if isinstance(recorded, dict) else {})
    if not todo.needed or s.role == "replica":
        return SqlPlan(fingerprints=current, salt_hex=salt_hex)
    from entrypoint.sql import pgbouncer_auth, roles

    stmts: list[Any] = []
    per_db: list[str] = []
    for role in todo.roles:
        verifier = scram.scram_verifier(secrets[role])
        if role == s.user:
            stmts.append(roles.set_password(role, verifier))
        elif role == s.replication_user:
            stmts += roles.replicator(role, verifier)
            if role not in (recorded or {}):
                stmts.append(roles.replication_slot(s.slot_name))
        elif role == roles.MONITOR_ROLE:
            stmts += roles.monitoring(verifier)
        elif role == pgbouncer_auth.ROLE:
            if todo.create_pgbouncer_objects:
                per_db = list(dict.fromkeys([s.db, "postgres", "template1"]))
            stmts += pgbouncer_auth.statements(verifier)[:3]
    steps = [("template1", _text(stmts))]
    steps += [(dbname, _text(pgbouncer_auth.statements(None))) for dbname in per_db]
    return SqlPlan(steps=tuple(steps), roles=todo.roles, fingerprints=current, salt_hex=salt_hex)


def _passwords(ctx: Context, saved: dict[str, Any], sqlplan: SqlPlan, env: Mapping[str, str]) -> None:
    if sqlplan.steps:
        from entrypoint.apply import pg

        log.info(C, T, f"setting the password of {', '.join(sqlplan.roles)} from the environment")
        for dbname, statements in sqlplan.steps:
            pg.single_user(
                ctx.bindir, ctx.settings.pgdata, dbname, statements, settings_mod.scrubbed_env(env)
            )
    if ctx.settings.role != "replica":
        saved["salt"] = sqlplan.salt_hex
        saved["passwords"] = dict(sqlplan.fingerprints)


def _validate(
    ctx: Context,
    generated: plan.GeneratedFiles,
    sources: Sequence[detect_pgdata.UserSource],
    saved: dict[str, Any],
    env: Mapping[str, str],
    floors: Mapping[str, int],
    tuning: Any,
    user: Mapping[str, tuple[str, str]],
) -> None:
    s = ctx.settings
    fingerprint = plan.validation_fingerprint(generated, sources, detect_pgdata.binary_id(ctx.bindir))
    if saved.get("validated") != fingerprint:
        from entrypoint.apply import pg

        pg.validate(ctx.bindir, s.pgdata, ctx.args, settings_mod.scrubbed_env(env))
        saved["validated"] = fingerprint
    if floors and ctx.hooks.replica is not None:
        effective: dict[str, int] = {}
        for name in FLOOR_KEYS:
            raw = user[name][0] if name in user else tuning.settings.get(name)
            if raw is not None and str(raw).strip().isdigit():
                effective[name] = int(str(raw).strip())
        ctx.hooks.replica.check_floors(floors, effective)
