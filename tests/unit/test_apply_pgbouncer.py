"""Who PgBouncer runs as, and what reaches its environment."""

from __future__ import annotations

import pwd

import pytest

from entrypoint.apply import pgbouncer as apply
from entrypoint.detect.pgbouncer import parse_version
from entrypoint.errors import RuntimeFailure

pytestmark = pytest.mark.unit


def test_root_drops_to_postgres() -> None:
    who = apply.identity(0)
    entry = pwd.getpwnam("postgres")
    assert (who.uid, who.gid, who.name, who.switch) == (entry.pw_uid, entry.pw_gid, "postgres", True)


def test_a_uid_without_passwd_entry_runs_as_itself() -> None:
    uid = 54_321
    with pytest.raises(KeyError):
        pwd.getpwuid(uid)
    who = apply.identity(uid)
    assert (who.uid, who.name, who.switch) == (uid, str(uid), False)


def test_scrub_removes_secrets_and_their_files() -> None:
    env = {
        "PATH": "/usr/bin", "PGBOUNCER_AUTH_PASS": "x", "PGBOUNCER_AUTH_PASS_FILE": "/run/s",
        "PGBOUNCER_STATS_PASSWORD": "y", "POSTGRES_PASSWORD": "z", "PGPASSWORD": "w", "HOME": "/root",
        "PGBOUNCER_PORT": "6432", "API_TOKEN": "t", "SOME_SECRET": "s",
    }
    assert apply.scrub(env) == {"PATH": "/usr/bin", "HOME": "/root", "PGBOUNCER_PORT": "6432"}


@pytest.mark.parametrize(
    ("text", "version"),
    [
        ("PgBouncer 1.18.0\nlibevent 2.1.12-stable\n", (1, 18, 0)),
        ("PgBouncer 1.24.1\n", (1, 24, 1)),
        ("pgbouncer version PgBouncer 1.9", (1, 9, 0)),
    ],
)
def test_version_parsing(text: str, version: tuple[int, int, int]) -> None:
    assert parse_version(text) == version


def test_unreadable_version_is_a_runtime_failure() -> None:
    with pytest.raises(RuntimeFailure, match="cannot read the PgBouncer version"):
        parse_version("something else")
