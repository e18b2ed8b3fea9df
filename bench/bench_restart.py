"""Restart-path cost of the entrypoint: `aza-pg postgres` start -> "ready to accept connections", against a
bare `pg_ctl start` of the same data directory (same configuration files, same port), median of N runs each,
alternating. Prints both medians and the ratio (target <= 1.10).

    .venv/bin/python bench/bench_restart.py [--runs 10]

Runs as root (the entrypoint drops to postgres; pg_ctl is started as postgres) on 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import os
import pwd
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.process.pgharness import BINDIR, Instance

READY = b"database system is ready to accept connections"
TIMEOUT = 60.0
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime + reaped children's, of one process (kept across exec): a load-independent cost."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(x) for x in fields[11:15]) / TICK


def _wait_for_line(path: Path, offset: int, began: float) -> float:
    deadline = began + TIMEOUT
    while time.monotonic() < deadline:
        with path.open("rb") as fh:
            fh.seek(offset)
            if READY in fh.read():
                return time.monotonic() - began
        time.sleep(0.002)
    raise RuntimeError(f"no ready line in {path} within {TIMEOUT}s")


def entrypoint_once(pg: Instance) -> tuple[float, float]:
    offset = pg.mark()
    began = time.monotonic()
    pg.start(wait=False)
    took = _wait_for_line(pg.log_path, offset, began)
    cpu = cpu_seconds(pg.pid)
    pg.wait_ready(TIMEOUT)
    pg.stop(signal.SIGINT)
    return took, cpu


def pg_ctl_once(pg: Instance, log: Path) -> tuple[float, float]:
    account = pwd.getpwnam("postgres")
    offset = log.stat().st_size if log.exists() else 0
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PGPORT": str(pg.port), "LANG": "C.UTF-8"}
    began = time.monotonic()
    subprocess.run(
        [str(BINDIR / "pg_ctl"), "start", "-s", "-D", str(pg.pgdata), "-l", str(log)],
        env=env,
        user=account.pw_uid,
        group=account.pw_gid,
        check=True,
        timeout=TIMEOUT,
    )
    took = _wait_for_line(log, offset, began)
    cpu = cpu_seconds(int((pg.pgdata / "postmaster.pid").read_text().split()[0]))
    subprocess.run(
        [str(BINDIR / "pg_ctl"), "stop", "-s", "-m", "fast", "-w", "-D", str(pg.pgdata)],
        env=env,
        user=account.pw_uid,
        group=account.pw_gid,
        check=True,
        timeout=TIMEOUT,
    )
    return took, cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    opts = parser.parse_args()
    with Instance.create() as pg:
        pg.start()  # first boot (not measured)
        pg.stop(signal.SIGINT)
        log = pg.base / "pg_ctl.log"
        log.touch()
        os.chown(log, pwd.getpwnam("postgres").pw_uid, -1)
        ours: list[tuple[float, float]] = []
        bare: list[tuple[float, float]] = []
        entrypoint_once(pg)  # warm both paths once (page cache), not measured
        pg_ctl_once(pg, log)
        for _ in range(opts.runs):
            ours.append(entrypoint_once(pg))
            bare.append(pg_ctl_once(pg, log))
        for label, runs in (("entrypoint start", ours), ("bare pg_ctl start", bare)):
            wall = statistics.median(r[0] for r in runs)
            cpu = statistics.median(r[1] for r in runs)
            print(
                f"{label} -> ready: median {wall * 1000:.0f} ms wall, {cpu * 1000:.0f} ms CPU  (wall runs: "
                f"{', '.join(f'{r[0] * 1000:.0f}' for r in runs)})"
            )
        ratio = statistics.median(r[0] for r in ours) / statistics.median(r[0] for r in bare)
        cpu_ratio = statistics.median(r[1] for r in ours) / max(statistics.median(r[1] for r in bare), 1e-9)
        print(
            f"ratio {ratio:.2f} wall, {cpu_ratio:.2f} CPU (target <= 1.10); "
            f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
