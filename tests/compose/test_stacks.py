"""The shipped stacks, driven the way docs/DEPLOYMENT.md tells a user to drive them.

Each test copies a stack directory, writes its .env from .env.example (passwords full of characters
that need quoting), runs `docker compose` under its own project name, free 127.0.0.1 ports, a
test-owned monitoring network and a container-name prefix, and tears everything down afterwards.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from tests.compose import dockerlib
from tests.compose.dockerlib import HARD_PASSWORD, Stack, docker, run, wait_until

pytestmark = pytest.mark.compose

MakeStack = Callable[..., Stack]


def _passwords(tag: str) -> dict[str, str]:
    """Distinct passwords, each containing : \\ ' " $ # @ & and spaces."""
    return {
        "POSTGRES_PASSWORD": f"{HARD_PASSWORD} su-{tag}",
        "PG_REPLICATION_PASSWORD": f"{HARD_PASSWORD} repl-{tag}",
        "PGBOUNCER_AUTH_PASS": f"{HARD_PASSWORD} auth-{tag}",
        "POSTGRES_EXPORTER_PASSWORD": f"{HARD_PASSWORD} exp-{tag}",
        "PGBOUNCER_STATS_PASSWORD": f"{HARD_PASSWORD} stats-{tag}",
    }


def _single_env(passwords: dict[str, str]) -> dict[str, str]:
    return {k: passwords[k] for k in ("POSTGRES_PASSWORD", "POSTGRES_EXPORTER_PASSWORD")}


def _cgroup_label() -> str:
    version = docker("info", "-f", "{{.CgroupVersion}}", timeout=30).stdout.strip()
    return "cgroup-v2" if version == "2" else "cgroup-v1"


def _metrics(port: int) -> list[str]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        body: bytes = resp.read()
    return body.decode().splitlines()


def _one(conn: psycopg.Connection[tuple[object, ...]], query: str) -> str:
    row = conn.execute(query).fetchone()
    assert row is not None
    return str(row[0])


def _connect(stack: Stack, password: str, *, port_var: str = "POSTGRES_HOST_PORT") -> psycopg.Connection:
    return psycopg.connect(
        host="127.0.0.1",
        port=stack.ports[port_var],
        user="postgres",
        dbname="postgres",
        password=password,
        connect_timeout=10,
        autocommit=True,
    )


@pytest.fixture(scope="module")
def stack_images(images: Callable[..., None]) -> None:
    images(["postgres", "pgbouncer", "postgres-exporter", "pgbouncer-exporter"])


# --- the deployment guide, step by step -----------------------------------------------------------------


