"""How fast the replica's first clone is, against copying the primary's data directory with tar.

    .venv/bin/python bench/bench_clone.py [--size-mb 1024] [--rounds 3] [--bindir /usr/lib/postgresql/15/bin]

Starts a throwaway primary on 127.0.0.1 (as the postgres user, in a temporary directory), fills it with
about ``--size-mb`` of table data, then alternates, ``--rounds`` times:

- ``tar``: ``tar -cf - -C $primary . | tar -xf - -C $dest`` followed by ``sync`` (the copy is durable, as
  the clone is: pg_basebackup fsyncs what it writes), on the same disk;
- ``clone``: the replica entrypoint's clone path (``entrypoint.flows.replica.prepare``: probe the primary,
  ``pg_basebackup -X stream -c fast`` with a slot into ``$PGDATA/.aza-pg-clone``, move into place, fsync).

Prints the median of each and the ratio clone / tar (target <= 1.3). Must run as root (it drops to postgres
for the server and the clone). Everything is removed at the end, also on failure.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pwd
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg
from psycopg import sql

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

PASSWORD = "bench:repl 'pw'"  # noqa: S105 - a throwaway server on loopback
SUPERUSER_PASSWORD = "bench"  # noqa: S105
RUNUSER = shutil.which("runuser") or "/usr/sbin/runuser"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def as_postgres(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([RUNUSER, "-u", "postgres", "--", *argv], check=True, text=True,
                          capture_output=True, timeout=1800)


def clone_once(bindir: Path, port: int, pgdata: Path) -> float:
    """Run the replica clone path as the postgres user in a child process; return its wall time."""
    code = f"""
import os, sys, time, json
from pathlib import Path
import psycopg, psycopg.sql  # imported before the privilege drop
from entrypoint.flows import replica
from entrypoint.apply import basebackup
os.setgid({pwd.getpwnam('postgres').pw_gid}); os.setuid({pwd.getpwnam('postgres').pw_uid})
env = {{"PRIMARY_HOST": "127.0.0.1", "PRIMARY_PORT": "{port}", "PG_REPLICATION_PASSWORD": sys.stdin.read(),
        "REPLICATION_SLOT_NAME": "bench_slot", "PRIMARY_WAIT_TIMEOUT": "10"}}
