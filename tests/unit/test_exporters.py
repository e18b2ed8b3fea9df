"""Exporter launch plans: connection strings without passwords, .pgpass text, scrubbed environments."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from entrypoint import exporters
from entrypoint.apply import exporters as apply
from entrypoint.errors import ConfigError, RuntimeFailure

pytestmark = pytest.mark.unit

NASTY = "p@ss w:rd/'\"\\%#?&=x"


def test_postgres_exporter_defaults_and_password_only_in_passfile(tmp_path: Path) -> None:
    env = {"POSTGRES_EXPORTER_PASSWORD": NASTY, "TMPDIR": str(tmp_path), "PATH": "/usr/bin",
           "POSTGRES_PASSWORD": "superuser-secret"}
    launch = exporters.postgres_exporter(env, [])
    assert launch.binary == "prometheus-postgres-exporter"
    assert launch.argv == (
        "--web.listen-address=:9187",
        "--extend.query-path=/etc/aza-pg/exporters/queries.yaml",
        "--config.file=/etc/aza-pg/exporters/postgres_exporter.yml",
    )
    assert launch.environ["DATA_SOURCE_NAME"] == (
        "host='postgres' port='5432' user='postgres_exporter' dbname='postgres' sslmode='disable' "
        "application_name='postgres_exporter'"
    )
    assert launch.passfile == tmp_path / "aza-pg-postgres-exporter" / "pgpass"
    assert launch.environ["PGPASSFILE"] == str(launch.passfile)
    # the exact .pgpass line: wildcards except the user; only \ and : escaped in the password
    assert launch.passfile_text == "*:*:*:postgres_exporter:p@ss w\\:rd/'\"\\\\%#?&=x\n"
    for secret in (NASTY, "superuser-secret"):
        assert secret not in " ".join(launch.argv)
        assert secret not in repr(dict(launch.environ))
        assert secret not in launch.summary
    assert "POSTGRES_EXPORTER_PASSWORD" not in launch.environ
    assert "POSTGRES_PASSWORD" not in launch.environ
    assert launch.environ["PATH"] == "/usr/bin"


def test_postgres_exporter_settings_from_env(tmp_path: Path) -> None:
    secret_file = tmp_path / "pw"
    secret_file.write_text("from-file\n")
    env = {
        "POSTGRES_EXPORTER_PASSWORD_FILE": str(secret_file), "POSTGRES_HOST": "db.internal",
        "POSTGRES_PORT": "6543", "POSTGRES_EXPORTER_SSLMODE": "verify-full",
        "POSTGRES_EXPORTER_SSL_ROOT_CERT": "/certs/ca.crt", "POSTGRES_EXPORTER_PORT": "9188",
        "TMPDIR": str(tmp_path),
    }
    launch = exporters.postgres_exporter(env, ["--log.level=debug"])
    assert launch.argv[0] == "--web.listen-address=:9188"
    assert launch.argv[-1] == "--log.level=debug"
    dsn = launch.environ["DATA_SOURCE_NAME"]
    assert "host='db.internal' port='6543'" in dsn
    assert "sslmode='verify-full'" in dsn
    assert "sslrootcert='/certs/ca.crt'" in dsn
    assert launch.passfile_text == "*:*:*:postgres_exporter:from-file\n"
    assert "POSTGRES_EXPORTER_PASSWORD_FILE" not in launch.environ


def test_user_flags_replace_ours_instead_of_repeating_them(tmp_path: Path) -> None:
    env = {"POSTGRES_EXPORTER_PASSWORD": "x", "TMPDIR": str(tmp_path)}
    user_args = ["--web.listen-address=127.0.0.1:9999", "--extend.query-path=/q.yaml"]
    launch = exporters.postgres_exporter(env, user_args)
    assert launch.argv == (
        "--config.file=/etc/aza-pg/exporters/postgres_exporter.yml",
        "--web.listen-address=127.0.0.1:9999",
        "--extend.query-path=/q.yaml",
    )
    assert "listening on 127.0.0.1:9999;" in launch.summary


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "POSTGRES_EXPORTER_PASSWORD (or POSTGRES_EXPORTER_PASSWORD_FILE) is not set"),
        ({"POSTGRES_EXPORTER_PASSWORD": "a\nb"}, "line break"),
        ({"POSTGRES_EXPORTER_PASSWORD": "x", "POSTGRES_EXPORTER_SSLMODE": "prefer"},
         "POSTGRES_EXPORTER_SSLMODE='prefer' is not valid; use one of: disable, require, verify-ca, "
         "verify-full"),
        ({"POSTGRES_EXPORTER_PASSWORD": "x", "POSTGRES_PORT": "0"}, "POSTGRES_PORT=0 is out of range"),
        ({"POSTGRES_EXPORTER_PASSWORD": "x", "DATA_SOURCE_NAME": "postgresql://u:p@h/db"},
         "DATA_SOURCE_NAME is set"),
        ({"POSTGRES_EXPORTER_PASSWORD": "x", "DATA_SOURCE_PASS": "p"}, "DATA_SOURCE_PASS is set"),
        ({"POSTGRES_EXPORTER_PASSWORD": "x", "POSTGRES_EXPORTER_PASSWORD_FILE": "/f"}, "both set"),
        ({"POSTGRES_EXPORTER_PASSWORD": "x", "POSTGRES_EXPORTER_USER": "*"}, "POSTGRES_EXPORTER_USER='*'"),
    ],
)
def test_postgres_exporter_bad_input(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        exporters.postgres_exporter(env, [])


def test_pgbouncer_exporter_plan(tmp_path: Path) -> None:
    env = {"PGBOUNCER_STATS_PASSWORD": NASTY, "TMPDIR": str(tmp_path), "PGPASSWORD": "leak",
           "PGBOUNCER_AUTH_PASS": "auth-secret", "PGBOUNCER_HOST": "pgbouncer-primary"}
    launch = exporters.pgbouncer_exporter(env, [])
    assert launch.binary == "prometheus-pgbouncer-exporter"
    assert launch.argv == (
        "--web.listen-address=:9127",
        "--pgBouncer.connectionString=host='pgbouncer-primary' port='6432' user='pgbouncer_stats' "
        "dbname='pgbouncer' sslmode='disable'",
        "--pgBouncer.pid-file=",
    )
    assert launch.passfile_text == "*:*:*:pgbouncer_stats:p@ss w\\:rd/'\"\\\\%#?&=x\n"
    assert launch.environ["PGPASSFILE"] == str(tmp_path / "aza-pg-pgbouncer-exporter" / "pgpass")
    for key in ("PGPASSWORD", "PGBOUNCER_AUTH_PASS", "PGBOUNCER_STATS_PASSWORD"):
        assert key not in launch.environ
    assert NASTY not in " ".join(launch.argv)


def test_pgbouncer_exporter_needs_the_stats_password() -> None:
    with pytest.raises(ConfigError, match="PGBOUNCER_STATS_PASSWORD"):
        exporters.pgbouncer_exporter({}, [])


def test_write_passfile_creates_private_dir_and_0600_file(tmp_path: Path) -> None:
    launch = exporters.pgbouncer_exporter({"PGBOUNCER_STATS_PASSWORD": "s:3", "TMPDIR": str(tmp_path)}, [])
    apply.write_passfile(launch)
    assert stat.S_IMODE(launch.passfile.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(launch.passfile.stat().st_mode) == 0o600
    assert launch.passfile.read_text() == "*:*:*:pgbouncer_stats:s\\:3\n"
    # a restart with a rotated password rewrites the file
    rotated = exporters.pgbouncer_exporter({"PGBOUNCER_STATS_PASSWORD": "new", "TMPDIR": str(tmp_path)}, [])
    apply.write_passfile(rotated)
    assert rotated.passfile.read_text() == "*:*:*:pgbouncer_stats:new\n"


def _launch(tmp_path: Path) -> exporters.Launch:
    return exporters.pgbouncer_exporter({"PGBOUNCER_STATS_PASSWORD": "s", "TMPDIR": str(tmp_path)}, [])


def test_write_passfile_tightens_our_own_loose_dir(tmp_path: Path) -> None:
    loose = tmp_path / "aza-pg-pgbouncer-exporter"
    loose.mkdir()
    os.chmod(loose, 0o750)  # noqa: S103 - the loose mode is the point of the test
    apply.write_passfile(_launch(tmp_path))
    assert stat.S_IMODE(loose.stat().st_mode) == 0o700


def test_write_passfile_refuses_a_symlinked_dir(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.mkdir()
    (tmp_path / "aza-pg-pgbouncer-exporter").symlink_to(target)
    with pytest.raises(RuntimeFailure, match="not a directory"):
        apply.write_passfile(_launch(tmp_path))
    assert list(target.iterdir()) == []


def test_write_passfile_refuses_someone_elses_dir(tmp_path: Path) -> None:
    # tests run as root (see the contract); chown to nobody makes a directory that is not ours
    other = tmp_path / "aza-pg-pgbouncer-exporter"
    other.mkdir(mode=0o700)
    os.chown(other, 65534, 65534)
    with pytest.raises(RuntimeFailure, match="belongs to uid 65534"):
        apply.write_passfile(_launch(tmp_path))
