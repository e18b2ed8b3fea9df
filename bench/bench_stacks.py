"""How long the shipped stacks take: image builds, first boot to healthy, restart to healthy.

    .venv/bin/python bench/bench_stacks.py [--stack single|primary] [--rounds 3] [--build cached|scratch|skip]

- build: ``scripts/docker/build-images.sh`` for the stack's images. ``cached`` forces a build on top of
  Docker's layer cache (what a code change costs); ``scratch`` builds each target with ``--no-cache``
  (what a fresh machine costs; several minutes: every Debian package is downloaded and installed again);
  ``skip`` only makes sure the images exist.
- first boot: a copy of stacks/<stack> with generated passwords, free 127.0.0.1 ports and a throwaway
  monitoring network; ``docker compose up -d --wait`` timed from the command to every service healthy
  (initdb and first-boot SQL included). Torn down with ``down -v`` after each round.
- restart: ``docker compose restart postgres`` on that stack, timed until the container is healthy again.

Prints one JSON object with the medians and every sample (seconds). Cleans up, also on failure.
"""

from __future__ import annotations

import argparse
import json
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.compose import dockerlib  # noqa: E402

TARGETS = {
    "single": ["postgres", "postgres-exporter"],
    "primary": ["postgres", "pgbouncer", "postgres-exporter", "pgbouncer-exporter"],
}
PASSWORDS = {
    "single": ("POSTGRES_PASSWORD", "POSTGRES_EXPORTER_PASSWORD"),
    "primary": (
        "POSTGRES_PASSWORD",
        "PG_REPLICATION_PASSWORD",
        "PGBOUNCER_AUTH_PASS",
        "POSTGRES_EXPORTER_PASSWORD",
        "PGBOUNCER_STATS_PASSWORD",
    ),
}


def build(kind: str, mode: str) -> dict[str, float]:
    times: dict[str, float] = {}
    if mode == "skip":
        dockerlib.ensure_images(TARGETS[kind])
        return times
    if mode == "cached":
        start = time.monotonic()
        dockerlib.run(
            ["bash", str(REPO / "scripts/docker/build-images.sh"), *TARGETS[kind]],
            env={"AZA_PG_FORCE_BUILD": "1"},
            timeout=3600,
        )
        times["all_cached"] = time.monotonic() - start
        return times
    dockerlib.run(["bash", str(REPO / "scripts/docker/base-image.sh")], timeout=600)
    for target in TARGETS[kind]:
        start = time.monotonic()
        dockerlib.run(
            [
                "docker",
                "build",
                "--no-cache",
                "--target",
                target,
                "-t",
                f"aza-pg/bench-{target}:scratch",
                str(REPO),
            ],
            timeout=3600,
        )
        times[target] = time.monotonic() - start
        dockerlib.run(["docker", "image", "rm", f"aza-pg/bench-{target}:scratch"], check=False)
    return times


def one_round(kind: str, workdir: Path) -> tuple[float, float]:
    network = dockerlib.unique("azabench-monitoring-")
    dockerlib.docker("network", "create", network)
    stack = dockerlib.Stack.create(kind, workdir, network)
    try:
        stack.write_env({name: secrets.token_urlsafe(24) for name in PASSWORDS[kind]})
        start = time.monotonic()
        stack.up(timeout=600)
        first_boot = time.monotonic() - start
        start = time.monotonic()
        stack.compose("restart", "postgres", timeout=300)
        dockerlib.wait_until(
            "postgres healthy after restart", lambda: stack.health() == "healthy", timeout=300, interval=0.2
        )
        restart = time.monotonic() - start
        return first_boot, restart
    finally:
        stack.down()
        dockerlib.docker("network", "rm", network, check=False)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--stack", choices=sorted(TARGETS), default="single")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--build", choices=("cached", "scratch", "skip"), default="skip")
    args = parser.parse_args()
    reason = dockerlib.docker_available()
    if reason:
        print(f"bench_stacks: {reason}", file=sys.stderr)
        return 1
    build_times = build(args.stack, args.build)
    dockerlib.ensure_images(TARGETS[args.stack])
    boots, restarts = [], []
    for index in range(args.rounds):
        with tempfile.TemporaryDirectory(prefix="aza-bench-") as tmp:
            boot, restart = one_round(args.stack, Path(tmp) / str(index))
        boots.append(round(boot, 2))
        restarts.append(round(restart, 2))
    result = {
        "stack": args.stack,
        "build_mode": args.build,
        "build_seconds": {k: round(v, 1) for k, v in build_times.items()},
        "first_boot_to_healthy_median": round(statistics.median(boots), 2),
        "restart_to_healthy_median": round(statistics.median(restarts), 2),
        "first_boot_to_healthy": boots,
        "restart_to_healthy": restarts,
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except subprocess.TimeoutExpired as exc:
        print(f"bench_stacks: timed out: {exc}", file=sys.stderr)
        sys.exit(1)
