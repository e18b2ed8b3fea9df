"""Turn an empty data directory into a clone of the primary, safely.

1. ``wait_for_primary``: bounded wait with backoff (one log line per attempt), using a replication
   connection made in-process (the password never reaches argv or an environment). It also tells whether
   the slot already exists. The final error names host, port and the cause.
2. ``clone``: ``pg_basebackup -X stream -c fast`` with the slot (``-C`` creates it when missing, reused
   when present) into ``$PGDATA/.aza-pg-clone`` on the same volume. pg_basebackup fsyncs what it wrote;
   ``standby.signal`` is added, the entries are renamed into ``$PGDATA`` with ``PG_VERSION`` last (after
   their names were recorded, see ``detect.standby``), and every directory touched is fsynced. The password
   reaches pg_basebackup through a 0600 password file named by ``PGPASSFILE``.
3. ``remove_leftovers``: what an interrupted clone (a killed pg_basebackup or entrypoint) left behind,
   exactly the names ``detect.standby`` proved are ours.
"""

from __future__ import annotations

import contextlib
import encodings.idna  # noqa: F401 - getaddrinfo loads it on first use of a host name; see below
import json
import os
import re
import select
import shutil
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

# Imported here, not lazily: the clone runs after the privilege drop, when the interpreter's own files may
# no longer be readable (the postgres flow imports this module first, via ``flows.replica.validate``).
import psutil
import psycopg
from psycopg import sql

from entrypoint import log
from entrypoint.apply import fs
from entrypoint.detect import standby
from entrypoint.errors import RuntimeFailure
from entrypoint.render import pgpass
from entrypoint.settings_replica import ReplicaSettings

COMPONENT = "POSTGRES"
TOPIC = "ENTRYPOINT"
PASSFILE_NAME = "replication.pgpass"
CONNECT_TIMEOUT = 5
MAX_BACKOFF = 10.0
PROGRESS_EVERY = 10.0  # seconds between progress lines (plus one per 10 % step)

# (pattern in the server's / libpq's message, what to tell the user). First match wins.
_CAUSES: tuple[tuple[str, str], ...] = (
    (r"resolve host|could not translate host name|Name or service not known|Temporary failure in name",
     "DNS lookup failed (is PRIMARY_HOST spelled right and on a network this container can reach?)"),
    (r"Connection refused", "connection refused (is the primary running and listening on that port?)"),
    (r"timeout expired|timed out|No route to host|Network is unreachable",
     "no answer (timeout or unreachable network)"),
    (r"password authentication failed|authentication failed",
     "authentication failed (PG_REPLICATION_PASSWORD or PG_REPLICATION_USER differs from the primary's)"),
    (r"no pg_hba\.conf entry", "refused by the primary's pg_hba.conf (no replication line for this address)"),
    (r"must be superuser or replication role|permission denied to start WAL sender|"
     r"must have the REPLICATION",
     "the replication user lacks the REPLICATION attribute"),
    (r"replication slot .* does not exist", "the replication slot is missing on the primary"),
    (r"replication slot .* is active", "the replication slot is in use by another standby "
     "(two replicas with the same REPLICATION_SLOT_NAME?)"),
    (r"all replication slots are in use|max_replication_slots",
     "the primary has no free replication slot (raise max_replication_slots)"),
    (r"number of requested standby connections exceeds|too many clients|remaining connection slots",
     "the primary has no free connection (max_wal_senders / max_connections)"),
    (r"the database system is (starting up|shutting down|in recovery mode|not yet accepting)",
     "the primary is starting up or shutting down"),
)


def describe_failure(message: str) -> str:
    """A short, actionable cause for a libpq / pg_basebackup error message (pure)."""
    for pattern, cause in _CAUSES:
        if re.search(pattern, message, re.IGNORECASE):
            return cause
    last = message.strip().splitlines()[-1] if message.strip() else "unknown error"
    return last.strip()


@dataclass(frozen=True)
class PrimaryInfo:
    server_version: int
    system_identifier: str
    slot_exists: bool | None  # None: the server cannot say (PostgreSQL < 15)


Conn = psycopg.Connection[tuple[object, ...]]


