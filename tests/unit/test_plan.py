"""The pure planning helpers: first-boot postgresql.conf, overrides, changed resources, passwords,
validation fingerprints, user settings found in conf text and arguments."""

from __future__ import annotations

from pathlib import Path

import pytest

from entrypoint import plan
from entrypoint.detect import pgdata
from entrypoint.detect.pgdata import UserSource

pytestmark = pytest.mark.unit

INITDB_CONF = """\
# comment
max_connections = 100			# (change requires restart)
shared_buffers = 128MB			# min 128kB
#work_mem = 4MB
dynamic_shared_memory_type = posix
max_wal_size = 1GB
log_timezone = 'Etc/UTC'
"""


def test_first_boot_conf_frames_initdb_text_and_comments_out_managed_values() -> None:
    text = plan.first_boot_postgresql_conf(INITDB_CONF, ["shared_buffers", "max_connections", "max_wal_size"])
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    assert lines[0] == "include_dir = 'aza-pg/conf.d'"
    assert lines[-1] == "include = 'aza-pg/mounted.conf'"
    active = pgdata.parse_conf(text)
    assert "shared_buffers" not in active
    assert "max_connections" not in active
    assert "max_wal_size" not in active
    assert active["dynamic_shared_memory_type"] == "posix"
    assert active["log_timezone"] == "Etc/UTC"


def test_parse_conf_handles_quotes_comments_and_missing_equals() -> None:
    text = "a = 'x''y # not a comment' # comment\nB 5\nc='back\\\\slash'\ninclude_dir 'conf.d'\n  # x = 1\n"
    assert pgdata.parse_conf(text) == {"a": "x'y # not a comment", "b": "5", "c": "back\\slash"}


def test_parse_args_finds_every_form() -> None:
    args = ["-c", "shared_buffers=1GB", "-cwork_mem=4MB", "--max-connections=50", "-p", "5433"]
    assert pgdata.parse_args(args) == {"shared_buffers": "1GB", "work_mem": "4MB", "max_connections": "50"}


def test_overrides_name_the_winning_source() -> None:
    sources = [
        UserSource("postgresql.conf", {"work_mem": "1MB"}),
        UserSource("/etc/postgresql/conf.d/a.conf", {"work_mem": "2MB", "shared_buffers": "1GB"}),
        UserSource("ALTER SYSTEM (postgresql.auto.conf)", {"shared_buffers": "2GB"}),
        UserSource("-c argument", {}),
    ]
    user = plan.user_values(sources)
    assert user["work_mem"] == ("2MB", "/etc/postgresql/conf.d/a.conf")
    assert user["shared_buffers"] == ("2GB", "ALTER SYSTEM (postgresql.auto.conf)")
    found = plan.overrides({"shared_buffers": "512MB", "work_mem": "4MB", "max_connections": "100"}, user)
    assert [o.message() for o in found] == [
        "shared_buffers=2GB set by ALTER SYSTEM (postgresql.auto.conf) overrides the computed 512MB",
        "work_mem=2MB set by /etc/postgresql/conf.d/a.conf overrides the computed 4MB",
    ]


def test_facts_changed_line_only_when_something_changed() -> None:
    assert plan.facts_changed({}, 1024, 2) is None
    assert plan.facts_changed({"memory_mb": 1024, "cpus": 2}, 1024, 2) is None
    line = plan.facts_changed({"memory_mb": 1024, "cpus": 2}, 2048, 4)
    assert line == (
        "resources changed since the last start: memory 1024MB -> 2048MB, CPUs 2 -> 4; settings recomputed"
    )


def test_password_plan_lists_changed_and_new_roles() -> None:
    todo = plan.password_plan(
        {"postgres": "a", "pgbouncer_auth": "b", "postgres_exporter": "c"},
        {"postgres": "a", "postgres_exporter": "old"},
    )
    assert set(todo.roles) == {"pgbouncer_auth", "postgres_exporter"}
    assert todo.create_pgbouncer_objects
    assert not todo.create_monitor  # it existed before: only its password changes
    assert not plan.password_plan({"postgres": "a"}, {"postgres": "a"}).needed


def test_validation_fingerprint_changes_with_any_input() -> None:
    gen = plan.GeneratedFiles({"conf.d/10-auto-config.conf": "shared_buffers = 256MB\n"})
    src = [UserSource("postgresql.conf", {}, b"x = 1\n")]
    base = plan.validation_fingerprint(gen, src, "bin:1")
    assert base == plan.validation_fingerprint(gen, src, "bin:1")
    assert base != plan.validation_fingerprint(gen, [UserSource("postgresql.conf", {}, b"x = 2\n")], "bin:1")
    assert base != plan.validation_fingerprint(gen, src, "bin:2")
    gen2 = plan.GeneratedFiles({"conf.d/10-auto-config.conf": "shared_buffers = 512MB\n"})
    assert base != plan.validation_fingerprint(gen2, src, "bin:1")


def test_mounted_conf_includes_the_directory_only_when_it_exists() -> None:
    assert "include_dir = '/etc/postgresql/conf.d'" in plan.mounted_conf("/etc/postgresql/conf.d", True)
    assert "include_dir" not in plan.mounted_conf("/etc/postgresql/conf.d", False)
    assert "include_dir = '/it''s'" in plan.mounted_conf("/it's", True)


def test_inspect_tells_empty_foreign_leftover_and_initialised(tmp_path: Path) -> None:
    d = tmp_path / "data"
    assert not pgdata.inspect(d).exists
    d.mkdir()
    (d / "lost+found").mkdir()
    state = pgdata.inspect(d)
    assert state.exists
    assert not state.initialised
    assert state.foreign_entries == ()
    (d / pgdata.STAGING).mkdir()
    assert pgdata.inspect(d).staging_leftover
    (d / "stray.txt").write_text("x")
    assert pgdata.inspect(d).foreign_entries == ("stray.txt",)
    (d / "PG_VERSION").write_text("15\n")
    (d / "postgresql.conf").write_text(f"{pgdata.INCLUDE_LINE}\n")
    state = pgdata.inspect(d)
    assert state.initialised
    assert state.pg_major == 15
    assert state.has_include
