"""The replica's first clone under failure: unreachable or misconfigured primary, kill -9 mid-clone,
a data directory that holds someone else's files. Everything through the real entrypoint on 127.0.0.1."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.process.pgharness import Instance, free_port
from tests.process.test_replica import (
    REPLICATION_PASSWORD,
    execute,
    primary_env,
    replica_env,
    streaming,
    value,
    wait_until,
)

pytestmark = pytest.mark.process

ROWS = 1_500_000  # about 200 MB of table: a throttled clone takes long enough to be caught mid-way


@pytest.fixture(scope="module")
def primary() -> Iterator[Instance]:
    with Instance.create(primary_env(), memory_mb=1024) as pg:
        pg.start()
        execute(pg, "CREATE TABLE big AS SELECT g AS id, repeat('x', 100) AS pad "
                "FROM generate_series(1, %s) g", ROWS)
        execute(pg, "CHECKPOINT")
        yield pg


def entries(pgdata: Path) -> list[str]:
    return sorted(p.name for p in pgdata.iterdir()) if pgdata.exists() else []


def du_mb(path: Path) -> float:
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(FileNotFoundError):
                total += (Path(dirpath) / name).stat().st_size
    return total / 1e6


def basebackup_child(pg: Instance) -> psutil.Process | None:
    try:
        children = psutil.Process(pg.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return None
    return next((c for c in children if c.name() == "pg_basebackup"), None)


def start_throttled_clone(pg: Instance) -> psutil.Process:
    """Start a replica whose clone is slow, and return its pg_basebackup once it has copied a good part."""
    pg.start(wait=False)
    child = wait_until("pg_basebackup to start", lambda: basebackup_child(pg), 60)
    wait_until("part of the clone on disk", lambda: du_mb(pg.pgdata / ".aza-pg-clone") > 20, 60)
    assert child.is_running()
    return child


def test_unreachable_primary_bounded_wait_then_clear_error() -> None:
    port = free_port()  # nothing listens there
    with Instance.create(replica_env_for("127.0.0.1", port, PRIMARY_WAIT_TIMEOUT="4")) as pg:
        began = time.monotonic()
        result = pg.run(timeout=60)
        elapsed = time.monotonic() - began
        assert result.returncode == 1, result.output
        assert f"primary 127.0.0.1:{port} not usable" in result.output
        assert "connection refused" in result.output
        assert result.output.count(f"waiting for primary 127.0.0.1:{port}") >= 2  # one line per attempt
        assert elapsed < 30
        assert entries(pg.pgdata) == []
        assert REPLICATION_PASSWORD not in result.output


def test_unknown_host_is_reported_as_dns() -> None:
    with Instance.create(replica_env_for("primary.invalid", 5432, PRIMARY_WAIT_TIMEOUT="2")) as pg:
        result = pg.run(timeout=60)
        assert result.returncode == 1
        assert "primary primary.invalid:5432 not usable" in result.output
        assert "DNS lookup failed" in result.output
        assert entries(pg.pgdata) == []


def test_wrong_password_is_reported_as_authentication(primary: Instance) -> None:
    env = {**replica_env(primary, PRIMARY_WAIT_TIMEOUT="2"), "PG_REPLICATION_PASSWORD": "not the password"}
    with Instance.create(env) as pg:
        result = pg.run(timeout=60)
        assert result.returncode == 1
        assert f"primary 127.0.0.1:{primary.port} not usable" in result.output
        assert "authentication failed" in result.output
        assert entries(pg.pgdata) == []


def test_files_that_are_not_ours_are_never_cloned_over(primary: Instance) -> None:
    with Instance.create(replica_env(primary)) as pg:
        pg.pgdata.mkdir(mode=0o700)
        (pg.pgdata / "notes.txt").write_text("precious")
        result = pg.run(timeout=60)
        assert result.returncode == 1
        assert "not empty" in result.output
        assert "notes.txt" in result.output
        assert (pg.pgdata / "notes.txt").read_text() == "precious"
        assert entries(pg.pgdata) == ["notes.txt"]


def test_kill_9_of_pg_basebackup_then_a_normal_start_streams(primary: Instance) -> None:
    env = replica_env(primary, REPLICATION_SLOT_NAME="kill_a_slot", REPLICA_APPLICATION_NAME="kill_a",
                      REPLICA_CLONE_MAX_RATE="5M")
    with Instance.create(env) as pg:
        child = start_throttled_clone(pg)
        child.send_signal(signal.SIGKILL)
        assert pg.proc is not None
        assert pg.proc.wait(timeout=30) == 1
        output = pg.start_output()
        assert "killed by signal 9" in output
        assert "partial copy was removed" in output
        assert ".aza-pg-clone" not in entries(pg.pgdata)
        assert "PG_VERSION" not in entries(pg.pgdata)

        pg.env.pop("REPLICA_CLONE_MAX_RATE")
        pg.start(timeout=180)
        assert "replication slot kill_a_slot: exists" in pg.start_output()  # reused, not created twice
        wait_until("streaming", lambda: streaming(pg), 30)
        assert value(pg, "SELECT count(*) FROM big") == ROWS

        # A later start of the same replica does not clone again.
        pg.stop(signal.SIGINT)
        pg.start()
        assert "PGDATA holds a standby" in pg.start_output()
        assert "cloning primary" not in pg.start_output()
        wait_until("streaming after a restart", lambda: streaming(pg), 30)

        # The slot vanished on the primary (a new primary after a failover, or dropped by hand): the next
        # start recreates it and streaming resumes without any manual step.
        pg.stop(signal.SIGINT)
        execute(primary, "SELECT pg_drop_replication_slot('kill_a_slot')")
        pg.start()
        assert "replication slot kill_a_slot was missing on the primary" in pg.start_output()
        wait_until("streaming with a recreated slot", lambda: streaming(pg), 30)
        active = "SELECT active FROM pg_replication_slots WHERE slot_name = 'kill_a_slot'"
        assert value(primary, active) is True

        # PRIMARY_HOST now names another database system: said loudly, the standby still serves reads.
        pg.stop(signal.SIGINT)
        with Instance.create(primary_env(), memory_mb=1024) as other:
            other.start()
            pg.env["PRIMARY_PORT"] = str(other.port)
            pg.start()
            assert f"primary 127.0.0.1:{other.port} is a different database system" in pg.start_output()
            assert value(pg, "SELECT count(*) FROM big") == ROWS
            pg.stop(signal.SIGINT)


def test_stop_signal_mid_clone_ends_the_copy_and_cleans_up(primary: Instance) -> None:
    """`docker stop` sends SIGINT (the image's STOPSIGNAL) to the entrypoint while it clones."""
    env = replica_env(primary, REPLICATION_SLOT_NAME="stop_slot", REPLICA_APPLICATION_NAME="stopped",
                      REPLICA_CLONE_MAX_RATE="5M")
    with Instance.create(env) as pg:
        child = start_throttled_clone(pg)
        assert pg.proc is not None
        began = time.monotonic()
        pg.proc.send_signal(signal.SIGINT)
        code = pg.proc.wait(timeout=30)
        assert time.monotonic() - began < 10
        assert code != 0
        assert not child.is_running()
        assert not [p for p in psutil.process_iter(["name", "cmdline"]) if p.info["name"] == "pg_basebackup"
                    and str(pg.pgdata) in " ".join(p.info["cmdline"] or [])], (code, pg.start_output())
        left = [n for n in entries(pg.pgdata) if n != "aza-pg"]
        assert left == []


def test_killed_mid_clone_leftovers_are_cleaned_on_the_next_start(primary: Instance) -> None:
    """The whole start killed (entrypoint and pg_basebackup, as when a container is killed)."""
    env = replica_env(primary, REPLICATION_SLOT_NAME="kill_b_slot", REPLICA_APPLICATION_NAME="kill_b",
                      REPLICA_CLONE_MAX_RATE="5M")
    with Instance.create(env) as pg:
        start_throttled_clone(pg)
        pg.kill()
        assert ".aza-pg-clone" in entries(pg.pgdata)  # left behind, to be recognised as ours

        pg.env.pop("REPLICA_CLONE_MAX_RATE")
        pg.start(timeout=180)
        output = pg.start_output()
        assert "removing what an interrupted clone left in PGDATA" in output
        wait_until("streaming", lambda: streaming(pg), 30)
        assert value(pg, "SELECT count(*) FROM big") == ROWS
        assert ".aza-pg-clone" not in entries(pg.pgdata)
        assert ".aza-pg-clone.pgpass" not in entries(pg.pgdata)


def replica_env_for(host: str, port: int, **extra: str) -> dict[str, str]:
    return {"POSTGRES_ROLE": "replica", "PRIMARY_HOST": host, "PRIMARY_PORT": str(port),
            "PG_REPLICATION_PASSWORD": REPLICATION_PASSWORD, **extra}