def _replication_connection(s: ReplicaSettings, connect_timeout: int) -> Conn:
    """A physical replication connection (what pg_basebackup and the walreceiver use), password in-process."""
    return psycopg.connect(
        host=s.primary_host, port=s.primary_port, user=s.user, password=s.password,
        replication="true", connect_timeout=connect_timeout, application_name="aza-pg-probe",
        autocommit=True,
    )


def _slot_exists(conn: Conn, slot_name: str) -> bool | None:
    """READ_REPLICATION_SLOT (PostgreSQL 15+): a row of NULLs when the slot does not exist."""
    if conn.info.server_version < 150000:
        return None
    row = conn.execute(sql.SQL("READ_REPLICATION_SLOT {}").format(sql.Identifier(slot_name))).fetchone()
    return bool(row and row[0] is not None)


def probe(s: ReplicaSettings) -> PrimaryInfo:
    """One replication connection: IDENTIFY_SYSTEM, then whether the slot exists. Raises psycopg errors."""
    with _replication_connection(s, CONNECT_TIMEOUT) as conn:
        row = conn.execute("IDENTIFY_SYSTEM").fetchone()
        sysid = row[0].decode() if row and isinstance(row[0], bytes) else str(row[0] if row else "")
        return PrimaryInfo(server_version=conn.info.server_version, system_identifier=sysid,
                           slot_exists=_slot_exists(conn, s.slot_name))


def check_primary(s: ReplicaSettings, system_identifier: str, *, connect_timeout: int = 3) -> None:
    """On the start of an existing standby: one quick look at the primary. A different cluster (PRIMARY_HOST
    now names another database system) is said loudly, since streaming from it can never work; a missing
    slot (a new primary after a failover, or a slot dropped by hand) is created so streaming can resume.
    Never waits and never fails the start: an unreachable primary is the walreceiver's job to retry."""
    where = f"{s.primary_host}:{s.primary_port}"
    try:
        with _replication_connection(s, connect_timeout) as conn:
            row = conn.execute("IDENTIFY_SYSTEM").fetchone()
            theirs = row[0].decode() if row and isinstance(row[0], bytes) else str(row[0] if row else "")
            if system_identifier and theirs and theirs != system_identifier:
                log.warn(COMPONENT, TOPIC, f"primary {where} is a different database system "
                         f"(identifier {theirs}; this standby was cloned from {system_identifier}): it "
                         "cannot stream from it. Point PRIMARY_HOST at its own primary, or empty this "
                         "volume to clone the new one")
                return
            if _slot_exists(conn, s.slot_name) is not False:
                return
            conn.execute(sql.SQL("CREATE_REPLICATION_SLOT {} PHYSICAL RESERVE_WAL").format(
                sql.Identifier(s.slot_name)))
            log.warn(COMPONENT, TOPIC, f"replication slot {s.slot_name} was missing on the primary {where}; "
                     "created it")
    except (psycopg.Error, OSError) as exc:
        log.info(COMPONENT, TOPIC, f"primary {where} not reachable right now ({describe_failure(str(exc))}); "
                 "the standby starts anyway and keeps retrying")


def backoff(attempt: int) -> float:
    """1, 2, 4, 8, 10, 10, ... seconds."""
    return min(MAX_BACKOFF, float(2 ** min(attempt - 1, 10)))


def wait_for_primary(
    s: ReplicaSettings, *,
    clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
    attempt_once: Callable[[ReplicaSettings], PrimaryInfo] = probe,
) -> PrimaryInfo:
    """Retry ``probe`` with backoff until it works or ``s.wait_timeout`` seconds have passed."""
    where = f"{s.primary_host}:{s.primary_port}"
    start = clock()
    attempt = 0
    while True:
        attempt += 1
        try:
            info = attempt_once(s)
        except (psycopg.Error, OSError) as exc:
            cause = describe_failure(str(exc))
        else:
            slot = {True: "exists", False: "missing, will be created", None: "unknown"}[info.slot_exists]
            log.info(COMPONENT, TOPIC, f"primary {where} is up (PostgreSQL {info.server_version // 10000}, "
                     f"attempt {attempt}); replication slot {s.slot_name}: {slot}")
            return info
        elapsed = clock() - start
        remaining = s.wait_timeout - elapsed
        if remaining <= 0:
            raise RuntimeFailure(
                f"primary {where} not usable for replication after {attempt} attempts in {elapsed:.0f}s "
                f"(PRIMARY_WAIT_TIMEOUT={s.wait_timeout}): {cause}; PGDATA was left empty"
            )
        delay = min(backoff(attempt), remaining)
        log.info(COMPONENT, TOPIC, f"waiting for primary {where} as {s.user} (attempt {attempt}, "
                 f"{elapsed:.0f}s of {s.wait_timeout}s): {cause}; retrying in {delay:.0f}s")
        sleep(delay)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def remove_leftovers(pgdata: Path, names: Sequence[str]) -> None:
    """Delete what an interrupted clone left (names proven ours by ``detect.standby.inspect``)."""
    # The move list goes last: while it exists, a crash here is still recognised on the next start.
    ordered = sorted(names, key=lambda n: n == standby.MOVE_LIST)
    for name in ordered:
        _remove(pgdata / name)
    fs.fsync_dir(pgdata)


