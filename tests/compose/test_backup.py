"""Backups proven by restores, against the built image (issue 9).

Logical: scripts/tools/backup-postgres.sh + restore-postgres.sh round trip a database (row counts and a
checksum of every table's contents), refuse to overwrite, and work with a password full of special
characters over TCP as well as with the default socket connection.

Physical: the shipped examples/backup/compose.yml with POSTGRES_ARCHIVE=pgbackrest: stanza-create, full,
diff and incr backups between commits, a noted time, more commits, then a point-in-time restore
into a FRESH volume; the restored server must hold exactly the rows committed before the noted time.

Each module run uses its own compose project, volume names and a free loopback port, and removes them
all at the end, also on failure.
"""

from __future__ import annotations

import gzip
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.compose.backupkit import (
    IMAGE,
    NASTY_PASSWORD,
    REPO,
    TOOLS,
    docker,
    free_port,
    logs,
    psql,
    require_image,
    run,
    wait_accepting_writes,
    wait_for,
)

pytestmark = pytest.mark.compose

COMPOSE_FILE = REPO / "examples/backup/compose.yml"
APP_DB = "shop-db"  # a name that needs quoting


@dataclass
class Stack:
    project: str
    env: dict[str, str]
    extra_volumes: list[str]

    def compose(self, *args: str, timeout: float = 300, check: bool = True, **env: str) -> str:
        cmd = ["docker", "compose", "-p", self.project, "-f", str(COMPOSE_FILE), *args]
        return run(cmd, env={**self.env, **env}, timeout=timeout, check=check).stdout

    def container(self) -> str:
        cid = self.compose("ps", "-q", "postgres").strip()
        assert cid, "the postgres service has no container"
        return docker("inspect", "-f", "{{.Name}}", cid).stdout.strip().lstrip("/")

    def pgbackrest(self, *args: str, timeout: float = 300) -> str:
        return self.compose("exec", "-T", "-u", "postgres", "postgres", "pgbackrest", "--stanza=main", *args,
                            timeout=timeout)


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    require_image()
    project = f"azapg-backup-{uuid.uuid4().hex[:8]}"
    env = {
        "AZA_PG_IMAGE": IMAGE,
        "POSTGRES_PASSWORD": NASTY_PASSWORD,
        "POSTGRES_HOST_PORT": str(free_port()),
        "PGDATA_VOLUME": f"{project}-pgdata",
        "PGBACKREST_REPO_VOLUME": f"{project}-repo",
        "POSTGRES_ARCHIVE_TIMEOUT": "10",
        "COMPOSE_PROFILES": "",
    }
    st = Stack(project=project, env=env, extra_volumes=[])
    try:
        st.compose("up", "-d", "postgres")
        wait_accepting_writes(st.container())
        yield st
    finally:
        for volume in (env["PGDATA_VOLUME"], *st.extra_volumes):
            down = ["docker", "compose", "-p", project, "-f", str(COMPOSE_FILE), "down", "-v",
                    "--remove-orphans", "--timeout", "20"]
            run(down, env={**env, "PGDATA_VOLUME": volume}, timeout=180, check=False)
        for volume in (env["PGDATA_VOLUME"], env["PGBACKREST_REPO_VOLUME"], *st.extra_volumes):
            docker("volume", "rm", "-f", volume, check=False)


# --- logical backups ------------------------------------------------------------------------------------

SCHEMA = """
CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL, note text, payload jsonb, raw bytea);
CREATE TABLE orders (id bigserial PRIMARY KEY, customer int REFERENCES customers, amount numeric(12,2),
                     at timestamptz NOT NULL);
CREATE SCHEMA "Reporting";
CREATE VIEW "Reporting".totals AS SELECT customer, sum(amount) AS total FROM orders GROUP BY customer;
INSERT INTO customers
  SELECT g, 'Name ' || g || ' ü€''"\\', CASE WHEN g % 7 = 0 THEN NULL ELSE md5(g::text) END,
         jsonb_build_object('g', g, 'tags', jsonb_build_array('a', g % 3)), decode(md5(g::text), 'hex')
  FROM generate_series(1, 2000) g;
INSERT INTO orders (customer, amount, at)
  SELECT 1 + g % 2000, (g * 13 % 100000) / 100.0, timestamptz '2026-01-01 00:00+00' + g * interval '1 minute'
  FROM generate_series(1, 15000) g;
"""

FINGERPRINT = """
SELECT string_agg(format('%s=%s/%s', tbl, n, sum), ' ' ORDER BY tbl) FROM (
  SELECT 'customers' AS tbl, count(*) AS n, md5(string_agg(c::text, E'\\n' ORDER BY id)) AS sum
  FROM customers c
  UNION ALL
  SELECT 'orders', count(*), md5(string_agg(o::text, E'\\n' ORDER BY id)) FROM orders o
  UNION ALL
  SELECT 'view', count(*), md5(string_agg(v::text, E'\\n' ORDER BY customer)) FROM "Reporting".totals v
  UNION ALL
  SELECT 'sequence', last_value, md5(last_value::text) FROM orders_id_seq
) t
"""


