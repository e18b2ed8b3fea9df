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


def _wait_for_line(path: Path, offset: int, began: float) -> float:
    deadline = began + TIMEOUT
    while time.monotonic() < deadline:
        with path.open("rb") as fh:
            fh.seek(offset)
            if READY in fh.read():
                return time.monotonic() - began
        time.sleep(0.002)
    raise RuntimeError(f"no ready line in {path} within {TIMEOUT}s")


def entrypoint_once(pg: Instance) -> float:
    offset = pg.mark()
    began = time.monotonic()
    pg.start(wait=False)
    took = _wait_for_line(pg.log_path, offset, began)
    pg.wait_ready(TIMEOUT)
    pg.stop(signal.SIGINT)
    return took


def pg_ctl_once(pg: Instance, log: Path) -> float:
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
    subprocess.run(
        [str(BINDIR / "pg_ctl"), "stop", "-s", "-m", "fast", "-w", "-D", str(pg.pgdata)],
        env=env,
        user=account.pw_uid,
        group=account.pw_gid,
        check=True,
        timeout=TIMEOUT,
    )
    return took


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
        ours: list[float] = []
        bare: list[float] = []
        entrypoint_once(pg)  # warm both paths once (page cache), not measured
        pg_ctl_once(pg, log)
        for _ in range(opts.runs):
            ours.append(entrypoint_once(pg))
            bare.append(pg_ctl_once(pg, log))
        m_ours, m_bare = statistics.median(ours), statistics.median(bare)
        print(
            f"entrypoint start -> ready: median {m_ours * 1000:.0f} ms  (runs: "
            f"{', '.join(f'{x * 1000:.0f}' for x in ours)})"
        )
        print(
            f"bare pg_ctl start -> ready: median {m_bare * 1000:.0f} ms  (runs: "
            f"{', '.join(f'{x * 1000:.0f}' for x in bare)})"
        )
        print(f"ratio {m_ours / m_bare:.2f} (target <= 1.10)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
