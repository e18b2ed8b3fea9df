"""PgBouncer under 1,000 concurrent clients: transactions per second through PgBouncer and direct.

    .venv/bin/python bench/bench_pgbouncer.py [--clients 1000] [--pool-size 25] [--seconds 30] [--scale 10]

Starts PostgreSQL with the real ``aza-pg postgres`` entrypoint and PgBouncer with the real
``aza-pg pgbouncer`` entrypoint, both on 127.0.0.1 only (the process-test harnesses), fills pgbench's
tables (``pgbench -i``), then drives short transactions from one asyncio process (psycopg), each sent
as one simple-query message (one round trip, as an application's short transaction would be):

    BEGIN; UPDATE pgbench_accounts SET abalance = abalance + :delta WHERE aid = :aid;
           SELECT abalance FROM pgbench_accounts WHERE aid = :aid; COMMIT

1. through PgBouncer: ``--clients`` connections are opened first (every one must succeed) and held; then
   all of them run transactions for exactly ``--seconds`` against a pool of ``--pool-size`` server
   connections (transaction pooling). Meanwhile ``SHOW POOLS`` on the admin console records how many
   clients PgBouncer holds and how many server connections it uses.
2. direct: ``--pool-size`` connections straight to PostgreSQL, same transactions, same time.

pgbench's own ``-T`` clock includes the time to open the connections, which with 1,000 SCRAM logins
(each one an auth_query lookup) is most of 30 s on a small machine, so it cannot show 30 s of load with
every client connected; hence this driver. Server-side prepared statements are off
(``prepare_threshold=None``): PgBouncer before 1.21 cannot route them in transaction mode.

Exit 1 unless every client connected, no transaction failed and PgBouncer logged no error. Must run as
root (the entrypoints drop to ``postgres``). Everything is removed at the end, also on failure. Bounded:
connecting has a deadline, the load runs ``--seconds``, every subprocess has a timeout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import resource
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.process.bouncerharness import Bouncer, base_dir, postgres  # noqa: E402
from tests.process.pgharness import BINDIR  # noqa: E402

AUTH_PASS = "bench:auth 'pw'"  # noqa: S105 - throwaway servers on loopback
STATS_PASS = "bench-stats"  # noqa: S105
CONNECT_DEADLINE = 300.0
SERVER_STATES = ("sv_active", "sv_idle", "sv_used", "sv_tested", "sv_login")
# One round trip per transaction (simple query protocol, parameters bound client-side), like a real
# application's short transaction: the pooled server connection is busy only while the server works.
TRANSACTION = (
    "BEGIN; UPDATE pgbench_accounts SET abalance = abalance + %(delta)s WHERE aid = %(aid)s; "
    "SELECT abalance FROM pgbench_accounts WHERE aid = %(aid)s; COMMIT"
)


def pgbench_init(port: int, password: str, scale: int) -> None:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PGPASSWORD": password}
    argv = [str(BINDIR / "pgbench"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-i", "-q",
            "-s", str(scale), "postgres"]
    result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600, check=False)
    if result.returncode != 0:
        raise SystemExit(f"pgbench -i failed:\n{result.stderr}")


@dataclass
class Tally:
    connected: int = 0
    transactions: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass
class Run:
    port: int
    password: str
    scale: int
    go: asyncio.Event = field(default_factory=asyncio.Event)
    stop_at: float = float("inf")
    tally: Tally = field(default_factory=Tally)


async def _client(run: Run, seed: int) -> None:
    rng = random.Random(seed)
    try:
        conn = await psycopg.AsyncConnection.connect(
            host="127.0.0.1", port=run.port, user="postgres", password=run.password, dbname="postgres",
            connect_timeout=120, prepare_threshold=None, autocommit=True,
            cursor_factory=psycopg.AsyncClientCursor,
        )
    except psycopg.Error as exc:
        run.tally.errors.append(f"connect: {exc}")
        return
    run.tally.connected += 1
    try:
        await run.go.wait()
        while time.monotonic() < run.stop_at:
            aid = rng.randint(1, 100_000 * run.scale)
            try:
                await conn.execute(TRANSACTION, {"delta": rng.randint(-5000, 5000), "aid": aid})
                if time.monotonic() <= run.stop_at:
                    run.tally.transactions += 1
            except psycopg.Error as exc:
                run.tally.errors.append(str(exc))
    finally:
        await conn.close()


async def _drive(
    port: int, password: str, clients: int, seconds: int, scale: int
) -> tuple[Tally, float, float]:
    run = Run(port, password, scale)
    connecting = time.monotonic()
    tasks = [asyncio.create_task(_client(run, seed)) for seed in range(clients)]
    deadline = time.monotonic() + CONNECT_DEADLINE
    while run.tally.connected + len(run.tally.errors) < clients and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    if run.tally.connected < clients:
        run.stop_at = 0
        run.go.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise SystemExit(f"only {run.tally.connected} of {clients} clients connected: {run.tally.errors[:3]}")
    started = time.monotonic()
    run.stop_at = started + seconds
    run.go.set()
    await asyncio.wait_for(asyncio.gather(*tasks), timeout=seconds + 120)
    return run.tally, float(seconds), started - connecting


def load(port: int, password: str, clients: int, seconds: int, scale: int) -> dict[str, float | str]:
    """``clients`` connections, all connected first, then short transactions for ``seconds``.

    Only transactions completed within the window count.
    """
    tally, elapsed, connect_seconds = asyncio.run(_drive(port, password, clients, seconds, scale))
    return {
        "clients": tally.connected,
        "connect_seconds": round(connect_seconds, 1),
        "transactions": tally.transactions,
        "tps": round(tally.transactions / elapsed, 1),
        "failed": len(tally.errors),
        "first_error": tally.errors[0] if tally.errors else "",
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
                    if rec["database"] != "postgres" or rec["user"] != "postgres":
                        continue
                    clients = int(rec["cl_active"]) + int(rec["cl_waiting"])
                    servers = sum(int(rec[key]) for key in SERVER_STATES)
                    result["server_conns_max"] = max(result.get("server_conns_max", 0), servers)
                    if clients >= result.get("clients_held", 0):
                        result["clients_held"] = clients
                        result["cl_waiting"] = int(rec["cl_waiting"])
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

    with postgres(AUTH_PASS) as server, base_dir("aza-pgb-bench-") as base:
        pgbench_init(server.port, server.password, opts.scale)
        bouncer = Bouncer(base, server.port, AUTH_PASS, {
            "PGBOUNCER_MAX_CLIENT_CONN": str(opts.clients + 50),
            "PGBOUNCER_DEFAULT_POOL_SIZE": str(opts.pool_size),
            "PGBOUNCER_RESERVE_POOL_SIZE": "0",
            "PGBOUNCER_STATS_PASSWORD": STATS_PASS,
        })
        pools: dict[str, int] = {}
        try:
            bouncer.start()
            sampler = threading.Thread(
                target=sample_pools, args=(bouncer.port, CONNECT_DEADLINE + opts.seconds, pools), daemon=True
            )
            sampler.start()
            via = load(bouncer.port, server.password, opts.clients, opts.seconds, opts.scale)
            log = bouncer.log()
        finally:
            bouncer.stop()
        direct = load(server.port, server.password, opts.pool_size, opts.seconds, opts.scale)

    log_errors = [line for line in log.splitlines() if re.search(r"\b(ERROR|FATAL)\b|pooler error", line)]
    report = {
        "pgbouncer": {**via, "pool_size": opts.pool_size, "log_errors": len(log_errors),
                      "max_clients_held": pools.get("clients_held", 0),
                      "max_server_connections": pools.get("server_conns_max", 0)},
        "direct": direct,
        "seconds": opts.seconds,
    }
    ok = (
        via["clients"] == opts.clients and via["failed"] == 0 and direct["failed"] == 0 and not log_errors
        and pools.get("clients_held", 0) >= opts.clients
        and pools.get("server_conns_max", opts.pool_size + 1) <= opts.pool_size
    )
    if opts.json:
        print(json.dumps({**report, "ok": ok}))
    else:
        print(f"through PgBouncer: {via['clients']} clients on a pool of {opts.pool_size}, {opts.seconds} s: "
              f"{via['tps']} tps ({via['transactions']} transactions), {via['failed']} failed, "
              f"{len(log_errors)} errors in PgBouncer's log")
        print(f"  connecting all {via['clients']} clients took {via['connect_seconds']} s")
        print(f"  SHOW POOLS: up to {pools.get('clients_held', 0)} clients held, at most "
              f"{pools.get('server_conns_max', 0)} server connections")
        print(f"direct:            {direct['clients']} clients, {opts.seconds} s: {direct['tps']} tps "
              f"({direct['transactions']} transactions), {direct['failed']} failed")
        for line in log_errors[:5]:
            print(f"  PgBouncer: {line}")
        if via["first_error"] or direct["first_error"]:
            print(f"  first error: {via['first_error'] or direct['first_error']}")
        print("OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
