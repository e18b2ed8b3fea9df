"""Run the real ``aza-pg postgres`` entrypoint as a subprocess against real PostgreSQL binaries.

Shared by the process tests of several engineers; keep this API stable:

    from tests.process.pgharness import Instance, free_port, BINDIR

    with Instance.create(env={"POSTGRES_PASSWORD": "pw"}) as pg:   # free port, temp PGDATA, 127.0.0.1 only
        pg.start()                      # spawns the entrypoint, waits (bounded) until it accepts TCP
        with pg.connect() as conn:      # psycopg connection to 127.0.0.1 as POSTGRES_USER/POSTGRES_PASSWORD
            conn.execute("SELECT 1")
        pg.stop()                       # SIGTERM, waits (bounded); returns seconds taken
        pg.start(args=["-c", "work_mem=8MB"])
        pg.log_text()                   # everything the entrypoint and the server printed (all starts)
    # leaving the block kills anything left (process group) and removes every temp dir

Other members:
    Instance.create(env=..., pgdata=None, memory_mb=1024, cpus=2) -> Instance (not started)
    pg.env                    the full environment given to the entrypoint (mutable between starts)
    pg.base, pg.pgdata, pg.port, pg.socket_dir, pg.initdb_d, pg.conf_d   (paths, reachable by postgres)
    pg.run(args=(), timeout=60) -> Result(returncode, output)   run to completion (bad input, exec'd commands)
    pg.start(args=(), timeout=90, wait=True)      raises StartFailed(output) if the process exits first
    pg.wait_ready(timeout=60)
    pg.proc / pg.pid          the running process (after exec: the postmaster)
    pg.stop(sig=signal.SIGTERM, timeout=30) -> float
    pg.kill()                 SIGKILL the process group (crash)
    pg.healthcheck(env_extra=None) -> Result      runs `aza-pg healthcheck` with this instance's env
    pg.dsn(user=None, password=None, dbname=None) -> str   libpq conninfo for 127.0.0.1:port
    pg.copy_pgdata_from(path)  copy a template data directory (cp -a, owner kept) before start
    pg.output_since(mark) / pg.mark()   log text written after a mark (one start's output)
    tree_hash(path) -> str    hash of names, modes, owners and contents under path (byte-for-byte checks)
    template_pgdata(env=None) -> Path   an initialised, stopped PGDATA made once per test process (copy it)

Every entrypoint runs under IMPORT_GUARD: once it has dropped from root to postgres, importing a module
that is not loaded yet raises ImportError (in CI the venv may be unreadable for postgres).

All processes listen on 127.0.0.1 only (AZA_PG_LISTEN_ADDRESSES=127.0.0.1). Temp dirs live under /tmp
with mode 0755 so the entrypoint, started as root, can drop to the postgres user and still reach them.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

REPO = Path(__file__).resolve().parents[2]


def _find_bindir() -> Path:
    env = os.environ.get("PG_BINDIR")
    if env:
        return Path(env)
    base = Path("/usr/lib/postgresql")
    majors = (
        sorted(
            (int(p.name) for p in base.iterdir() if p.name.isdigit() and (p / "bin/postgres").exists()),
            reverse=True,
        )
        if base.is_dir()
        else []
    )
    if majors:
        return base / str(majors[0]) / "bin"
    found = shutil.which("postgres")
    if not found:
        raise RuntimeError("no PostgreSQL binaries: set PG_BINDIR")
    return Path(os.path.realpath(found)).parent


BINDIR = _find_bindir()
PG_MAJOR = int(BINDIR.parent.name) if BINDIR.parent.name.isdigit() else 0


# The entrypoint runs under this guard in every process test: once it has dropped from root to the
# postgres user, importing any module not yet loaded is an error. In CI the interpreter and the checkout
# may be unreadable for postgres (a venv under /root), so a late import would fail there; the guard makes
# it fail everywhere, deterministically.
IMPORT_GUARD = """
import os, sys
_root = os.geteuid() == 0
class _NoImportAfterDrop:
    def find_spec(self, name, path=None, target=None):
        if _root and os.geteuid() != 0:
            raise ImportError(f"module {name!r} imported after the privilege drop (import it before)")
        return None
