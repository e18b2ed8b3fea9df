"""A streaming replica, both servers started through the real entrypoint on 127.0.0.1.

One primary and one replica are shared by the tests of this module (module fixture, in file order):
replication works and is asynchronous, the replica is read-only, hot-standby settings are in effect, the
replica's max_connections respects the primary's although it has less memory, the primary's restart is
survived, the synchronous switch works, and finally ``aza-pg promote`` turns the replica into a primary.
The replication password holds every awkward character of the acceptance list.
"""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import psycopg
import pytest

from tests.process.pgharness import PYTHON, Instance

pytestmark = pytest.mark.process

REPLICATION_PASSWORD = "r:e\\p 'l\" #$x:\\ end"
PRIMARY_MEMORY = 4096
REPLICA_MEMORY = 1024
T = TypeVar("T")


def wait_until(what: str, check: Callable[[], T | None], timeout: float, interval: float = 0.1) -> T:
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while True:
        try:
            value = check()
            if value:
                return value
        except (psycopg.Error, OSError) as exc:
            last = exc
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what} (last error: {last})")
        time.sleep(interval)


def value(pg: Instance, sql: str, *params: Any) -> Any:
    rows = pg.query(sql, *params)
    return rows[0][0] if rows else None


def execute(pg: Instance, sql: str, *params: Any) -> None:
    with pg.connect() as conn:
        conn.execute(sql, params or None)


def streaming(replica: Instance) -> bool:
    return bool(value(replica, "SELECT status FROM pg_stat_wal_receiver") == "streaming")


def sync_state(primary: Instance) -> str | None:
    found = value(primary, "SELECT sync_state FROM pg_stat_replication WHERE application_name = 'replica1'")
    return None if found is None else str(found)


def primary_env(**extra: str) -> dict[str, str]:
    return {"POSTGRES_ROLE": "primary", "PG_REPLICATION_PASSWORD": REPLICATION_PASSWORD, **extra}


def replica_env(primary: Instance, **extra: str) -> dict[str, str]:
    return {"POSTGRES_ROLE": "replica", "PRIMARY_HOST": "127.0.0.1", "PRIMARY_PORT": str(primary.port),
            "PG_REPLICATION_PASSWORD": REPLICATION_PASSWORD, "PRIMARY_WAIT_TIMEOUT": "60", **extra}


@pytest.fixture(scope="module")
def pair() -> Iterator[tuple[Instance, Instance]]:
    with Instance.create(primary_env(), memory_mb=PRIMARY_MEMORY) as primary:
        primary.start()
        with Instance.create(replica_env(primary), memory_mb=REPLICA_MEMORY) as replica:
            replica.start(timeout=180)
            wait_until("the replica to stream", lambda: streaming(replica), 30)
            yield primary, replica


def test_rows_committed_on_the_primary_appear_on_the_replica(pair: tuple[Instance, Instance]) -> None:
    primary, replica = pair
    execute(primary, "CREATE TABLE IF NOT EXISTS items (id int PRIMARY KEY, note text)")
    execute(primary, "INSERT INTO items SELECT g, 'row ' || g FROM generate_series(1, 1000) g")
    count = wait_until("rows on the replica",
                       lambda: value(replica, "SELECT count(*) FROM items") == 1000 or None, 15)
    assert count
    assert value(replica, "SELECT note FROM items WHERE id = 777") == "row 777"


def test_replica_streams_asynchronously_by_default(pair: tuple[Instance, Instance]) -> None:
    primary, replica = pair
    assert value(replica, "SELECT status FROM pg_stat_wal_receiver") == "streaming"
    assert value(replica, "SELECT pg_is_in_recovery()") is True
    rows = primary.query("SELECT application_name, state, sync_state FROM pg_stat_replication")
    assert ("replica1", "streaming", "async") in rows
    slot = primary.query("SELECT slot_type, active FROM pg_replication_slots "
                         "WHERE slot_name = 'replica1_slot'")
    assert slot == [("physical", True)]


def test_replica_rejects_writes(pair: tuple[Instance, Instance]) -> None:
    _, replica = pair
    with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
        execute(replica, "CREATE TABLE nope (id int)")
    with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
        execute(replica, "INSERT INTO items VALUES (5000, 'no')")


