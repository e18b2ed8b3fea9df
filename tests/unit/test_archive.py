"""POSTGRES_ARCHIVE=pgbackrest: settings, postgresql.conf values, the pgbackrest.conf writer, install."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from entrypoint import archive
from entrypoint.apply import archive as apply_archive
from entrypoint.detect import archive as detect_archive
from entrypoint.errors import ConfigError
from entrypoint.render import conf, pgbackrest_conf

pytestmark = pytest.mark.unit


def test_archiving_is_off_by_default() -> None:
    settings = archive.parse({})
    assert not settings.enabled
    assert archive.conf(settings) == {}


def test_pgbackrest_turns_on_archive_mode_with_archive_push() -> None:
    settings = archive.parse({"POSTGRES_ARCHIVE": "pgbackrest"})
    assert archive.conf(settings) == {
        "archive_mode": "on",
        "archive_command": "pgbackrest --stanza=main archive-push %p",
        "archive_timeout": "60",
    }
    rendered = conf.render(archive.conf(settings))
    assert "archive_command = 'pgbackrest --stanza=main archive-push %p'" in rendered


def test_stanza_repo_and_timeout_come_from_the_environment() -> None:
    settings = archive.parse({
        "POSTGRES_ARCHIVE": "PGBACKREST", "PGBACKREST_STANZA": "prod-1",
        "PGBACKREST_REPO1_PATH": "/backup/repo", "POSTGRES_ARCHIVE_TIMEOUT": "0",
    })
    assert (settings.stanza, settings.repo_path, settings.archive_timeout) == ("prod-1", "/backup/repo", 0)
    assert archive.archive_command(settings) == "pgbackrest --stanza=prod-1 archive-push %p"


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"POSTGRES_ARCHIVE": "wal-g"}, "POSTGRES_ARCHIVE='wal-g' is not valid; use one of: off, pgbackrest"),
        ({"PGBACKREST_STANZA": "main; rm -rf /"}, "PGBACKREST_STANZA="),
        ({"PGBACKREST_STANZA": "-x"}, "PGBACKREST_STANZA="),
        ({"PGBACKREST_REPO1_PATH": "relative/repo"}, "PGBACKREST_REPO1_PATH="),
        ({"POSTGRES_ARCHIVE_TIMEOUT": "-5"}, "POSTGRES_ARCHIVE_TIMEOUT="),
        ({"POSTGRES_ARCHIVE_TIMEOUT": "86401"}, "out of range"),
    ],
)
def test_bad_archive_settings_are_one_clear_error(env: dict[str, str], fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        archive.parse(env)
    assert fragment in str(info.value)


def test_generated_pgbackrest_conf() -> None:
    settings = archive.parse({"POSTGRES_ARCHIVE": "pgbackrest"})
    text = archive.pgbackrest_config(
        settings, pgdata="/var/lib/postgresql/data", socket_dir="/var/run/postgresql", port=5432,
        superuser="admin",
    )
    assert pgbackrest_conf.is_generated(text)
    assert text.endswith(
        "[global]\n"
        "repo1-path=/var/lib/pgbackrest\n"
        "repo1-retention-full=2\n"
        "repo1-retention-diff=6\n"
        "start-fast=y\n"
        "log-level-console=info\n"
        "log-level-file=detail\n"
        "log-path=/var/log/pgbackrest\n"
        "spool-path=/var/spool/pgbackrest\n"
        "\n"
        "[main]\n"
        "pg1-path=/var/lib/postgresql/data\n"
        "pg1-socket-path=/var/run/postgresql\n"
        "pg1-port=5432\n"
        "pg1-user=admin\n"
    )


def pgbackrest_read(text: str) -> dict[str, dict[str, str]]:
    """pgBackRest's reading of an ini file: sections, key=value split at the first '=', both trimmed."""
    sections: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for raw in text.split("\n"):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            current = sections.setdefault(line[1:-1], {})
            continue
        assert current is not None
        key, _, value = line.partition("=")
        current[key.strip()] = value.strip()
    return sections


@given(st.text(min_size=1).filter(lambda s: s == s.strip() and not any(c in s for c in "\0\n\r")))
def test_values_round_trip_through_pgbackrests_reading(value: str) -> None:
    text = pgbackrest_conf.render([("main", [("pg1-path", value)])])
    assert pgbackrest_read(text) == {"main": {"pg1-path": value}}