sys.meta_path.insert(0, _NoImportAfterDrop())
from entrypoint.cli import main
main(prog_name="aza-pg")
"""
PYTHON = [sys.executable]
PYTHON_ENV: dict[str, str] = {}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _postgres_ids() -> tuple[int, int]:
    entry = pwd.getpwnam("postgres")
    return entry.pw_uid, entry.pw_gid


def tree_hash(path: Path) -> str:
    """Names, types, modes, owners and file contents below ``path`` (symlinks not followed)."""
    digest = hashlib.sha256()
    if not path.exists():
        return "absent"
    for dirpath, dirnames, filenames in os.walk(path):
        dirnames.sort()
        for name in sorted(filenames + dirnames):
            full = Path(dirpath) / name
            st = full.lstat()
            digest.update(f"{full.relative_to(path)}|{st.st_mode}|{st.st_uid}|{st.st_gid}\n".encode())
            if full.is_file() and not full.is_symlink():
                digest.update(full.read_bytes())
            elif full.is_symlink():
                digest.update(os.readlink(full).encode())
    st = path.stat()
    digest.update(f"top|{st.st_mode}|{st.st_uid}|{st.st_gid}".encode())
    return digest.hexdigest()


@dataclass(frozen=True)
class Result:
    returncode: int
    output: str


class StartFailed(AssertionError):
    def __init__(self, message: str, output: str) -> None:
        super().__init__(f"{message}\n--- output ---\n{output[-4000:]}")
        self.output = output


class Instance:
    def __init__(self, base: Path, env: dict[str, str]) -> None:
        self.base = base
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = base / "output.log"
        self.log_path.touch()

    # --- construction -------------------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        env: Mapping[str, str] | None = None,
        *,
        memory_mb: int | None = 1024,
        cpus: int | None = 2,
        port: int | None = None,
    ) -> Instance:
        base = Path(tempfile.mkdtemp(prefix="aza-pg-test-", dir="/tmp"))
        os.chmod(base, 0o755)  # noqa: S103 - the postgres user must traverse it after the privilege drop
        uid, gid = _postgres_ids() if os.geteuid() == 0 else (os.geteuid(), os.getegid())
        for sub in ("sock", "initdb.d", "conf.d"):
            (base / sub).mkdir(mode=0o755)
            os.chown(base / sub, uid, gid)
        full = {
            "PATH": f"{BINDIR}:{os.environ.get('PATH', '/usr/bin:/bin')}",
            "LANG": "C.UTF-8",
            "PGDATA": str(base / "data"),
            "PGPORT": str(port or free_port()),
            "AZA_PG_SOCKET_DIR": str(base / "sock"),
            "AZA_PG_INITDB_D": str(base / "initdb.d"),
            "AZA_PG_CONF_D": str(base / "conf.d"),
            "AZA_PG_EXTENSIONS_JSON": str(base / "no-extensions.json"),
            "AZA_PG_LISTEN_ADDRESSES": "127.0.0.1",
            "PG_BINDIR": str(BINDIR),
            "POSTGRES_PASSWORD": "harness-password",
        }
        if memory_mb is not None:
            full["POSTGRES_MEMORY"] = str(memory_mb)
        if cpus is not None:
            full["POSTGRES_CPUS"] = str(cpus)
        full.update(env or {})
        return cls(base, {k: v for k, v in full.items() if v is not None})

    def __enter__(self) -> Instance:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.cleanup()

    # --- paths ---------------------------------------------------------------------------------------

    @property
    def pgdata(self) -> Path:
        return Path(self.env["PGDATA"])

    @property
    def port(self) -> int:
        return int(self.env["PGPORT"])

    @property
    def socket_dir(self) -> Path:
        return Path(self.env["AZA_PG_SOCKET_DIR"])

    @property
    def initdb_d(self) -> Path:
        return Path(self.env["AZA_PG_INITDB_D"])

    @property
    def conf_d(self) -> Path:
        return Path(self.env["AZA_PG_CONF_D"])

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    # --- output --------------------------------------------------------------------------------------

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def mark(self) -> int:
        return self.log_path.stat().st_size

    def output_since(self, mark: int) -> str:
        with self.log_path.open("rb") as fh:
            fh.seek(mark)
            return fh.read().decode(errors="replace")

    # --- processes -----------------------------------------------------------------------------------

    def _argv(self, command: str, args: Sequence[str]) -> list[str]:
        return [*PYTHON, "-c", IMPORT_GUARD, command, *args]

    def _spawn(self, command: str, args: Sequence[str], env: Mapping[str, str]) -> subprocess.Popen[bytes]:
        log = self.log_path.open("ab")
        try:
            return subprocess.Popen(
                self._argv(command, args),
                env=dict(env),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=str(REPO),
                start_new_session=True,
            )
        finally:
            log.close()

    def run(
        self,
        args: Sequence[str] = (),
        *,
        timeout: float = 60,
        command: str = "postgres",
        env: Mapping[str, str] | None = None,
    ) -> Result:
        """Run the entrypoint to completion (for inputs that must fail, or exec'd commands)."""
        mark = self.mark()
        proc = self._spawn(command, args, env if env is not None else self.env)
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _killpg(proc)
            raise
        return Result(code, self.output_since(mark))

    def start(self, args: Sequence[str] = (), *, timeout: float = 90, wait: bool = True) -> Instance:
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self._start_mark = self.mark()
        self.proc = self._spawn("postgres", args, self.env)
        if wait:
            self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = 60) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise StartFailed(
                    f"the entrypoint exited with {self.proc.returncode} before it was ready",
                    self.output_since(self._start_mark),
                )
            ready = subprocess.run(
                [str(BINDIR / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port), "-t", "1"],
                check=False,
                timeout=10,
            )
            if ready.returncode == 0:
                return
            time.sleep(0.05)
        out = self.output_since(self._start_mark)
        self.kill()
        raise StartFailed(f"not ready within {timeout}s", out)

    def start_output(self) -> str:
        """What the current/last start printed."""
        return self.output_since(self._start_mark)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> float:
        """Signal the (exec'd) process and wait for it to exit; seconds taken."""
        if self.proc is None or self.proc.poll() is not None:
            return 0.0
        began = time.monotonic()
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"did not stop within {timeout}s after signal {sig}") from None
        return time.monotonic() - began

    def kill(self) -> None:
        if self.proc is not None:
            _killpg(self.proc)

    def healthcheck(self, env_extra: Mapping[str, str] | None = None, timeout: float = 30) -> Result:
        env = {**self.env, **(env_extra or {})}
        return self.run(command="healthcheck", env=env, timeout=timeout)

    # --- clients -------------------------------------------------------------------------------------

    def dsn(self, user: str | None = None, password: str | None = None, dbname: str | None = None) -> str:
        from entrypoint.render import conninfo

        user = user or self.env.get("POSTGRES_USER") or "postgres"
        params = {
            "host": "127.0.0.1",
            "port": str(self.port),
            "user": user,
            "dbname": dbname or self.env.get("POSTGRES_DB") or user,
            "connect_timeout": "10",
        }
        pw = (
            password
            if password is not None
            else (
                self.env.get("POSTGRES_PASSWORD")
                if user == (self.env.get("POSTGRES_USER") or "postgres")
                else None
            )
        )
        if pw is not None:
            params["password"] = pw
        return conninfo.render(params)

    def connect(
        self, user: str | None = None, password: str | None = None, dbname: str | None = None, **kwargs: Any
    ) -> Any:
        import psycopg

        return psycopg.connect(self.dsn(user, password, dbname), autocommit=True, **kwargs)

    def query(self, sql: str, *params: Any, **kwargs: Any) -> Any:
        with self.connect(**kwargs) as conn:
            cur = conn.execute(sql, params or None)
            return cur.fetchall() if cur.description is not None else []

    # --- data ----------------------------------------------------------------------------------------

    def copy_pgdata_from(self, template: Path) -> None:
        assert not self.pgdata.exists()
        subprocess.run(["cp", "-a", str(template), str(self.pgdata)], check=True, timeout=120)

    def cleanup(self) -> None:
        self.kill()
        # a first boot's temporary server runs in its own process group: end it (and its children) too
        for pidfile in (self.pgdata / "postmaster.pid", self.pgdata / ".aza-pg-staging" / "postmaster.pid"):
            with contextlib.suppress(OSError, ValueError, IndexError):
                pid = int(pidfile.read_text().split()[0])
                # only a postgres started on this instance's data directory (pids get reused)
                if str(self.base).encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                    os.killpg(pid, signal.SIGKILL)
        with contextlib.suppress(OSError):
            shutil.rmtree(self.base)