def test_hot_standby_settings_are_in_effect(pair: tuple[Instance, Instance]) -> None:
    _, replica = pair
    assert value(replica, "SHOW hot_standby_feedback") == "on"
    assert value(replica, "SHOW primary_slot_name") == "replica1_slot"
    assert value(replica, "SHOW wal_retrieve_retry_interval") == "2s"
    assert value(replica, "SHOW max_standby_streaming_delay") == "30s"
    conninfo = value(replica, "SHOW primary_conninfo")
    assert "passfile=" in conninfo
    assert "application_name=replica1" in conninfo.replace("'", "")
    assert "password" not in conninfo.replace("passfile", "")


def test_password_is_only_in_the_0600_passfile(pair: tuple[Instance, Instance]) -> None:
    _, replica = pair
    secret = REPLICATION_PASSWORD.encode()
    passfile = replica.pgdata / "aza-pg" / "replication.pgpass"
    assert passfile.stat().st_mode & 0o777 == 0o600
    assert passfile.read_text().rstrip("\n").endswith("r\\:e\\\\p 'l\" #$x\\:\\\\ end")
    for path in replica.pgdata.rglob("*"):
        small = path.is_file() and path.stat().st_size < 1_000_000
        if small and path != passfile and path.suffix in ("", ".conf", ".signal", ".json"):
            assert secret not in path.read_bytes(), path
    assert REPLICATION_PASSWORD not in replica.log_text()


def test_less_memory_replica_keeps_the_primarys_max_connections(pair: tuple[Instance, Instance]) -> None:
    primary, replica = pair
    primary_max = int(value(primary, "SHOW max_connections"))
    replica_max = int(value(replica, "SHOW max_connections"))
    assert replica_max >= primary_max
    # The replica would have computed fewer for its own memory: the floor is what lifted it.
    own = subprocess.run([*PYTHON, "-m", "entrypoint", "tune", "--memory", str(REPLICA_MEMORY), "--cpus", "2",
                          "--pg-version", "15", "--format", "json"], capture_output=True, text=True,
                         check=True, timeout=60, env={**replica.env})
    assert int(json.loads(own.stdout)["settings"]["max_connections"]) < primary_max
    for name in ("max_worker_processes", "max_wal_senders", "max_prepared_transactions",
                 "max_locks_per_transaction"):
        assert int(value(replica, f"SHOW {name}")) >= int(value(primary, f"SHOW {name}"))


def test_first_clone_reused_the_slot_the_primary_made_at_first_boot(pair: tuple[Instance, Instance]) -> None:
    _, replica = pair
    assert "replication slot replica1_slot: exists" in replica.log_text()
    assert "cloning: " in replica.log_text()  # progress lines
    assert "clone finished" in replica.log_text()


def test_a_user_value_below_the_primarys_stops_the_start(pair: tuple[Instance, Instance]) -> None:
    primary, replica = pair
    primary_max = int(value(primary, "SHOW max_connections"))
    replica.stop(signal.SIGINT)
    try:
        low = replica.run(env={**replica.env, "POSTGRES_MAX_CONNECTIONS": "20"}, timeout=90)
        assert low.returncode == 2, low.output
        assert "max_connections" in low.output
        assert str(primary_max) in low.output
        mounted = replica.conf_d / "low.conf"
        mounted.write_text("max_connections = 20\n")
        try:
            low = replica.run(timeout=90)
        finally:
            mounted.unlink()
        assert low.returncode == 2, low.output
        assert f"below the primary's {primary_max}" in low.output
        assert "max_connections" in low.output
    finally:
        replica.start(timeout=90)
    wait_until("streaming again", lambda: streaming(replica), 30)


def test_primary_restart_streaming_again_within_10s(pair: tuple[Instance, Instance]) -> None:
    primary, replica = pair
    primary.stop(signal.SIGINT)
    wait_until("the replica to notice", lambda: not streaming(replica), 15)
    primary.start()
    back = time.monotonic()
    wait_until("streaming after the primary restart", lambda: streaming(replica), 10)
    elapsed = time.monotonic() - back
    execute(primary, "INSERT INTO items VALUES (2000, 'after restart')")
    wait_until("the new row", lambda: value(replica, "SELECT note FROM items WHERE id = 2000"), 10)
    print(f"streaming again {elapsed:.2f}s after the primary accepted connections")


