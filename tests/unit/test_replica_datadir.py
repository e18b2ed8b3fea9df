"""A replica's data directory: a cluster, what an interrupted clone left, what is never ours."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from entrypoint.apply import basebackup
from entrypoint.detect import standby

pytestmark = pytest.mark.unit


def _touch(root: Path, *names: str) -> None:
    for name in names:
        path = root / name
        if name.endswith("/"):
            path.mkdir(parents=True)
            (path / "file").write_text("x")
        else:
            path.write_text("x")


def test_missing_directory(tmp_path: Path) -> None:
    state = standby.inspect(tmp_path / "nope")
    assert not state.exists
    assert not state.has_cluster
    assert state.leftovers == ()
    assert state.foreign == ()


def test_empty_volume_with_lost_and_found(tmp_path: Path) -> None:
    _touch(tmp_path, "lost+found/")
    state = standby.inspect(tmp_path)
    assert not state.has_cluster
    assert state.leftovers == ()
    assert state.foreign == ()


def test_entrypoint_directory_made_before_the_clone_is_not_foreign(tmp_path: Path) -> None:
    _touch(tmp_path, "aza-pg/")
    state = standby.inspect(tmp_path)
    assert state.foreign == ()
    assert state.leftovers == ()


def test_standby_cluster(tmp_path: Path) -> None:
    _touch(tmp_path, "PG_VERSION", "base/", "standby.signal")
    state = standby.inspect(tmp_path)
    assert state.has_cluster
    assert state.standby_signal
    assert state.leftovers == ()


def test_promoted_cluster_has_no_standby_signal(tmp_path: Path) -> None:
    _touch(tmp_path, "PG_VERSION", "base/")
    state = standby.inspect(tmp_path)
    assert state.has_cluster
    assert not state.standby_signal


def test_killed_pg_basebackup_leaves_only_scratch_names(tmp_path: Path) -> None:
    _touch(tmp_path, ".aza-pg-clone/", ".aza-pg-clone.pgpass")
    state = standby.inspect(tmp_path)
    assert not state.has_cluster
    assert set(state.leftovers) == {".aza-pg-clone", ".aza-pg-clone.pgpass"}
    assert state.foreign == ()


def test_interrupted_move_lists_exactly_the_moved_names(tmp_path: Path) -> None:
    _touch(tmp_path, "base/", "global/", ".aza-pg-clone/", "my-notes.txt")
    (tmp_path / standby.MOVE_LIST).write_text(json.dumps(["base", "global", "pg_wal", "PG_VERSION"]))
    state = standby.inspect(tmp_path)
    assert not state.has_cluster
    assert set(state.leftovers) == {"base", "global", ".aza-pg-clone", standby.MOVE_LIST}
    assert state.foreign == ("my-notes.txt",)


def test_move_list_cannot_point_outside_pgdata(tmp_path: Path) -> None:
    data = tmp_path / "data"
    _touch(tmp_path, "precious/")
    data.mkdir()
    (data / standby.MOVE_LIST).write_text(json.dumps(["../precious", "..", "/etc", "base"]))
    state = standby.inspect(data)
    assert state.leftovers == (standby.MOVE_LIST,)


def test_foreign_files_without_a_cluster_are_reported_not_claimed(tmp_path: Path) -> None:
    _touch(tmp_path, "dump.sql", "base/")
    state = standby.inspect(tmp_path)
    assert state.foreign == ("base", "dump.sql")
    assert state.leftovers == ()


def test_cluster_with_scratch_left_after_the_last_rename(tmp_path: Path) -> None:
    _touch(tmp_path, "PG_VERSION", "base/", "standby.signal", ".aza-pg-clone/")
    (tmp_path / standby.MOVE_LIST).write_text(json.dumps(["base", "PG_VERSION"]))
    state = standby.inspect(tmp_path)
    assert state.has_cluster
    assert set(state.leftovers) == {".aza-pg-clone", standby.MOVE_LIST}


def test_remove_leftovers_deletes_only_what_it_is_given(tmp_path: Path) -> None:
    _touch(tmp_path, "base/", ".aza-pg-clone/", "my-notes.txt")
    (tmp_path / standby.MOVE_LIST).write_text(json.dumps(["base"]))
    state = standby.inspect(tmp_path)
    basebackup.remove_leftovers(tmp_path, state.leftovers)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["my-notes.txt"]


def test_postmaster_address(tmp_path: Path) -> None:
    (tmp_path / "postmaster.pid").write_text(
        "4242\n/var/lib/postgresql/data\n1764748000\n5433\n/var/run/postgresql\n*\n  1234 5678\nready   \n")
    address = standby.postmaster_address(tmp_path)
    assert address is not None
    assert (address.pid, address.port, address.socket_dir) == (4242, 5433, "/var/run/postgresql")
    assert standby.postmaster_address(tmp_path / "missing") is None


def test_move_into_place_puts_every_entry_in_pgdata_and_leaves_no_scratch(tmp_path: Path) -> None:
    pgdata = tmp_path / "data"
    work = pgdata / standby.CLONE_DIR
    work.mkdir(parents=True)
    _touch(work, "PG_VERSION", "base/", "global/", "pg_wal/", "standby.signal", "postgresql.conf")
    _touch(pgdata, "aza-pg/")  # made by the postgres flow before the clone; kept
    basebackup._move_into_place(work, pgdata)
    assert sorted(p.name for p in pgdata.iterdir()) == [
        "PG_VERSION", "aza-pg", "base", "global", "pg_wal", "postgresql.conf", "standby.signal"]
    state = standby.inspect(pgdata)
    assert state.has_cluster
    assert state.standby_signal
    assert state.leftovers == ()


def test_a_move_stopped_half_way_is_recognised_and_undone(tmp_path: Path) -> None:
    """Replays what _move_into_place does up to a crash after two renames, then the next start's cleanup."""
    pgdata = tmp_path / "data"
    work = pgdata / standby.CLONE_DIR
    work.mkdir(parents=True)
    _touch(work, "PG_VERSION", "base/", "global/", "pg_wal/")
    _touch(pgdata, "lost+found/")
    order = ["base", "global", "pg_wal", "PG_VERSION"]
    (pgdata / standby.MOVE_LIST).write_text(json.dumps(order))
    for name in order[:2]:
        (work / name).rename(pgdata / name)
    state = standby.inspect(pgdata)
    assert not state.has_cluster
    assert state.foreign == ()
    basebackup.remove_leftovers(pgdata, state.leftovers)
    assert sorted(p.name for p in pgdata.iterdir()) == ["lost+found"]