def write_passfile(path: Path, s: ReplicaSettings) -> None:
    """The replication password for libpq, 0600 from creation on, matching only the primary."""
    entry = pgpass.Entry(password=s.password, host=s.primary_host, port=s.primary_port, database=None,
                         user=s.user)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fs.write_secret(path, pgpass.render([entry]))


def passfile_path(pgdata: Path) -> Path:
    return pgdata / standby.AZA_DIR / PASSFILE_NAME


_PROGRESS = re.compile(r"^\s*(\d+)/(\d+) kB \((\d+)%\)")


class _ProgressLog:
    """Turns pg_basebackup -P output into a log line every few seconds or 10 % step."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.last_time = clock()
        self.last_step = -1
        self.messages: list[str] = []

    def feed(self, text: str) -> None:
        text = text.strip()
        if not text:
            return
        match = _PROGRESS.match(text)
        if match is None:
            self.messages.append(text)
            log.info(COMPONENT, TOPIC, f"pg_basebackup: {text.removeprefix('pg_basebackup: ')}")
            return
        done, total, percent = (int(g) for g in match.groups())
        step = percent // 10
        now = self.clock()
        if step > self.last_step or now - self.last_time >= PROGRESS_EVERY:
            self.last_step, self.last_time = step, now
            log.info(COMPONENT, TOPIC, f"cloning: {done // 1024} of {total // 1024} MB ({percent}%)")


def _kill_orphaned_streamers(binary: str) -> None:
    """pg_basebackup streams WAL from a forked child. When pg_basebackup itself dies (kill -9), that child
    lives on, keeps the slot busy and keeps writing into the clone directory. It stays in our process
    group, so find it there (by executable) and end it before the partial copy is removed."""
    group = os.getpgid(0)
    binary = os.path.realpath(binary)
    for proc in psutil.process_iter(["exe", "name"]):
        with contextlib.suppress(psutil.Error, ProcessLookupError):
            if proc.info["name"] == "pg_basebackup" and os.path.realpath(proc.info["exe"] or "") == binary \
                    and os.getpgid(proc.pid) == group:
                proc.kill()
                proc.wait(timeout=10)


def _run_basebackup(argv: list[str], env: dict[str, str]) -> tuple[int, list[str]]:
    """Run pg_basebackup, turning its progress into log lines; stop reading when it exits (its WAL child
    may hold the pipe open after a crash)."""
    progress = _ProgressLog(time.monotonic)
    with subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE) as proc:
        fd = proc.stderr.fileno() if proc.stderr is not None else -1
        pending = b""
        try:
            while True:
                readable, _, _ = select.select([fd], [], [], 0.5)
                chunk = os.read(fd, 65536) if readable else b""
                if readable and not chunk:
                    break  # EOF: everyone holding the pipe is gone
                pending += chunk
                parts = re.split(rb"[\r\n]", pending)
                pending = parts.pop()
                for part in parts:
                    progress.feed(part.decode("utf-8", "replace"))
                if not chunk and proc.poll() is not None:
                    break
        except BaseException:  # stopped (SIGINT from `docker stop`): end the copy before the caller cleans up
            proc.kill()
            proc.wait()
            _kill_orphaned_streamers(argv[0])
            raise
        progress.feed(pending.decode("utf-8", "replace"))
        code = proc.wait()
    if code != 0:
        _kill_orphaned_streamers(argv[0])
    return code, progress.messages


def clone(s: ReplicaSettings, pgdata: Path, bindir: Path, *, create_slot: bool | None) -> None:
    """Clone the primary into ``pgdata`` (which holds nothing of value: see ``detect.standby``).

    ``create_slot``: True -> ``-C``; False -> reuse; None (unknown) -> try ``-C`` and reuse on "exists".
    """
    pgdata.mkdir(mode=0o700, parents=True, exist_ok=True)
    work = pgdata / standby.CLONE_DIR
    clone_pass = pgdata / standby.CLONE_PASSFILE
    write_passfile(clone_pass, s)
    try:
        create = create_slot is not False
        while True:
            _remove(work)
            argv = [
                str(bindir / "pg_basebackup"), "-D", str(work),
                "-h", s.primary_host, "-p", str(s.primary_port), "-U", s.user,
                "-w", "-X", "stream", "-c", "fast", "-S", s.slot_name, "-P",
                "--label", f"aza-pg clone for {s.application_name}",
            ]
            if create:
                argv.append("-C")
            if s.max_rate:
                argv += ["-r", s.max_rate]
            env = {"PATH": f"{bindir}:/usr/bin:/bin", "LC_ALL": "C", "LANG": "C",
                   "PGPASSFILE": str(clone_pass), "PGCONNECT_TIMEOUT": "10", "PGAPPNAME": "aza-pg-clone"}
            log.info(COMPONENT, TOPIC, f"cloning primary {s.primary_host}:{s.primary_port} with "
                     f"pg_basebackup (slot {s.slot_name}{', creating it' if create else ''}"
                     f"{', max rate ' + s.max_rate if s.max_rate else ''})")
            started = time.monotonic()
            try:
                code, messages = _run_basebackup(argv, env)
            except BaseException:
                log.warn(COMPONENT, TOPIC, "clone interrupted; removing the partial copy")
                _remove(work)
                raise
            text = "\n".join(messages)
            if code == 0:
                break
            if create and create_slot is None and re.search(r"already exists", text):
                log.info(COMPONENT, TOPIC, f"replication slot {s.slot_name} already exists; reusing it")
                create = False
                continue
            _remove(work)
            fs.fsync_dir(pgdata)
            how = f"killed by signal {-code}" if code < 0 else f"exit status {code}"
            raise RuntimeFailure(
                f"cloning from {s.primary_host}:{s.primary_port} failed ({how}): {describe_failure(text)}; "
                "the partial copy was removed and the next start clones again"
            )
        log.info(COMPONENT, TOPIC, f"clone finished in {time.monotonic() - started:.1f}s")
        # The primary's entrypoint directory (its generated config, saved state, key copies) describes the
        # primary, not this standby: the postgres flow regenerates it here on every start.
        _remove(work / standby.AZA_DIR)
        for stale in ("standby.signal", "recovery.signal"):
            _remove(work / stale)
        fs.write_atomic(work / "standby.signal", "", mode=0o600)
        _move_into_place(work, pgdata)
    finally:
        with contextlib.suppress(FileNotFoundError):
            clone_pass.unlink()


def _move_into_place(work: Path, pgdata: Path) -> None:
    names = sorted(p.name for p in work.iterdir())
    if "PG_VERSION" not in names:
        raise RuntimeFailure("pg_basebackup finished but the copy has no PG_VERSION; refusing to use it")
    clash = [n for n in names if (pgdata / n).exists()]
    if clash:
        raise RuntimeFailure(f"cannot move the clone into PGDATA: {', '.join(clash)} already there")
    order = [n for n in names if n != "PG_VERSION"] + ["PG_VERSION"]
    fs.write_atomic(pgdata / standby.MOVE_LIST, json.dumps(order), mode=0o600)
    for name in order:
        if name == "PG_VERSION":
            # Everything else is durably in place before the one name that makes this a cluster.
            fs.fsync_dir(pgdata)
            fs.fsync_dir(work)
        os.rename(work / name, pgdata / name)
    fs.fsync_dir(pgdata)
    (pgdata / standby.MOVE_LIST).unlink()
    work.rmdir()
    fs.fsync_dir(pgdata)
