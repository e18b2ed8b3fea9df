"""Wall time of `aza-pg tune --format line`, the code every container start runs.

Runs the installed console script N times (default 10) with the current environment and prints every
run, the median and the max in milliseconds. The target is a median under 150 ms; this script reports
and exits 0 either way (timing depends on the machine's load, so no test asserts it). Pass --check to
exit 1 when the median is over the target.

    .venv/bin/python bench/bench_tune.py [--runs 10] [--check] [-- extra tune args]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

TARGET_MS = 150.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--check", action="store_true", help="exit 1 when the median is above the target")
    parser.add_argument("--exe", default=str(Path(sys.executable).with_name("aza-pg")))
    parser.add_argument("extra", nargs="*", help="more arguments for `aza-pg tune`")
    args = parser.parse_args()
    argv = [args.exe, "tune", "--format", "line", *args.extra]
    subprocess.run(argv, capture_output=True, check=True, timeout=60)  # warm the page cache
    times = []
    for _ in range(args.runs):
        start = time.perf_counter()
        subprocess.run(argv, capture_output=True, check=True, timeout=60)
        times.append((time.perf_counter() - start) * 1000)
    median = statistics.median(times)
    print("runs (ms):", " ".join(f"{t:.1f}" for t in times))
    print(
        f"median {median:.1f} ms, max {max(times):.1f} ms, target < {TARGET_MS:.0f} ms: "
        + ("ok" if median < TARGET_MS else "OVER")
    )
    try:
        load = Path("/proc/loadavg").read_text().split()[0]
        print(f"load average (1 min) during the run: {load}")
    except OSError:
        pass
    return 1 if args.check and median >= TARGET_MS else 0


if __name__ == "__main__":
    sys.exit(main())
