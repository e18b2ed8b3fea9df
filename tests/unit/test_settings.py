"""Server settings from the environment: defaults, every variable, *_FILE secrets, one clear error each."""

from __future__ import annotations

from pathlib import Path

import pytest

from entrypoint import settings
from entrypoint.errors import ConfigError

pytestmark = pytest.mark.unit


def test_defaults() -> None:
    s = settings.parse({})
    assert s.role == "single"
    assert s.pgdata == Path("/var/lib/postgresql/data")
    assert (s.user, s.db, s.port) == ("postgres", "postgres", 5432)
    assert s.password is None
    assert s.host_auth_method == "scram-sha-256"
    assert s.hba_cidrs == ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")
    assert s.replication_user == "replicator"
    assert s.slot_name == "replica1_slot"
    assert not s.replication_enabled
    assert s.listen_addresses == "*"
    assert s.preload_override is None
    assert s.autoconfig.enabled


def test_db_defaults_to_user_and_values_are_read() -> None:
    s = settings.parse(
        {
            "POSTGRES_USER": "admin",
            "POSTGRES_PASSWORD": "pw",
            "PGPORT": "5433",
            "POSTGRES_ROLE": "PRIMARY",
            "PG_REPLICATION_PASSWORD": "rp",
            "POSTGRES_HBA_CIDRS": "10.1.0.0/16, 192.168.5.7/32",
            "POSTGRES_INITDB_ARGS": "--locale=en_US.UTF-8 --lc-collate 'C'",
            "POSTGRES_SHARED_PRELOAD_LIBRARIES": "",
        }
    )
    assert (s.user, s.db, s.password, s.port, s.role) == ("admin", "admin", "pw", 5433, "primary")
    assert s.replication_enabled
    assert s.hba_cidrs == ("10.1.0.0/16", "192.168.5.7/32")
    assert s.initdb_args == ("--locale=en_US.UTF-8", "--lc-collate", "C")
    assert s.preload_override is None  # empty (compose's unset .env value) means the manifest default
    assert s.secrets() == {"admin": "pw", "replicator": "rp"}


def test_cidrs_none_means_loopback_only() -> None:
    assert settings.parse({"POSTGRES_HBA_CIDRS": "none"}).hba_cidrs == ()


def test_secret_from_file_strips_exactly_one_newline(tmp_path: Path) -> None:
    f = tmp_path / "pw"
    f.write_text("p a:s\\s'\"# é\n")
    assert settings.parse({"POSTGRES_PASSWORD_FILE": str(f)}).password == "p a:s\\s'\"# é"
    f.write_text("two\n\n")  # the second newline is part of the value: refused, not silently dropped
    with pytest.raises(ConfigError, match="line breaks"):
        settings.parse({"POSTGRES_PASSWORD_FILE": str(f)})


def test_secret_file_exact_content(tmp_path: Path) -> None:
    f = tmp_path / "pw"
    f.write_text("secret\n")
    assert settings.parse({"PGBOUNCER_AUTH_PASS_FILE": str(f)}).pgbouncer_auth_password == "secret"


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({"POSTGRES_ROLE": "master"}, "POSTGRES_ROLE"),
        ({"POSTGRES_USER": "a b"}, "POSTGRES_USER"),
        ({"POSTGRES_USER": "pg_x"}, "reserved"),
        ({"POSTGRES_DB": "x" * 64}, "POSTGRES_DB"),
        ({"POSTGRES_HOST_AUTH_METHOD": "password"}, "POSTGRES_HOST_AUTH_METHOD"),
        ({"PGDATA": "relative"}, "PGDATA"),
        ({"PGDATA": "/"}, "PGDATA"),
        ({"PGPORT": "0"}, "PGPORT"),
        ({"POSTGRES_ROLE": "primary"}, "PG_REPLICATION_PASSWORD"),
        ({"PG_REPLICATION_USER": "postgres"}, "PG_REPLICATION_USER"),
        ({"REPLICATION_SLOT_NAME": "UPPER"}, "REPLICATION_SLOT_NAME"),
        ({"POSTGRES_HBA_CIDRS": "10.0.0.0/8,banana"}, "POSTGRES_HBA_CIDRS"),
        ({"POSTGRES_INITDB_ARGS": "-U other"}, "POSTGRES_INITDB_ARGS"),
        ({"POSTGRES_INITDB_ARGS": "-Dx"}, "POSTGRES_INITDB_ARGS"),
        ({"POSTGRES_INITDB_ARGS": "--waldir=/x"}, "POSTGRES_INITDB_ARGS"),
        ({"POSTGRES_INITDB_ARGS": "'open"}, "POSTGRES_INITDB_ARGS"),
        ({"POSTGRES_INITDB_WALDIR": "rel"}, "POSTGRES_INITDB_WALDIR"),
        ({"POSTGRES_PASSWORD": "a\rb"}, "POSTGRES_PASSWORD"),
        ({"POSTGRES_PASSWORD": "x", "POSTGRES_PASSWORD_FILE": "/x"}, "both"),
        ({"PGBOUNCER_STATS_PASSWORD_FILE": "/nonexistent"}, "PGBOUNCER_STATS_PASSWORD_FILE"),
        ({"AZA_PG_LISTEN_ADDRESSES": "a;b"}, "AZA_PG_LISTEN_ADDRESSES"),
        ({"POSTGRES_MEMORY": "many"}, "POSTGRES_MEMORY"),
    ],
)
def test_bad_values_raise_one_line_naming_the_variable(env: dict[str, str], words: str) -> None:
    with pytest.raises(ConfigError) as info:
        settings.parse(env)
    assert words in str(info.value)
    assert "\n" not in str(info.value)


def test_first_boot_needs_a_password_unless_trust() -> None:
    with pytest.raises(ConfigError, match="POSTGRES_PASSWORD"):
        settings.require_first_boot_password(settings.parse({}))
    settings.require_first_boot_password(settings.parse({"POSTGRES_HOST_AUTH_METHOD": "trust"}))
    settings.require_first_boot_password(settings.parse({"POSTGRES_PASSWORD": "x"}))


def test_scrubbed_env_drops_every_secret_and_secret_file() -> None:
    env = {
        "POSTGRES_PASSWORD": "a",
        "PG_REPLICATION_PASSWORD_FILE": "/f",
        "PGBOUNCER_AUTH_PASS": "b",
        "POSTGRES_EXPORTER_PASSWORD": "c",
        "PGBOUNCER_STATS_PASSWORD": "d",
        "PGDATA": "/d",
        "PGPORT": "1",
    }
    assert settings.scrubbed_env(env) == {"PGDATA": "/d", "PGPORT": "1"}


def test_preload_none_means_no_preloads() -> None:
    assert settings.parse({"POSTGRES_SHARED_PRELOAD_LIBRARIES": "none"}).preload_override == ""
    override = settings.parse({"POSTGRES_SHARED_PRELOAD_LIBRARIES": "auto_explain"}).preload_override
    assert override == "auto_explain"
