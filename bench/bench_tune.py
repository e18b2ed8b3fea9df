"""Wall time of `aza-pg tune --format line`, the code every container start runs.

Runs the installed console script N times (default 10) and prints every run, the median and max wall
time in milliseconds, the median CPU time (user + sys of the child, which load on a shared machine
disturbs less than wall time), and the same for the bare interpreter (`python -c pass`) as a baseline.
The target is a median wall time under 150 ms. The script reports and exits 0 either way (timing depends
on the machine's load, so no test asserts it); --check makes it exit 1 when the median is over.

    .venv/bin/python bench/bench_tune.py [--runs 10] [--check] [-- extra tune args]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

TARGET_MS = 150.0


def measure(argv: list[str], runs: int) -> tuple[list[float], list[float]]:
    """Wall and CPU milliseconds of ``runs`` runs of ``argv`` (after one warm-up run)."""
    subprocess.run(argv, capture_output=True, check=True, timeout=60)
    walls, cpus = [], []
    for _ in range(runs):
        start = time.perf_counter()
        child = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(child.pid, 0)
        walls.append((time.perf_counter() - start) * 1000)
        child.returncode = os.waitstatus_to_exitcode(status)
        if child.returncode != 0:
            raise SystemExit(f"{argv} failed with status {child.returncode}")
        cpus.append((usage.ru_utime + usage.ru_stime) * 1000)
    return walls, cpus


def main() -> int:
    parser = argparse.ArgumentParser(description="Time `aza-pg tune --format line`.")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--check", action="store_true", help="exit 1 when the median is above the target")
    parser.add_argument("--exe", default=str(Path(sys.executable).with_name("aza-pg")))
    parser.add_argument("extra", nargs="*", help="more arguments for `aza-pg tune`")
    args = parser.parse_args()

    walls, cpus = measure([args.exe, "tune", "--format", "line", *args.extra], args.runs)
    base_walls, base_cpus = measure([sys.executable, "-c", "pass"], args.runs)
    median = statistics.median(walls)
    print("aza-pg tune --format line, wall ms:", " ".join(f"{t:.1f}" for t in walls))
    print(
        f"  median {median:.1f} ms (max {max(walls):.1f}), CPU median {statistics.median(cpus):.1f} ms; "
        f"target < {TARGET_MS:.0f} ms: " + ("ok" if median < TARGET_MS else "OVER")
    )
    print(
        f"baseline `python -c pass`: wall median {statistics.median(base_walls):.1f} ms, "
        f"CPU median {statistics.median(base_cpus):.1f} ms"
    )
    print(f"load average (1 min): {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    return 1 if args.check and median >= TARGET_MS else 0


if __name__ == "__main__":
    sys.exit(main())