def _killpg(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=30)


@contextlib.contextmanager
def running(
    env: Mapping[str, str] | None = None, args: Sequence[str] = (), **kwargs: Any
) -> Iterator[Instance]:
    """``with running(env) as pg:`` a started instance, always cleaned up."""
    with Instance.create(env, **kwargs) as pg:
        pg.start(args)
        yield pg


_TEMPLATES: dict[tuple[tuple[str, str], ...], Path] = {}


def template_pgdata(env: Mapping[str, str] | None = None) -> Path:
    """An initialised, cleanly stopped data directory made once per test process for ``env``.

    Copy it with ``Instance.copy_pgdata_from`` (use the same ``env``, incl. POSTGRES_PASSWORD); removed
    when the process exits.
    """
    import atexit

    key = tuple(sorted((env or {}).items()))
    if key in _TEMPLATES:
        return _TEMPLATES[key]
    keep = Path(tempfile.mkdtemp(prefix="aza-pg-template-", dir="/tmp"))
    atexit.register(shutil.rmtree, keep, True)
    with Instance.create(env) as pg:
        pg.start()
        pg.stop(signal.SIGINT)
        subprocess.run(["cp", "-a", str(pg.pgdata), str(keep / "data")], check=True, timeout=120)
    _TEMPLATES[key] = keep / "data"
    return keep / "data"