def test_guide_primary_replica_single(stack_images: None, stacks: MakeStack) -> None:
    pw = _passwords("guide")
    # The guide's container names when they are free on this engine; prefixed otherwise.
    free = not any(
        dockerlib.name_in_use(n) for names in dockerlib.CONTAINERS.values() for n in names.values()
    )
    prefix = "" if free else None
    primary = stacks("primary", prefix=prefix)
    primary.write_env(pw)
    env_text = (primary.dir / ".env").read_text(encoding="utf-8")
    assert oct((primary.dir / ".env").stat().st_mode & 0o777) == "0o600"
    assert 'POSTGRES_PASSWORD="p:a\\\\ss w\'o\\"rd\\$x#y@z&1 end su-guide"' in env_text

    primary.up()
    for service in dockerlib.CONTAINERS["primary"]:
        assert primary.health(service) == "healthy", service

    # docker logs postgres-primary | grep "database system is ready"
    assert "database system is ready" in primary.logs("postgres")
    # docker logs pgbouncer-primary | grep "process up"
    assert "process up" in primary.logs("pgbouncer")
    # docker logs postgres-primary | grep "\[POSTGRES\] \[AUTO-CONFIG\]"
    auto = [line for line in primary.logs("postgres").splitlines() if "[POSTGRES] [AUTO-CONFIG]" in line]
    assert any(re.search(r"RAM: 2048MB \(cgroup-v[12]\), CPU: 2 cores", line) for line in auto), auto
    # docker exec pgbouncer-primary ls -l /tmp/.pgpass
    listing = primary.exec("pgbouncer", "ls", "-l", "/tmp/.pgpass").stdout
    assert listing.startswith("-rw-------"), listing
    assert " postgres postgres " in listing, listing
    # Health check through PgBouncer, as the guide writes it (host psql, password from .env):
    # PGPASSWORD=$POSTGRES_PASSWORD psql -h localhost -p 6432 -U postgres -d postgres -c "SELECT 1;"
    proc = run(
        [
            "psql",
            "-h",
            "127.0.0.1",
            "-p",
            str(primary.ports["PGBOUNCER_HOST_PORT"]),
            "-U",
            "postgres",
            "-d",
            "postgres",
            "-c",
            "SELECT 1;",
        ],
        env={"PGPASSWORD": pw["POSTGRES_PASSWORD"]},
        timeout=60,
    )
    assert "(1 row)" in proc.stdout
    # pg_isready -h localhost -p 5432 -U postgres
    run(["pg_isready", "-h", "127.0.0.1", "-p", str(primary.ports["POSTGRES_HOST_PORT"]), "-U", "postgres"])
    # The exporters log in with their own roles and report the servers up.
    assert "pg_up 1" in _metrics(primary.ports["POSTGRES_EXPORTER_HOST_PORT"])
    assert "pgbouncer_up 1" in _metrics(primary.ports["PGBOUNCER_EXPORTER_HOST_PORT"])
    # Published ports are bound to loopback only by default.
    bindings = primary.inspect("postgres")["HostConfig"]["PortBindings"]  # type: ignore[index]
    assert bindings["5432/tcp"][0]["HostIp"] == "127.0.0.1"

    # Replica on the same host (the .env.example default joins the primary's network).
    replica = stacks("replica", prefix=primary.prefix)
    replica.write_env(
        {k: pw[k] for k in ("PG_REPLICATION_PASSWORD", "POSTGRES_EXPORTER_PASSWORD")},
        raw={"PRIMARY_HOST": primary.container("postgres")},
    )
    replica.up()
    # docker exec postgres-replica psql -U postgres -c "SELECT * FROM pg_stat_wal_receiver;"
    out = replica.exec(
        "postgres", "psql", "-U", "postgres", "-c", "SELECT * FROM pg_stat_wal_receiver;"
    ).stdout
    assert "streaming" in out, out
    # docker exec postgres-primary psql -U postgres -c
    #   "SELECT client_addr, state, sync_state FROM pg_stat_replication;"
    out = primary.exec(
        "postgres",
        "psql",
        "-U",
        "postgres",
        "-c",
        "SELECT client_addr, state, sync_state FROM pg_stat_replication;",
    ).stdout
    assert re.search(r"\|\s*streaming\s*\|\s*async", out), out
    primary.psql("CREATE TABLE guide_check (v text); INSERT INTO guide_check VALUES ('from-primary')")
    wait_until(
        "the row to reach the replica",
        lambda: (
            replica.psql("SELECT v FROM guide_check", timeout=30) == "from-primary"
            if "guide_check" in replica.psql("SELECT string_agg(relname, ',') FROM pg_class")
            else False
        ),
        timeout=60,
    )
    assert "pg_up 1" in _metrics(replica.ports["POSTGRES_EXPORTER_HOST_PORT"])

    # Single stack beside them (its own ports).
    single = stacks("single", prefix=primary.prefix)
    single.write_env(_single_env(pw))
    single.up()
    assert "database system is ready" in single.logs("postgres")
    assert "pg_up 1" in _metrics(single.ports["POSTGRES_EXPORTER_HOST_PORT"])


# --- limits and auto-config -------------------------------------------------------------------------------


LIMITS = {"POSTGRES_MEMORY_LIMIT": "1g", "POSTGRES_MEMORY_RESERVATION": "512m", "POSTGRES_CPU_LIMIT": "1.5"}


def _tune(stack: Stack, memory_mb: int, cpus: int) -> dict[str, str]:
    """What `aza-pg tune` (inside the image) computes for these inputs."""
    out = stack.exec(
        "postgres", "aza-pg", "tune", "--memory", str(memory_mb), "--cpus", str(cpus), "--format", "json"
    ).stdout
    settings: dict[str, str] = json.loads(out)["settings"]
    return settings


