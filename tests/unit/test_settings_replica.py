"""Replica settings: defaults, every bad input as one ConfigError naming the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from entrypoint.errors import ConfigError
from entrypoint.flows import replica
from entrypoint.settings_replica import parse, synchronous_standby_names

pytestmark = pytest.mark.unit

BASE = {"PRIMARY_HOST": "postgres-primary", "PG_REPLICATION_PASSWORD": "s3cret"}


def test_defaults() -> None:
    s = parse(BASE)
    assert (s.primary_host, s.primary_port, s.user, s.slot_name, s.application_name) == (
        "postgres-primary", 5432, "replicator", "replica1_slot", "replica1")
    assert s.wait_timeout == 300
    assert s.max_rate is None


def test_explicit_values() -> None:
    s = parse({**BASE, "PRIMARY_HOST": "10.0.0.5", "PRIMARY_PORT": "6543", "PG_REPLICATION_USER": "repl",
               "REPLICATION_SLOT_NAME": "eu_west_2", "REPLICA_APPLICATION_NAME": "replica-b",
               "PRIMARY_WAIT_TIMEOUT": "15", "REPLICA_CLONE_MAX_RATE": "50M"})
    assert (s.primary_host, s.primary_port, s.user, s.slot_name, s.application_name) == (
        "10.0.0.5", 6543, "repl", "eu_west_2", "replica-b")
    assert s.wait_timeout == 15
    assert s.max_rate == "51200k"


def test_ipv6_host_is_accepted() -> None:
    assert parse({**BASE, "PRIMARY_HOST": "fd00::5"}).primary_host == "fd00::5"


def test_password_from_file_strips_one_newline(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("a:b\\c 'd\" #$\n")
    s = parse({"PRIMARY_HOST": "p", "PG_REPLICATION_PASSWORD_FILE": str(secret)})
    assert s.password == "a:b\\c 'd\" #$"
    secret.write_text("pw\n\n")  # the second newline belongs to the password, which a .pgpass cannot hold
    with pytest.raises(ConfigError, match="line break"):
        parse({"PRIMARY_HOST": "p", "PG_REPLICATION_PASSWORD_FILE": str(secret)})


def test_password_never_in_repr() -> None:
    assert "s3cret" not in repr(parse(BASE))


@pytest.mark.parametrize(("env", "names"), [
    ({"PG_REPLICATION_PASSWORD": "x"}, "PRIMARY_HOST is required"),
    ({**BASE, "PRIMARY_HOST": "bad host"}, "PRIMARY_HOST="),
    ({**BASE, "PRIMARY_HOST": "host;rm"}, "PRIMARY_HOST="),
    ({**BASE, "PRIMARY_HOST": "-oops"}, "PRIMARY_HOST="),
    ({**BASE, "PRIMARY_PORT": "0"}, "PRIMARY_PORT"),
    ({**BASE, "PRIMARY_PORT": "65536"}, "PRIMARY_PORT"),
    ({**BASE, "PRIMARY_PORT": "54a"}, "PRIMARY_PORT"),
    ({"PRIMARY_HOST": "p"}, "PG_REPLICATION_PASSWORD"),
    ({**BASE, "PG_REPLICATION_PASSWORD_FILE": "/nonexistent/pw"}, "both set"),
    ({"PRIMARY_HOST": "p", "PG_REPLICATION_PASSWORD_FILE": "/nonexistent/pw"},
     "PG_REPLICATION_PASSWORD_FILE"),
    ({**BASE, "PG_REPLICATION_PASSWORD": "two\nlines"}, "PG_REPLICATION_PASSWORD"),
    ({**BASE, "PG_REPLICATION_USER": "x" * 64}, "PG_REPLICATION_USER"),
    ({**BASE, "PG_REPLICATION_USER": "a\tb"}, "PG_REPLICATION_USER"),
    ({**BASE, "REPLICATION_SLOT_NAME": "Replica1"}, "REPLICATION_SLOT_NAME"),
    ({**BASE, "REPLICATION_SLOT_NAME": "slot-1"}, "REPLICATION_SLOT_NAME"),
    ({**BASE, "REPLICATION_SLOT_NAME": "s" * 64}, "REPLICATION_SLOT_NAME"),
    ({**BASE, "REPLICA_APPLICATION_NAME": "replica 1"}, "REPLICA_APPLICATION_NAME"),
    ({**BASE, "REPLICA_APPLICATION_NAME": "r'1"}, "REPLICA_APPLICATION_NAME"),
    ({**BASE, "PRIMARY_WAIT_TIMEOUT": "0"}, "PRIMARY_WAIT_TIMEOUT"),
    ({**BASE, "PRIMARY_WAIT_TIMEOUT": "ten"}, "PRIMARY_WAIT_TIMEOUT"),
    ({**BASE, "REPLICA_CLONE_MAX_RATE": "fast"}, "REPLICA_CLONE_MAX_RATE"),
    ({**BASE, "REPLICA_CLONE_MAX_RATE": "8k"}, "REPLICA_CLONE_MAX_RATE"),
    ({**BASE, "REPLICA_CLONE_MAX_RATE": "2048M"}, "REPLICA_CLONE_MAX_RATE"),
])
def test_bad_input_is_one_clear_error(env: dict[str, str], names: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse(env)
    message = str(err.value)
    assert names in message
    assert "\n" not in message
    assert "s3cret" not in message


def test_synchronous_standby_names_default_is_async() -> None:
    assert synchronous_standby_names({}) == ""
    assert replica.primary_config({}) == {"synchronous_standby_names": ""}


def test_synchronous_standby_names_passes_postgres_syntax_through() -> None:
    env = {"POSTGRES_SYNCHRONOUS_STANDBY_NAMES": " ANY 1 (replica1, \"replica 2\") "}
    assert replica.primary_config(env) == {"synchronous_standby_names": 'ANY 1 (replica1, "replica 2")'}


def test_synchronous_standby_names_refuses_control_characters() -> None:
    with pytest.raises(ConfigError, match="POSTGRES_SYNCHRONOUS_STANDBY_NAMES"):
        synchronous_standby_names({"POSTGRES_SYNCHRONOUS_STANDBY_NAMES": "a\nb"})


def test_standby_config_uses_a_passfile_and_escapes_the_conninfo() -> None:
    s = parse({**BASE, "PRIMARY_HOST": "db.example", "REPLICA_APPLICATION_NAME": "r-2"})
    config = replica.standby_config(s, Path("/data/it's here/aza-pg/replication.pgpass"), {})
    assert config["primary_conninfo"] == (
        "host='db.example' port='5432' user='replicator' "
        "passfile='/data/it\\'s here/aza-pg/replication.pgpass' application_name='r-2'"
    )
    assert "s3cret" not in "".join(config.values())
    assert config["primary_slot_name"] == "replica1_slot"
    assert config["hot_standby_feedback"] == "on"


def test_standby_config_keeps_non_computed_floors_at_least_postgres_defaults() -> None:
    s = parse(BASE)
    config = replica.standby_config(s, Path("/p"), {"max_wal_senders": 4, "max_prepared_transactions": 50,
                                                    "max_locks_per_transaction": 256, "max_connections": 500})
    assert config["max_wal_senders"] == "10"
    assert config["max_prepared_transactions"] == "50"
    assert config["max_locks_per_transaction"] == "256"
    assert "max_connections" not in config  # auto-config raises it (tune floors)


def test_check_floors_refuses_a_value_below_the_primary() -> None:
    floors = {"max_connections": 200, "max_worker_processes": 8}
    replica.check_floors(floors, {"max_connections": 200, "max_worker_processes": 16})
    with pytest.raises(ConfigError, match=r"max_connections=100 is below the primary's 200"):
        replica.check_floors(floors, {"max_connections": 100, "max_worker_processes": 8})
