"""PgBouncer under 1,000 concurrent clients: transactions per second through PgBouncer and direct.

    .venv/bin/python bench/bench_pgbouncer.py [--clients 1000] [--pool-size 25] [--seconds 30] [--scale 10]

Starts PostgreSQL with the real ``aza-pg postgres`` entrypoint and PgBouncer with the real
``aza-pg pgbouncer`` entrypoint, both on 127.0.0.1 only (the process-test harnesses), then runs pgbench
(built-in ``simple-update``: BEGIN; UPDATE; SELECT; INSERT; END):

1. through PgBouncer: ``--clients`` connections held open for ``--seconds`` against a pool of
   ``--pool-size`` server connections (transaction pooling); mid-run, ``SHOW POOLS`` on the admin console
   records how many clients PgBouncer holds and how many server connections it uses;
2. direct: ``--pool-size`` connections straight to PostgreSQL for the same time (what the pool itself can do).

Fails (exit 1) unless every client connected and not one transaction failed. Must run as root (the
entrypoints drop to ``postgres``). Everything is removed at the end, also on failure. Bounded: pgbench
runs for ``--seconds`` and every subprocess has a timeout.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.process.bouncerharness import Bouncer, base_dir, postgres  # noqa: E402
from tests.process.pgharness import BINDIR  # noqa: E402

AUTH_PASS = "bench:auth 'pw'"  # noqa: S105 - throwaway servers on loopback
STATS_PASS = "bench-stats"  # noqa: S105
PGBENCH = str(BINDIR / "pgbench")


def pgbench(port: int, password: str, args: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PGPASSWORD": password, "PGCONNECT_TIMEOUT": "30"}
    argv = [PGBENCH, "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", *args, "postgres"]
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout, check=False)


def load(
    port: int, password: str, clients: int, seconds: int, threads: str
) -> subprocess.CompletedProcess[str]:
    """``clients`` connections running simple-update transactions for ``seconds`` (no vacuum first)."""
    args = ["-b", "simple-update", "-c", str(clients), "-j", threads, "-T", str(seconds), "-n"]
    return pgbench(port, password, args, timeout=seconds + 600)


def parse_pgbench(out: str) -> dict[str, float]:
    def grab(pattern: str) -> float:
        match = re.search(pattern, out)
        if not match:
            raise SystemExit(f"pgbench output lacks {pattern!r}:\n{out}")
        return float(match[1])

    return {
        "tps": grab(r"tps = ([\d.]+) \(without initial connection time\)"),
        "transactions": grab(r"number of transactions actually processed: (\d+)"),
        "failed": grab(r"number of failed transactions: (\d+)"),
        "latency_ms": grab(r"latency average = ([\d.]+) ms"),
        "clients": grab(r"number of clients: (\d+)"),
    }


def sample_pools(port: int, seconds: float, result: dict[str, int]) -> None:
    """Poll SHOW POOLS on the admin console and keep the busiest sample (bounded by ``seconds``)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with psycopg.connect(
                host="127.0.0.1", port=port, user="pgbouncer_stats", password=STATS_PASS, dbname="pgbouncer",
                autocommit=True, connect_timeout=5,
            ) as conn:
                cur = conn.execute("SHOW POOLS")
                names = [col.name for col in cur.description or []]
                for row in cur.fetchall():
                    rec = dict(zip(names, row, strict=True))
                    if rec["database"] != "postgres":
                        continue
                    clients = int(rec["cl_active"]) + int(rec["cl_waiting"])
                    if clients >= result.get("clients_held", 0):
                        result["clients_held"] = clients
                        result["cl_waiting"] = int(rec["cl_waiting"])
                        servers = (int(rec[key]) for key in ("sv_active", "sv_idle", "sv_used"))
                        result["server_conns"] = sum(servers)
        except psycopg.Error:
            pass
        time.sleep(1)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--pool-size", type=int, default=25)
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--scale", type=int, default=10)
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    opts = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root: the entrypoints drop to the postgres user")

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = opts.clients * 2 + 512
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(need, hard), hard))
    threads = str(min(os.cpu_count() or 2, 4))

    with postgres(AUTH_PASS) as server, base_dir("aza-pgb-bench-") as base:
        init = pgbench(server.port, server.password, ["-i", "-q", "-s", str(opts.scale)], timeout=600)
        if init.returncode != 0:
            raise SystemExit(f"pgbench -i failed:\n{init.stderr}")
        bouncer = Bouncer(base, server.port, AUTH_PASS, {
            "PGBOUNCER_MAX_CLIENT_CONN": str(opts.clients + 50),
            "PGBOUNCER_DEFAULT_POOL_SIZE": str(opts.pool_size),
            "PGBOUNCER_RESERVE_POOL_SIZE": "0",
            "PGBOUNCER_STATS_PASSWORD": STATS_PASS,
        })
        try:
            bouncer.start()
            pools: dict[str, int] = {}
            sampler = threading.Thread(
                target=sample_pools, args=(bouncer.port, opts.seconds + 60, pools), daemon=True
            )
            sampler.start()
            started = time.monotonic()
            run = load(bouncer.port, server.password, opts.clients, opts.seconds, threads)
            wall = time.monotonic() - started
            log = bouncer.log()
        finally:
            bouncer.stop()
        sampler.join(timeout=0)
        if run.returncode != 0:
            raise SystemExit(f"pgbench via PgBouncer failed ({run.returncode}):\n{run.stdout}\n{run.stderr}")
        via = parse_pgbench(run.stdout)
        direct_run = load(server.port, server.password, opts.pool_size, opts.seconds, threads)
        if direct_run.returncode != 0:
            raise SystemExit(f"direct pgbench failed:\n{direct_run.stdout}\n{direct_run.stderr}")
        direct = parse_pgbench(direct_run.stdout)

    pooler_errors = len(re.findall(r"pooler error|ERROR", log))
    report = {
        "clients_through_pgbouncer": int(via["clients"]),
        "default_pool_size": opts.pool_size,
        "seconds": opts.seconds,
        "tps_pgbouncer": via["tps"],
        "latency_ms_pgbouncer": via["latency_ms"],
        "transactions_pgbouncer": int(via["transactions"]),
        "failed_pgbouncer": int(via["failed"]),
        "pgbouncer_log_errors": pooler_errors,
        "max_clients_held_sample": pools.get("clients_held", 0),
        "server_conns_at_that_sample": pools.get("server_conns", 0),
        "clients_direct": int(direct["clients"]),
        "tps_direct": direct["tps"],
        "latency_ms_direct": direct["latency_ms"],
        "failed_direct": int(direct["failed"]),
        "wall_seconds_pgbouncer_run": round(wall, 1),
    }
    ok = (
        report["failed_pgbouncer"] == 0 and report["failed_direct"] == 0 and pooler_errors == 0
        and report["clients_through_pgbouncer"] == opts.clients
        and report["max_clients_held_sample"] >= opts.clients
        and report["server_conns_at_that_sample"] <= opts.pool_size
    )
    if opts.json:
        print(json.dumps({**report, "ok": ok}))
    else:
        clients = report["clients_through_pgbouncer"]
        print(f"PgBouncer: {clients} clients, pool {opts.pool_size}, {opts.seconds}s: "
              f"{via['tps']:.0f} tps, {via['latency_ms']:.1f} ms avg latency, "
              f"{report['transactions_pgbouncer']} transactions, {report['failed_pgbouncer']} failed, "
              f"{pooler_errors} errors in PgBouncer's log")
        print(f"  busiest SHOW POOLS sample: {report['max_clients_held_sample']} clients held on "
              f"{report['server_conns_at_that_sample']} server connections")
        print(f"Direct:    {report['clients_direct']} clients, {opts.seconds}s: {direct['tps']:.0f} tps, "
              f"{direct['latency_ms']:.1f} ms avg latency, {report['failed_direct']} failed")
        print("OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