t0 = time.monotonic()
replica.prepare(env, Path({str(pgdata)!r}), Path({str(bindir)!r}))
print("ELAPSED", time.monotonic() - t0)
"""
    done = subprocess.run([sys.executable, "-c", code], input=PASSWORD, text=True, capture_output=True,
                          cwd=REPO, timeout=1800, check=False)
    if done.returncode != 0:
        raise SystemExit(f"clone failed:\n{done.stdout}\n{done.stderr}")
    return float(next(line for line in done.stdout.splitlines() if line.startswith("ELAPSED")).split()[1])


def tar_once(src: Path, dest: Path) -> tuple[float, float]:
    """Seconds for the tar copy, and for the copy plus ``sync`` (durable, like the clone)."""
    dest.mkdir(mode=0o700)
    t0 = time.monotonic()
    with subprocess.Popen(["tar", "-cf", "-", "-C", str(src), "."], stdout=subprocess.PIPE,
                          stderr=subprocess.DEVNULL) as pack:
        subprocess.run(["tar", "-xf", "-", "-C", str(dest)], stdin=pack.stdout, check=True, timeout=1800)
    copied = time.monotonic() - t0
    subprocess.run(["sync"], check=True, timeout=600)
    return copied, time.monotonic() - t0


def du_mb(path: Path) -> int:
    done = subprocess.run(["du", "-sm", str(path)], capture_output=True, text=True, check=True, timeout=300)
    return int(done.stdout.split()[0])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--bindir", type=Path, default=Path("/usr/lib/postgresql/15/bin"))
    parser.add_argument("--workdir", type=Path, default=Path("/var/tmp"),  # noqa: S108 - a fresh mkdtemp inside
                        help="where the data lives (one disk)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root (the server and the clone run as the postgres user)")
    pg = pwd.getpwnam("postgres")
    work = Path(tempfile.mkdtemp(prefix="aza-bench-clone-", dir=args.workdir))
    os.chmod(work, 0o755)  # noqa: S103 - the postgres user must reach its directories inside
    os.chown(work, pg.pw_uid, pg.pw_gid)
    primary = work / "primary"
    port = free_port()
    bindir: Path = args.bindir
    started = False
    try:
        pwfile = work / "pw"
        pwfile.write_text(SUPERUSER_PASSWORD)
        os.chown(pwfile, pg.pw_uid, pg.pw_gid)
        as_postgres([str(bindir / "initdb"), "-D", str(primary), "-U", "postgres", "-A", "scram-sha-256",
                     f"--pwfile={pwfile}"])
        with (primary / "pg_hba.conf").open("a") as hba:
            hba.write("host replication replicator 127.0.0.1/32 scram-sha-256\n")
        as_postgres([str(bindir / "pg_ctl"), "-D", str(primary), "-w", "-l", str(work / "primary.log"), "-o",
                     f"-p {port} -k {work} -c listen_addresses=127.0.0.1 -c shared_buffers=256MB", "start"])
        started = True
        fill_rows = args.size_mb * 1024 * 1024 // 600
        print(f"filling the primary with ~{args.size_mb} MB ...", flush=True)
        with psycopg.connect(host="127.0.0.1", port=port, user="postgres", password=SUPERUSER_PASSWORD,
                             autocommit=True) as conn:
            conn.execute("SET synchronous_commit = off")
            conn.execute(sql.SQL("CREATE ROLE replicator LOGIN REPLICATION PASSWORD {}").format(
                sql.Literal(PASSWORD)))
            conn.execute("CREATE TABLE filler AS SELECT g AS id, md5(g::text) || repeat('x', 500) AS pad "
                         "FROM generate_series(1, %s) g", (fill_rows,))
            conn.execute("VACUUM (FREEZE, ANALYZE) filler")  # no hint-bit writes while we copy
            conn.execute("CHECKPOINT")
        subprocess.run(["sync"], check=True, timeout=600)  # no dirty pages of the load left
        print(f"primary data directory: {du_mb(primary)} MB (base/: {du_mb(primary / 'base')} MB)",
              flush=True)
        tar_times: list[float] = []
        tar_sync_times: list[float] = []
        clone_times: list[float] = []
        for n in range(args.rounds):
            dest = work / f"tar{n}"
            copied, durable = tar_once(primary, dest)
            tar_times.append(copied)
            tar_sync_times.append(durable)
            shutil.rmtree(dest)
            subprocess.run(["sync"], check=True, timeout=600)
            replica = work / f"replica{n}"
            replica.mkdir(mode=0o700)
            os.chown(replica, pg.pw_uid, pg.pw_gid)
            clone_times.append(clone_once(bindir, port, replica))
            clone_mb = du_mb(replica)
            shutil.rmtree(replica)
            subprocess.run(["sync"], check=True, timeout=600)
            print(f"round {n + 1}: tar {tar_times[-1]:.2f}s (with sync {tar_sync_times[-1]:.2f}s), "
                  f"clone {clone_times[-1]:.2f}s ({clone_mb} MB)", flush=True)
        tar_m, sync_m, clone_m = (statistics.median(x) for x in (tar_times, tar_sync_times, clone_times))
        print(f"median of {args.rounds}: tar {tar_m:.2f}s, tar+sync {sync_m:.2f}s, clone {clone_m:.2f}s")
        for label, base in (("tar", tar_m), ("tar+sync", sync_m)):
            ratio = clone_m / base
            print(f"ratio clone/{label}: {ratio:.2f} (target <= 1.3: {'met' if ratio <= 1.3 else 'NOT met'})")
        return 0
    finally:
        if started:
            with contextlib.suppress(subprocess.SubprocessError):
                as_postgres([str(bindir / "pg_ctl"), "-D", str(primary), "-m", "immediate", "-w", "stop"])
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