def test_memory_and_cpu_limits_drive_the_tuning(stack_images: None, stacks: MakeStack) -> None:
    pw = _passwords("limits")
    single = stacks("single")
    single.write_env(_single_env(pw), raw=LIMITS)
    single.up("postgres")
    label = _cgroup_label()
    log = single.logs()
    assert re.search(
        rf"\[POSTGRES\] \[AUTO-CONFIG\] RAM: 1024MB \({label}\), CPU: 2 cores \({label}\)", log
    ), log
    expected = _tune(single, 1024, 2)
    for name in ("shared_buffers", "work_mem", "max_connections", "effective_cache_size"):
        assert single.psql(f"SHOW {name}") == expected[name], name

    # POSTGRES_MEMORY pins the value: the source becomes "manual".
    single.write_env(_single_env(pw), raw={**LIMITS, "POSTGRES_MEMORY": "768"})
    single.up("postgres")
    log = single.logs()
    assert re.search(r"\[POSTGRES\] \[AUTO-CONFIG\] RAM: 768MB \(manual\)", log), log
    assert single.psql("SHOW shared_buffers") == _tune(single, 768, 2)["shared_buffers"]


# --- refusals ---------------------------------------------------------------------------------------------


def test_missing_monitoring_network_gives_the_guides_error(stack_images: None, stacks: MakeStack) -> None:
    single = stacks("single")
    missing = dockerlib.unique("azatest-absent-")
    single.monitoring_network = missing
    single.write_env(_single_env(_passwords("net")))
    proc = single.up(wait=False)
    assert proc.returncode != 0
    # The guide's wording, or the daemon's answer that Compose 2.2x passes through (docs/DEPLOYMENT.md
    # quotes both).
    assert (
        f"network {missing} declared as external, but could not be found" in proc.stderr
        or f"Error response from daemon: network {missing} not found" in proc.stderr
    ), proc.stderr
    assert not dockerlib.name_in_use(single.container("postgres"))


def test_missing_password_is_refused_with_one_line(stack_images: None, stacks: MakeStack) -> None:
    single = stacks("single")
    single.write_env({"POSTGRES_EXPORTER_PASSWORD": "x"}, raw={"POSTGRES_PASSWORD": ""})
    proc = single.up(wait=False)
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert "POSTGRES_PASSWORD" in lines[0]
    assert "set POSTGRES_PASSWORD in .env" in lines[0]


# --- durability -------------------------------------------------------------------------------------------


def test_data_survives_restart_down_up_and_kill(stack_images: None, stacks: MakeStack) -> None:
    pw = _passwords("durable")
    single = stacks("single")
    single.write_env(_single_env(pw))
    single.up("postgres")
    with _connect(single, pw["POSTGRES_PASSWORD"]) as conn:
        conn.execute("CREATE TABLE durable (id int PRIMARY KEY)")
        conn.execute("INSERT INTO durable SELECT generate_series(1, 100)")

    single.compose("restart", "postgres", timeout=180)
    single.wait_healthy(timeout=180)
    assert single.psql("SELECT count(*) FROM durable") == "100"

    single.down(volumes=False)
    single.up("postgres")
    assert single.psql("SELECT count(*) FROM durable") == "100"

    # Commit rows one by one from the host, SIGKILL the server in the middle, and check every
    # acknowledged commit is there after the restart.
    acked: list[int] = []
    stop = threading.Event()

    def writer() -> None:
        try:
            with _connect(single, pw["POSTGRES_PASSWORD"]) as conn:
                for i in range(1000, 1_000_000):
                    if stop.is_set():
                        return
                    conn.execute("INSERT INTO durable VALUES (%s)", (i,))
                    acked.append(i)
        except psycopg.Error:
            return

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    wait_until("some commits before the kill", lambda: len(acked) >= 200, timeout=60, interval=0.1)
    docker("kill", "-s", "KILL", single.container("postgres"), timeout=60)
    thread.join(timeout=60)
    stop.set()
    assert not thread.is_alive()
    single.up("postgres")
    present = {int(x) for x in single.psql("SELECT id FROM durable WHERE id >= 1000").split()}
    missing = [i for i in acked if i not in present]
    assert not missing, f"{len(missing)} acknowledged commits lost, e.g. {missing[:5]}"
    assert single.psql("SELECT count(*) FROM durable WHERE id < 1000") == "100"


