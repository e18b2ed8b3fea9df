"""Running PostgreSQL's own tools: initdb, a socket-only temporary server, single-user mode, ``postgres -C``.

Every wait is bounded. Child processes get the scrubbed environment (no secrets); passwords travel only
as SCRAM verifiers (see ``entrypoint.scram``), in a 0600 file for initdb or on a pipe. SQL arrives here
already rendered to text (composed with psycopg.sql before the privilege drop) and runs through psql or
single-user mode, so after the drop this module needs no new Python import.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from entrypoint import log
from entrypoint.apply import fs
from entrypoint.errors import ConfigError, RuntimeFailure

COMPONENT = "POSTGRES"
TOPIC = "ENTRYPOINT"
START_TIMEOUT = 120.0
STOP_TIMEOUT = 120.0


def _tail(text: str, limit: int = 3) -> str:
    lines = [
        ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("STATEMENT:")
    ]
    important = [ln for ln in lines if any(k in ln for k in ("ERROR", "FATAL", "PANIC", "error", "invalid"))]
    return " | ".join((important or lines)[-limit:])


def initdb(
    bindir: Path,
    target: Path,
    *,
    superuser: str,
    verifier: str | None,
    auth: str,
    waldir: Path | None,
    extra_args: Sequence[str],
    env: Mapping[str, str],
) -> None:
    """initdb with checksums, UTF-8 and scram-sha-256; the password as a verifier in a 0600 file."""
    with tempfile.TemporaryDirectory(prefix="aza-pg-initdb-") as tmp:
        args = [
            str(bindir / "initdb"),
            "-D",
            str(target),
            f"--username={superuser}",
            "--data-checksums",
            "--encoding=UTF8",
            "--locale=C.UTF-8",
            "--no-instructions",
        ]
        if verifier is not None:
            pwfile = Path(tmp) / "pwfile"
            fs.write_secret(pwfile, verifier + "\n")
            args.append(f"--pwfile={pwfile}")
        if auth == "trust":
            args.append("--auth=trust")
        else:
            args += [f"--auth-local={auth}", f"--auth-host={auth}"]
        if waldir is not None:
            args.append(f"--waldir={waldir}")
        args += list(extra_args)
        log.info(
            COMPONENT, TOPIC, f"initdb: initialising a new cluster in {target.parent} (data checksums, UTF-8)"
        )
        proc = subprocess.run(args, env=dict(env), capture_output=True, text=True, check=False, timeout=600)
        if proc.returncode != 0:
            raise RuntimeFailure(
                f"initdb failed (exit {proc.returncode}): {_tail(proc.stderr + proc.stdout)}"
            )


class TempServer:
    """A postgres listening only on a private unix socket directory (no TCP)."""

    def __init__(self, bindir: Path, datadir: Path, port: int, env: Mapping[str, str]) -> None:
        self.bindir = bindir
        self.datadir = datadir
        self.port = port
        self.env = dict(env)
        self.socket_dir = Path(tempfile.mkdtemp(prefix="aza-pg-sock-"))
        os.chmod(self.socket_dir, 0o700)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        args = [
            str(self.bindir / "postgres"),
            "-D",
            str(self.datadir),
            "-p",
            str(self.port),
            "-c",
            "listen_addresses=",
            "-c",
            f"unix_socket_directories={self.socket_dir}",
            # setup needs no WAL archive (a base backup comes later), and an archive_command that
            # cannot work yet (no pgBackRest stanza) would hold the shutdown
            "-c",
            "archive_mode=off",
        ]
        # its own process group: if it must be killed, its children (backends, archiver) go with it
        self.proc = subprocess.Popen(args, env=self.env, start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeFailure(f"the temporary setup server exited with status {self.proc.returncode}")
            if self._accepting():
                return
            time.sleep(0.05)
        raise RuntimeFailure(
            f"the temporary setup server did not accept connections within {START_TIMEOUT:.0f}s"
        )

    def _accepting(self) -> bool:
        if not (self.socket_dir / f".s.PGSQL.{self.port}").exists():
            return False
        proc = subprocess.run(
            [str(self.bindir / "pg_isready"), "-q", "-h", str(self.socket_dir), "-p", str(self.port)],
            env=self.env,
            check=False,
            timeout=10,
        )
        return proc.returncode == 0

    def client_env(self, user: str, dbname: str) -> dict[str, str]:
        return {
            "PGHOST": str(self.socket_dir),
            "PGPORT": str(self.port),
            "PGUSER": user,
            "PGDATABASE": dbname,
        }

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # fast shutdown: clean, checkpointed
            try:
                self.proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=30)
                raise RuntimeFailure(
                    f"the temporary setup server did not stop within {STOP_TIMEOUT:.0f}s (killed)"
                ) from None
        with contextlib.suppress(OSError):
            shutil.rmtree(self.socket_dir)


@contextlib.contextmanager
def temp_server(bindir: Path, datadir: Path, port: int, env: Mapping[str, str]) -> Iterator[TempServer]:
    server = TempServer(bindir, datadir, port, env)
    try:
        server.start()
        yield server
    finally:
        server.stop()


def run_sql(server: TempServer, user: str, dbname: str, statements: Sequence[str], *, bindir: Path) -> None:
    """Run rendered statements (one transaction-less script, stop at the first error) through psql."""
    script = "".join(stmt + ";\n" for stmt in statements)
    proc = subprocess.run(
        [str(bindir / "psql"), "-v", "ON_ERROR_STOP=1", "--no-psqlrc", "-q", "--no-password", "-f", "-"],
        input=script,
        env={**server.env, **server.client_env(user, dbname)},
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    if proc.returncode != 0:
        raise RuntimeFailure(f"first-boot SQL in database {dbname!r} failed: {_tail(proc.stderr, 1)}")


_DECOMPRESS = {".gz": ["gzip", "-dc"], ".xz": ["xz", "-dc"], ".zst": ["zstd", "-dcq"]}


def run_init_script(
    script: Path,
    server: TempServer,
    *,
    user: str,
    dbname: str,
    bindir: Path,
    env: Mapping[str, str],
    script_env: Mapping[str, str],
) -> bool:
    """Run one /docker-entrypoint-initdb.d entry; False when its type is not one we run."""
    name = script.name
    client = {**env, **server.client_env(user, dbname)}
    psql = [str(bindir / "psql"), "-v", "ON_ERROR_STOP=1", "--no-psqlrc", "-q", "--no-password"]
    if name.endswith(".sh"):
        log.info(COMPONENT, TOPIC, f"init script {name}: running")
        runner = [str(script)] if os.access(script, os.X_OK) else ["bash", str(script)]
        proc = subprocess.run(runner, env={**script_env, **server.client_env(user, dbname)}, check=False)
        code = proc.returncode
    elif name.endswith(".sql"):
        log.info(COMPONENT, TOPIC, f"init script {name}: running")
        code = subprocess.run([*psql, "-f", str(script)], env=client, check=False).returncode
    elif any(name.endswith(".sql" + ext) for ext in _DECOMPRESS):
        log.info(COMPONENT, TOPIC, f"init script {name}: running")
        ext = "." + name.rsplit(".", 1)[1]
        with subprocess.Popen([*_DECOMPRESS[ext], str(script)], stdout=subprocess.PIPE, env=client) as dec:
            code = subprocess.run([*psql, "-f", "-"], stdin=dec.stdout, env=client, check=False).returncode
            if dec.stdout is not None:
                dec.stdout.close()
            dec_code = dec.wait(timeout=600)
        if code == 0 and dec_code != 0:
            code = dec_code
    else:
        log.info(
            COMPONENT, TOPIC, f"init script {name}: ignored (not .sh, .sql, .sql.gz, .sql.xz or .sql.zst)"
        )
        return False
    if code != 0:
        raise RuntimeFailure(
            f"init script {name} failed (exit {code}); first boot aborted and the data directory left "
            "uninitialised: fix the script and start again"
        )
    return True


def single_user(
    bindir: Path,
    pgdata: Path,
    dbname: str,
    statements: Sequence[str],
    env: Mapping[str, str],
) -> None:
    """Run rendered statements in single-user mode (no server, no socket): a cheap way to set passwords.

    Statements travel on stdin; ``exit_on_error`` turns any error into a non-zero exit.
    """
    text = "".join(stmt + ";\n\n" for stmt in statements)
    args = [
        str(bindir / "postgres"),
        "--single",
        "-j",
        "-D",
        str(pgdata),
        "-c",
        "exit_on_error=on",
        "-c",
        "log_min_messages=warning",
        dbname,
    ]
    proc = subprocess.run(
        args, input=text, env=dict(env), capture_output=True, text=True, check=False, timeout=600
    )
    if proc.returncode != 0:
        raise RuntimeFailure(f"setting role passwords (single-user mode) failed: {_tail(proc.stderr)}")


def validate(bindir: Path, pgdata: Path, args: Sequence[str], env: Mapping[str, str]) -> None:
    """Let the server parse the complete configuration (``postgres -C``): a bad value fails here."""
    cmd = [str(bindir / "postgres"), "-D", str(pgdata), *_config_args(args), "-C", "shared_buffers"]
    proc = subprocess.run(cmd, env=dict(env), capture_output=True, text=True, check=False, timeout=120)
    if proc.returncode != 0:
        raise ConfigError(f"PostgreSQL rejects the configuration: {_tail(proc.stderr + proc.stdout)}")


def _config_args(args: Sequence[str]) -> list[str]:
    """The configuration-changing part of the user's postgres arguments (all of them but -C)."""
    out: list[str] = []
    skip = False
    for arg in args:
        if skip:
            skip = False
            continue
        if arg == "-C":
            skip = True
            continue
        out.append(arg)
    return out


def promote_staging(staging: Path, pgdata: Path, keep: str) -> None:
    """Move the built cluster from ``staging`` into ``pgdata``; PG_VERSION last, so it is all-or-nothing."""
    entries = sorted(e for e in os.listdir(staging) if e != "PG_VERSION")
    for entry in entries:
        src = staging / entry
        if entry == keep and src.is_symlink():
            src.unlink()
            continue
        os.rename(src, pgdata / entry)
    fs.fsync_dir(pgdata)
    os.rename(staging / "PG_VERSION", pgdata / "PG_VERSION")
    fs.fsync_dir(pgdata)
    staging.rmdir()
    fs.fsync_dir(pgdata)


def known_settings(bindir: Path) -> set[str]:
    """Every setting name this server binary accepts (``postgres --describe-config``, allowed as root)."""
    proc = subprocess.run(
        [str(bindir / "postgres"), "--describe-config"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    return {line.split("\t", 1)[0] for line in proc.stdout.splitlines() if line}


def postgres_version(bindir: Path) -> str:
    proc = subprocess.run(
        [str(bindir / "postgres"), "--version"], capture_output=True, text=True, check=False, timeout=30
    )
    return proc.stdout.strip()