@pytest.mark.parametrize("value", ["a\nrepo1-path=/evil", " padded", "trailing ", "", "nul\0"])
def test_values_it_cannot_represent_are_refused(value: str) -> None:
    with pytest.raises(ValueError, match=r"pgbackrest\.conf value"):
        pgbackrest_conf.render([("main", [("pg1-path", value)])])


def test_a_file_without_the_marker_is_not_generated() -> None:
    assert not pgbackrest_conf.is_generated("[global]\nrepo1-path=/x\n")
    assert not pgbackrest_conf.is_generated("")


# --- apply ----------------------------------------------------------------------------------------------

def _install(tmp_path: Path, existing_text: str | None) -> tuple[bool, Path]:
    config = tmp_path / "etc/pgbackrest/pgbackrest.conf"
    if existing_text is not None:
        config.parent.mkdir(parents=True)
        config.write_text(existing_text)
    env = {"POSTGRES_ARCHIVE": "pgbackrest", "PGBACKREST_REPO1_PATH": str(tmp_path / "repo")}
    settings = archive.parse(env)
    text = archive.pgbackrest_config(settings, pgdata="/d", socket_dir="/s", port=5432, superuser="postgres")
    written = apply_archive.install(
        settings, text, detect_archive.existing_config(config), config_path=config,
        uid=65534, gid=65534, dirs=(tmp_path / "log", tmp_path / "spool"),
    )
    return written, config


def test_install_writes_the_config_and_makes_the_directories(tmp_path: Path) -> None:
    written, config = _install(tmp_path, None)
    assert written
    assert pgbackrest_conf.is_generated(config.read_text())
    assert stat.S_IMODE(config.stat().st_mode) == 0o644
    for name in ("repo", "log", "spool"):
        st_ = (tmp_path / name).stat()
        assert (st_.st_uid, stat.S_IMODE(st_.st_mode)) == (65534, 0o750), name


def test_install_rewrites_its_own_file(tmp_path: Path) -> None:
    old = pgbackrest_conf.render([("global", [("repo1-path", "/old")])], header=[pgbackrest_conf.MARKER])
    written, config = _install(tmp_path, old)
    assert written
    assert f"repo1-path={tmp_path / 'repo'}" in config.read_text()


def test_install_never_touches_a_users_file(tmp_path: Path) -> None:
    mine = "[global]\nrepo1-path=/my/repo\n"
    written, config = _install(tmp_path, mine)
    assert not written
    assert config.read_text() == mine


def test_install_does_nothing_when_archiving_is_off(tmp_path: Path) -> None:
    config = tmp_path / "pgbackrest.conf"
    assert not apply_archive.install(archive.parse({}), "x", None, config_path=config, dirs=())
    assert not config.exists()


def test_a_fresh_root_owned_repository_volume_is_handed_to_the_server_user(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir(mode=0o755)  # what Docker makes for a new volume: root, empty
    _install(tmp_path, None)
    assert repo.stat().st_uid == 65534
    full = tmp_path / "full"
    full.mkdir()
    (full / "backup.info").write_text("x")
    settings = archive.parse({"POSTGRES_ARCHIVE": "pgbackrest", "PGBACKREST_REPO1_PATH": str(full)})
    apply_archive.install(settings, "x", "not generated", config_path=tmp_path / "c", uid=65534, dirs=())
    assert full.stat().st_uid == 0  # a directory with content keeps its owner


def test_the_example_configuration_matches_what_the_entrypoint_generates() -> None:
    """examples/backup/pgbackrest.conf replaces the generated file when mounted: it must not drift."""
    example = Path(__file__).resolve().parents[2] / "examples/backup/pgbackrest.conf"
    mounted = pgbackrest_read(example.read_text())
    assert not pgbackrest_conf.is_generated(example.read_text())  # so the entrypoint leaves it alone
    generated = pgbackrest_read(archive.pgbackrest_config(
        archive.parse({"POSTGRES_ARCHIVE": "pgbackrest"}), pgdata="/var/lib/postgresql/data",
        socket_dir="/var/run/postgresql", port=5432, superuser="postgres",
    ))
    assert set(mounted) == set(generated) == {"global", "main"}
    for section, options in generated.items():
        for key, value in options.items():
            assert mounted[section].get(key) == value, f"[{section}] {key}"