def test_synchronous_switch(pair: tuple[Instance, Instance]) -> None:
    primary, replica = pair
    primary.stop(signal.SIGINT)
    primary.env["POSTGRES_SYNCHRONOUS_STANDBY_NAMES"] = "replica1"
    try:
        primary.start()
        wait_until("sync_state sync", lambda: sync_state(primary) == "sync", 15)
        replica.stop(signal.SIGINT)
        done = threading.Event()
        errors: list[BaseException] = []

        def commit() -> None:
            try:
                execute(primary, "INSERT INTO items VALUES (3000, 'sync')")
            except BaseException as exc:  # reported by the assertions below
                errors.append(exc)
            finally:
                done.set()

        writer = threading.Thread(target=commit, daemon=True)
        writer.start()
        assert not done.wait(3), "a synchronous commit returned while the only standby was down"
        replica.start(timeout=90)
        assert done.wait(20), "the commit did not complete after the standby came back"
        assert errors == []
        wait_until("the row on the replica",
                   lambda: value(replica, "SELECT note FROM items WHERE id = 3000"), 10)
    finally:
        primary.env.pop("POSTGRES_SYNCHRONOUS_STANDBY_NAMES", None)
        if replica.proc is None or replica.proc.poll() is not None:
            replica.start(timeout=90)
        primary.stop(signal.SIGINT)
        primary.start()
    wait_until("async again", lambda: sync_state(primary) == "async", 15)


def test_primary_raising_max_connections_is_followed_after_a_replica_restart(
    pair: tuple[Instance, Instance],
) -> None:
    """The floors are read from the replica's control file on every start, which replay keeps current:
    when the primary raises a hot-standby setting, restarting the replica is enough."""
    primary, replica = pair
    primary.stop(signal.SIGINT)
    primary.env["POSTGRES_MAX_CONNECTIONS"] = "150"
    try:
        primary.start()
        execute(primary, "INSERT INTO items VALUES (4000, 'more connections')")
        # PostgreSQL pauses replay when it meets the primary's larger setting (after recording it in the
        # standby's control file); a plain restart of the replica is all it takes with aza-pg.
        wait_until("replay paused on the parameter change",
                   lambda: value(replica, "SELECT pg_get_wal_replay_pause_state()") == "paused", 30)
        replica.stop(signal.SIGINT)
        replica.start(timeout=90)
        assert "max_connections=150" in replica.start_output()
        assert int(value(replica, "SHOW max_connections")) >= 150, replica.start_output()
        wait_until("streaming", lambda: streaming(replica), 30)
        wait_until("the row written after the change",
                   lambda: value(replica, "SELECT note FROM items WHERE id = 4000"), 15)
    finally:
        primary.env.pop("POSTGRES_MAX_CONNECTIONS", None)
        primary.stop(signal.SIGINT)
        primary.start()
    wait_until("streaming", lambda: streaming(replica), 30)


def test_promote(pair: tuple[Instance, Instance]) -> None:
    """Last: after this the shared replica is a primary."""
    primary, replica = pair
    wait_until("streaming", lambda: streaming(replica), 15)
    result = replica.run(command="promote", timeout=90)
    assert result.returncode == 0, result.output
    assert value(replica, "SELECT pg_is_in_recovery()") is False
    execute(replica, "CREATE TABLE promoted (id int); INSERT INTO promoted VALUES (1)")
    assert value(replica, "SELECT count(*) FROM promoted") == 1
    assert "split brain" in result.output
    assert f"127.0.0.1:{primary.port}" in result.output
    again = replica.run(command="promote", timeout=60)
    assert again.returncode == 0
    assert "already" in again.output

    # Still configured as a replica, the promoted node refuses to start rather than guess; as a primary
    # it starts and keeps its data.
    replica.stop(signal.SIGINT)
    refused = replica.run(timeout=90)
    assert refused.returncode == 1, refused.output
    assert "Set POSTGRES_ROLE=primary" in refused.output
    replica.env["POSTGRES_ROLE"] = "primary"
    replica.start()
    assert value(replica, "SELECT pg_is_in_recovery()") is False
    assert value(replica, "SELECT count(*) FROM promoted") == 1
