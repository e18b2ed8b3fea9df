"""Major upgrade by dump and restore, exactly as docs/UPGRADING.md describes it (issue 9).

A PostgreSQL 15 container (a bookworm build of the same Dockerfile) gets an application database, a
login role with a password full of special characters and some data; its roles are dumped with
`pg_dumpall --roles-only` and the database with scripts/tools/backup-postgres.sh. A PostgreSQL 17
container on a fresh volume then gets the roles and, after dropping its freshly created POSTGRES_DB,
the database through scripts/tools/restore-postgres.sh. The contents must be identical and the role
must log in over TCP with its old password.

The 15 image is not part of CI's build, so this test is opt-in: it runs when AZA_PG_OLD_IMAGE (default
aza-pg/postgres:15) exists, built with
  docker build --target postgres --build-arg BASE_IMAGE=debian:bookworm-slim --build-arg PG_MAJOR=15 \
      --build-arg INSTALL_EXTENSIONS=0 -t aza-pg/postgres:15 .
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.compose.backupkit import (
    IMAGE,
    NASTY_PASSWORD,
    TOOLS,
    docker,
    psql,
    require_image,
    run,
    wait_accepting_writes,
)

pytestmark = [pytest.mark.compose, pytest.mark.opt_in]

OLD_IMAGE = os.environ.get("AZA_PG_OLD_IMAGE", "aza-pg/postgres:15")
APP_PASSWORD = "app:p@ss/w#rd 'q' \"dq\" \\ é"
DATA = """
CREATE ROLE app LOGIN PASSWORD :'pw';
CREATE TABLE items (id int PRIMARY KEY, name text, tags text[], doc jsonb, added date);
INSERT INTO items SELECT g, 'item ' || g || ' ü''', ARRAY['t' || g % 5, 'x'], jsonb_build_object('n', g),
                         date '2020-01-01' + g FROM generate_series(1, 5000) g;
CREATE INDEX items_name ON items (name);
ALTER TABLE items OWNER TO app;
"""
FINGERPRINT = ("SELECT count(*) || '/' || md5(string_agg(i::text, E'\\n' ORDER BY id)) || '/' || "
               "(SELECT tableowner FROM pg_tables WHERE tablename = 'items') FROM items i")


def start(name: str, image: str, volume: str, extra: list[str]) -> None:
    docker("run", "-d", "--name", name, "-v", f"{volume}:/var/lib/postgresql/data", "-e", "POSTGRES_PASSWORD",
           "-e", "POSTGRES_DB=app", "-e", "POSTGRES_MEMORY=1024", "--memory", "1g", *extra, image,
           env={"POSTGRES_PASSWORD": NASTY_PASSWORD})
    wait_accepting_writes(name, timeout=300)


@pytest.fixture
def names() -> Iterator[dict[str, str]]:
    tag = uuid.uuid4().hex[:8]
    out = {"old": f"azapg-up15-{tag}", "new": f"azapg-up17-{tag}", "old_vol": f"azapg-up15-{tag}",
           "new_vol": f"azapg-up17-{tag}"}
    try:
        yield out
    finally:
        for key in ("old", "new"):
            docker("rm", "-f", "-v", out[key], check=False)
        for key in ("old_vol", "new_vol"):
            docker("volume", "rm", "-f", out[key], check=False)


def test_dump_and_restore_from_15_to_17(names: dict[str, str], tmp_path: Path) -> None:
    if docker("image", "inspect", OLD_IMAGE, check=False).returncode != 0:
        pytest.skip(f"{OLD_IMAGE} is not built (see this module's docstring)")
    require_image()
    # The contrib-only 15 build has none of the catalog's preloaded extensions.
    contrib_only = ["-e", "POSTGRES_SHARED_PRELOAD_LIBRARIES=pg_stat_statements"]
    start(names["old"], OLD_IMAGE, names["old_vol"], contrib_only)
    assert psql(names["old"], "SHOW server_version_num").startswith("15")
    if psql(names["old"], "SELECT count(*) FROM pg_database WHERE datname = 'app'") == "0":
        psql(names["old"], "CREATE DATABASE app")  # an old server that is not an aza-pg image
    psql(names["old"], DATA, db="app", pw=APP_PASSWORD)
    before = psql(names["old"], FINGERPRINT, db="app")
    assert before.startswith("5000/")

    roles = tmp_path / "roles.sql"
    dump = docker("exec", "-u", "postgres", names["old"], "pg_dumpall", "-U", "postgres", "--roles-only")
    fd = os.open(roles, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(dump.stdout)
    backup = tmp_path / "app.sql.gz"
    run([str(TOOLS / "backup-postgres.sh"), names["old"], str(backup), "app"], timeout=300)
    docker("stop", "-t", "60", names["old"], timeout=120)

    start(names["new"], IMAGE, names["new_vol"], [])
    assert psql(names["new"], "SHOW server_version_num").startswith("17")
    replay = docker("exec", "-i", "-u", "postgres", names["new"], "psql", "-U", "postgres", "-X", "-q",
                    "-d", "postgres", stdin=roles.read_text(), check=False)
    problems = [line for line in replay.stderr.splitlines()
                if line.startswith("ERROR") and "already exists" not in line]
    assert problems == []
    docker("exec", "-u", "postgres", names["new"], "dropdb", "-U", "postgres", "--force", "app")
    run([str(TOOLS / "restore-postgres.sh"), names["new"], str(backup), "app"], timeout=300)

    assert psql(names["new"], FINGERPRINT, db="app") == before
    login = docker("exec", "-e", "PGPASSWORD", names["new"], "psql", "-X", "-At",
                   "-d", "host=127.0.0.1 user=app dbname=app",
                   "-c", "SELECT current_user, count(*) FROM items",
                   env={"PGPASSWORD": APP_PASSWORD})
    assert login.stdout.strip() == "app|5000"