@pytest.fixture(scope="module")
def app_db(stack: Stack) -> str:
    container = stack.container()
    psql(container, 'CREATE DATABASE :"name";', name=APP_DB)
    psql(container, SCHEMA, db=APP_DB)
    fingerprint = psql(container, FINGERPRINT, db=APP_DB)
    assert "customers=2000/" in fingerprint
    assert "orders=15000/" in fingerprint
    return fingerprint


def backup(stack: Stack, out: Path, *args: str, **env: str) -> tuple[int, str]:
    result = run([str(TOOLS / "backup-postgres.sh"), stack.container(), str(out), *args], env=env,
                 timeout=300, check=False)
    return result.returncode, result.stderr


def restore(stack: Stack, src: Path, *args: str, **env: str) -> tuple[int, str]:
    result = run([str(TOOLS / "restore-postgres.sh"), stack.container(), str(src), *args], env=env,
                 timeout=300, check=False)
    return result.returncode, result.stderr


def test_logical_round_trip_with_a_special_character_password(stack: Stack, app_db: str, tmp_path: Path
                                                              ) -> None:
    container = stack.container()
    out = tmp_path / "backup.sql.gz"
    # Over TCP inside the container: scram-sha-256 with the nasty password, handed over by environment.
    tcp = {"PGHOST": "127.0.0.1", "PGPASSWORD": NASTY_PASSWORD}
    code, err = backup(stack, out, APP_DB, **tcp)
    assert code == 0, err
    assert stat_mode(out) == 0o600
    with gzip.open(out, "rt", encoding="utf-8") as f:
        text = f.read()
    assert "-- PostgreSQL database dump complete" in text
    assert NASTY_PASSWORD not in text
    assert not [p.name for p in tmp_path.iterdir() if p.name != "backup.sql.gz"]  # no temp file left

    psql(container, 'DROP DATABASE :"name";', name=APP_DB)
    assert psql(container, "SELECT count(*) FROM pg_database WHERE datname = :'name'", name=APP_DB) == "0"
    code, err = restore(stack, out, APP_DB, **tcp)
    assert code == 0, err
    assert psql(container, FINGERPRINT, db=APP_DB) == app_db


def test_the_password_never_reaches_a_command_line(stack: Stack, app_db: str, tmp_path: Path) -> None:
    """Every docker command the scripts run goes through a recorder (DOCKER=...) that logs its argv and
    execs the real docker; the password must travel only in the environment (`-e PGPASSWORD`)."""
    log = tmp_path / "argv.log"
    recorder = tmp_path / "docker"
    recorder.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> {log}\nexec docker "$@"\n')
    recorder.chmod(0o755)
    env = {"DOCKER": str(recorder), "PGHOST": "127.0.0.1", "PGPASSWORD": NASTY_PASSWORD}
    out = tmp_path / "argv-check.sql.gz"
    code, err = backup(stack, out, APP_DB, **env)
    assert code == 0, err
    code, err = restore(stack, out, "argv-check", **env)
    assert code == 0, err
    calls = log.read_text().splitlines()
    assert any(line.startswith("exec ") and "pg_dump" in line for line in calls)
    assert any(line.startswith("exec ") and "psql" in line for line in calls)
    for line in calls:
        assert "p@ss" not in line
        if line.startswith("exec "):
            assert "-e PGPASSWORD" in line


def test_default_socket_connection_and_restore_under_another_name(stack: Stack, app_db: str, tmp_path: Path
                                                                  ) -> None:
    container = stack.container()
    out = tmp_path / "socket.sql.gz"
    code, err = backup(stack, out, APP_DB)
    assert code == 0, err
    copy = "copy of shop"
    code, err = restore(stack, out, copy)
    assert code == 0, err
    assert psql(container, FINGERPRINT, db=copy) == app_db
    # Restoring over an existing database is refused and changes nothing.
    psql(container, "INSERT INTO customers VALUES (999999, 'only in the copy')", db=copy)
    code, err = restore(stack, out, copy)
    assert code == 3
    assert f'database "{copy}" already exists' in err
    assert psql(container, "SELECT count(*) FROM customers WHERE id = 999999", db=copy) == "1"


def test_backup_never_overwrites_an_existing_file(stack: Stack, app_db: str, tmp_path: Path) -> None:
    out = tmp_path / "backup.sql.gz"
    out.write_bytes(b"an older backup")
    code, err = backup(stack, out, APP_DB)
    assert code == 3
    assert "refusing to overwrite" in err
    assert out.read_bytes() == b"an older backup"
    assert [p.name for p in tmp_path.iterdir()] == ["backup.sql.gz"]


def test_failed_backup_leaves_nothing_and_failed_restore_drops_its_database(
    stack: Stack, app_db: str, tmp_path: Path
) -> None:
    container = stack.container()
    code, err = backup(stack, tmp_path / "wrong.sql.gz", APP_DB, PGHOST="127.0.0.1", PGPASSWORD="not it")
    assert code == 1
    assert "password authentication failed" in err
    code, err = backup(stack, tmp_path / "missing.sql.gz", "no such db")
    assert code == 1
    assert list(tmp_path.iterdir()) == []

    broken = tmp_path / "broken.sql.gz"
    broken.write_bytes(gzip.compress(b"CREATE TABLE ok (i int);\nTHIS IS NOT SQL;\n"))
    code, err = restore(stack, broken, "half-restored")
    assert code == 1
    assert "was dropped again" in err
    assert psql(container, "SELECT count(*) FROM pg_database WHERE datname = 'half-restored'") == "0"