# --- the memory budget under a real limit -----------------------------------------------------------------

PROBE = """BEGIN;
DECLARE c CURSOR FOR SELECT g FROM generate_series(1, :rows) g ORDER BY g DESC;
FETCH 1 FROM c;
SELECT pg_sleep(8);
COMMIT;
"""


def _sort_rows_for(conn: psycopg.Connection, work_mem_kb: int) -> int:
    """How many generate_series rows make the largest in-memory sort that still fits work_mem
    (binary search on EXPLAIN ANALYZE; at least 70% of work_mem, or the test cannot prove anything)."""
    lo, hi, best, best_kb = 100, 10_000_000, 0, 0
    for _ in range(25):
        if lo > hi:
            break
        rows = (lo + hi) // 2
        plan = conn.execute(
            "EXPLAIN (ANALYZE, FORMAT JSON) SELECT g FROM generate_series(1, %s) g ORDER BY g DESC", (rows,)
        ).fetchone()
        assert plan is not None
        node = plan[0][0]["Plan"]
        used_kb = int(node["Sort Space Used"])
        if node["Sort Space Type"] == "Memory" and used_kb <= work_mem_kb:
            best, best_kb, lo = rows, used_kb, rows + 1
        else:
            hi = rows - 1
    assert best_kb >= 0.7 * work_mem_kb, f"largest in-memory sort {best_kb}kB of work_mem {work_mem_kb}kB"
    return best


@pytest.mark.parametrize("limit_mb", [512, 1024])
def test_every_connection_sorting_at_once_is_not_oom_killed(
    stack_images: None,
    stacks: MakeStack,
    tmp_path: Path,
    limit_mb: int,
) -> None:
    pw = _passwords(f"oom{limit_mb}")
    single = stacks("single")
    single.write_env(
        _single_env(pw),
        raw={"POSTGRES_MEMORY_LIMIT": f"{limit_mb}m", "POSTGRES_MEMORY_RESERVATION": f"{limit_mb}m"},
    )
    single.up("postgres")
    with _connect(single, pw["POSTGRES_PASSWORD"]) as conn:
        max_conn = int(_one(conn, "SHOW max_connections"))
        reserved = int(_one(conn, "SHOW superuser_reserved_connections"))
        work_mem_kb = int(_one(conn, "SELECT setting FROM pg_settings WHERE name = 'work_mem'"))
        in_use = int(
            _one(conn, "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'")
        )
        rows = _sort_rows_for(conn, work_mem_kb)
    # Every slot a superuser may take, minus the ones in use and two for health checks and the exporter.
    clients = max_conn - in_use - 2
    assert clients >= 10
    (tmp_path / "probe.sql").write_text(PROBE, encoding="utf-8")
    proc = subprocess.run(
        [
            "pgbench",
            "-n",
            "-c",
            str(clients),
            "-j",
            "2",
            "-t",
            "1",
            "-D",
            f"rows={rows}",
            "-f",
            str(tmp_path / "probe.sql"),
            "-h",
            "127.0.0.1",
            "-p",
            str(single.ports["POSTGRES_HOST_PORT"]),
            "-U",
            "postgres",
            "postgres",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PGPASSWORD": pw["POSTGRES_PASSWORD"]},
        check=False,
    )
    state = single.inspect("postgres")["State"]
    log = single.logs()
    summary = (
        f"limit {limit_mb}MB, max_connections {max_conn} (reserved {reserved}), work_mem {work_mem_kb}kB, "
        f"{clients} clients x {rows} rows"
    )
    assert state["OOMKilled"] is False, summary  # type: ignore[index]
    assert state["Running"] is True, summary  # type: ignore[index]
    assert "terminated by signal 9" not in log, summary
    assert proc.returncode == 0, f"{summary}\n{proc.stdout}\n{proc.stderr}"
    assert f"number of transactions actually processed: {clients}/{clients}" in proc.stdout, proc.stdout
    print(f"\nOOM probe passed: {summary}, pgbench {proc.stdout.count(chr(10))} lines")
    time.sleep(1)
    assert single.psql("SELECT 1") == "1"