def data_volume(container: str) -> str:
    fmt = '{{range .Mounts}}{{if eq .Destination "/var/lib/postgresql/data"}}{{.Name}}{{end}}{{end}}'
    return docker("inspect", "-f", fmt, container).stdout.strip()


def stat_mode(path: Path) -> int:
    return os.stat(path).st_mode & 0o777


# --- pgBackRest: point-in-time recovery into a fresh volume -----------------------------------------------

def test_pgbackrest_point_in_time_restore_into_a_fresh_volume(stack: Stack) -> None:
    container = stack.container()
    assert psql(container, "SHOW archive_mode") == "on"
    assert psql(container, "SHOW archive_command") == "pgbackrest --stanza=main archive-push %p"
    stack.pgbackrest("stanza-create")
    stack.pgbackrest("check")  # a WAL switch really reaches the repository

    psql(container, "CREATE TABLE pitr (id int PRIMARY KEY, at timestamptz DEFAULT clock_timestamp())")
    psql(container, "INSERT INTO pitr (id) SELECT generate_series(1, 100)")
    # Exactly as the deployment guide shows it: plain `docker exec` (root) with no -u. The image's
    # pgbackrest must switch to postgres, or the repository gets root-owned files and archiving breaks.
    docker("exec", container, "pgbackrest", "backup", "--stanza=main", "--type=full", timeout=600)
    foreign = docker("exec", container, "find", "/var/lib/pgbackrest", "/var/log/pgbackrest", "!", "-user",
                     "postgres").stdout.split()
    assert foreign == [], f"files not owned by postgres after a backup started as root: {foreign[:5]}"
    psql(container, "INSERT INTO pitr (id) SELECT generate_series(101, 150)")
    stack.pgbackrest("--type=diff", "backup", timeout=600)
    psql(container, "INSERT INTO pitr (id) SELECT generate_series(151, 180)")
    stack.pgbackrest("--type=incr", "backup", timeout=600)
    info = stack.pgbackrest("info")
    for kind in ("full backup", "diff backup", "incr backup"):
        assert kind in info, info

    psql(container, "INSERT INTO pitr (id) SELECT generate_series(181, 200)")
    # The target: a moment after the last commit we want, taken from the server's own clock.
    target = psql(container, "SELECT clock_timestamp()::text")
    time.sleep(1.5)
    psql(container, "INSERT INTO pitr (id) SELECT generate_series(201, 300)")
    psql(container, "INSERT INTO pitr (id) SELECT generate_series(301, 350)")
    # Make sure the WAL holding the later commits is archived too: a restore must stop at the target
    # by itself, not because the WAL ran out.
    segment = psql(container, "SELECT pg_walfile_name(pg_switch_wal())")
    wait_for("the last WAL segment in the archive",
             lambda: psql(container, "SELECT last_archived_wal >= :'seg' FROM pg_stat_archiver", seg=segment)
             == "t", timeout=120, diagnostics=lambda: logs(container))
    assert psql(container, "SELECT count(*) FROM pitr") == "350"

    stack.compose("stop", "--timeout", "60", "postgres")
    fresh = f"{stack.project}-pitr"
    stack.extra_volumes.append(fresh)
    out = stack.compose("run", "--rm", "-T", "pgbackrest", "--stanza=main", "--type=time",
                        f"--target={target}", "--target-action=promote", "restore",
                        timeout=600, PGDATA_VOLUME=fresh, COMPOSE_PROFILES="tools")
    assert "restore command end: completed successfully" in out
    # --force-recreate: a stopped container would otherwise be restarted with its old volume.
    stack.compose("up", "-d", "--force-recreate", "postgres", PGDATA_VOLUME=fresh)
    restored = stack.container()
    assert data_volume(restored) == fresh
    wait_accepting_writes(restored, timeout=300)

    assert psql(restored, "SELECT count(*), min(id), max(id) FROM pitr") == "200|1|200"
    assert psql(restored, "SELECT count(*) FROM pitr WHERE at > :'t'::timestamptz", t=target) == "0"
    # The restored server is a normal primary on a new timeline, and it keeps archiving.
    assert psql(restored, "SELECT timeline_id > 1 FROM pg_control_checkpoint()") == "t"
    psql(restored, "INSERT INTO pitr (id) VALUES (1000)")
    # The original volume is untouched: still all 350 rows.
    stack.compose("stop", "--timeout", "60", "postgres", PGDATA_VOLUME=fresh)
    stack.compose("up", "-d", "--force-recreate", "postgres")
    original = stack.container()
    assert data_volume(original) == stack.env["PGDATA_VOLUME"]
    wait_accepting_writes(original, timeout=300)
    assert psql(original, "SELECT count(*) FROM pitr") == "350"
