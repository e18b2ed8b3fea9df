"""Argument handling of scripts/tools/*.sh, run for real with bash.

The backup and restore scripts must reject bad arguments before they ever call docker: a stand-in
`docker` on PATH records every call, and these tests assert it was never called. (Their real work is
tested against real containers in tests/compose/test_backup.py.) generate-ssl-certs.sh is run for real
with openssl.
"""

from __future__ import annotations

import gzip
import os
import stat
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

TOOLS = Path(__file__).resolve().parents[2] / "scripts/tools"


@pytest.fixture
def fake_docker(tmp_path: Path) -> Path:
    """A `docker` that records its arguments and fails; returns the log file."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    calls = tmp_path / "docker-calls"
    script = bindir / "docker"
    script.write_text(f'#!/bin/sh\necho "$@" >> {calls}\nexit 1\n')
    script.chmod(0o755)
    return calls


def run(tool: str, *args: str, tmp_path: Path, extra_env: dict[str, str] | None = None
        ) -> subprocess.CompletedProcess[str]:
    env = {"PATH": f"{tmp_path / 'bin'}:/usr/bin:/bin", "HOME": str(tmp_path), **(extra_env or {})}
    return subprocess.run(["bash", str(TOOLS / tool), *args], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=60, check=False)


@pytest.mark.parametrize("tool", ["backup-postgres.sh", "restore-postgres.sh"])
@pytest.mark.parametrize("args", [(), ("only-container",), ("c", "f", "db", "extra")])
def test_wrong_argument_count_prints_usage_and_exits_2(
    tool: str, args: tuple[str, ...], tmp_path: Path, fake_docker: Path
) -> None:
    result = run(tool, *args, tmp_path=tmp_path)
    assert result.returncode == 2
    assert f"got {len(args)} argument(s)" in result.stderr
    assert f"Usage: {tool} CONTAINER" in result.stderr
    assert not fake_docker.exists()


@pytest.mark.parametrize("tool", ["backup-postgres.sh", "restore-postgres.sh", "generate-ssl-certs.sh"])
def test_help_goes_to_stdout_with_status_0(tool: str, tmp_path: Path) -> None:
    result = run(tool, "--help", tmp_path=tmp_path)
    assert result.returncode == 0
    assert result.stdout.startswith(f"Usage: {tool} ")
    assert "Exit status" in result.stdout


@pytest.mark.parametrize("tool", ["backup-postgres.sh", "restore-postgres.sh", "generate-ssl-certs.sh"])
def test_unknown_option_is_a_usage_error(tool: str, tmp_path: Path, fake_docker: Path) -> None:
    result = run(tool, "--force", "x", "y", tmp_path=tmp_path)
    assert result.returncode == 2
    assert "unknown option --force" in result.stderr
    assert not fake_docker.exists()


def test_backup_refuses_an_existing_output_without_touching_it(tmp_path: Path, fake_docker: Path) -> None:
    existing = tmp_path / "backup.sql.gz"
    existing.write_bytes(b"precious")
    result = run("backup-postgres.sh", "postgres-primary", "backup.sql.gz", tmp_path=tmp_path)
    assert result.returncode == 3
    assert "backup.sql.gz already exists; refusing to overwrite it" in result.stderr
    assert existing.read_bytes() == b"precious"
    assert not fake_docker.exists()


def test_backup_refuses_a_dangling_symlink_as_output(tmp_path: Path, fake_docker: Path) -> None:
    (tmp_path / "link.sql.gz").symlink_to(tmp_path / "nowhere")
    result = run("backup-postgres.sh", "c", "link.sql.gz", tmp_path=tmp_path)
    assert result.returncode == 3
    assert not (tmp_path / "nowhere").exists()


def test_backup_into_a_missing_directory_is_a_usage_error(tmp_path: Path, fake_docker: Path) -> None:
    result = run("backup-postgres.sh", "c", "no/such/dir/b.sql.gz", tmp_path=tmp_path)
    assert result.returncode == 2
    assert "directory no/such/dir does not exist" in result.stderr
    assert not fake_docker.exists()


def test_backup_of_an_unknown_container_says_so_and_leaves_nothing(tmp_path: Path, fake_docker: Path) -> None:
    result = run("backup-postgres.sh", "nope", "b.sql.gz", tmp_path=tmp_path)
    assert result.returncode == 2
    assert "no container named nope" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bin", "docker-calls"]


@pytest.mark.parametrize(
    ("content", "message"), [(None, "is not a file"), (b"not gzip", "not a valid gzip file")]
)
def test_restore_checks_its_input_before_calling_docker(
    content: bytes | None, message: str, tmp_path: Path, fake_docker: Path
) -> None:
    if content is not None:
        (tmp_path / "in.sql.gz").write_bytes(content)
    result = run("restore-postgres.sh", "c", "in.sql.gz", tmp_path=tmp_path)
    assert result.returncode == 2
    assert message in result.stderr
    assert not fake_docker.exists()


def test_restore_with_empty_database_name_is_refused(tmp_path: Path, fake_docker: Path) -> None:
    (tmp_path / "in.sql.gz").write_bytes(gzip.compress(b"select 1;\n"))
    result = run("restore-postgres.sh", "c", "in.sql.gz", "", tmp_path=tmp_path)
    assert result.returncode == 2
    assert "DATABASE is empty" in result.stderr
    assert not fake_docker.exists()


# --- generate-ssl-certs.sh (real openssl) ----------------------------------------------------------------

def openssl(*args: str) -> str:
    return subprocess.run(["openssl", *args], capture_output=True, text=True, check=True, timeout=30).stdout


def verified(certs: Path) -> bool:
    out = openssl("verify", "-CAfile", str(certs / "ca.crt"), str(certs / "server.crt"))
    return out.strip().endswith("OK")


def test_certificates_chain_to_the_ca_and_cover_the_service_names(tmp_path: Path) -> None:
    result = run("generate-ssl-certs.sh", "certs", "db.example.internal", "10.20.30.40", tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    certs = tmp_path / "certs"
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in certs.iterdir()}
    assert modes == {"ca.crt": 0o644, "ca.key": 0o600, "server.crt": 0o644, "server.key": 0o600}
    assert stat.S_IMODE(certs.stat().st_mode) == 0o755
    assert verified(certs)
    san = openssl("x509", "-in", str(certs / "server.crt"), "-noout", "-ext", "subjectAltName")
    for name in ("DNS:postgres", "DNS:pgbouncer", "DNS:postgres-primary", "DNS:postgres-replica",
                 "DNS:postgres-single", "DNS:localhost", "IP Address:127.0.0.1", "DNS:db.example.internal",
                 "IP Address:10.20.30.40"):
        assert name in {entry.strip() for entry in san.split("\n", 1)[1].split(",")}, name
    usage = openssl("x509", "-in", str(certs / "server.crt"), "-noout", "-ext", "extendedKeyUsage")
    assert "TLS Web Server Authentication" in usage
    # The key really belongs to the certificate.
    assert openssl("pkey", "-in", str(certs / "server.key"), "-pubout") == openssl(
        "x509", "-in", str(certs / "server.crt"), "-noout", "-pubkey")


def test_existing_server_files_are_never_overwritten(tmp_path: Path) -> None:
    assert run("generate-ssl-certs.sh", "certs", tmp_path=tmp_path).returncode == 0
    before = {p.name: p.read_bytes() for p in (tmp_path / "certs").iterdir()}
    result = run("generate-ssl-certs.sh", "certs", tmp_path=tmp_path)
    assert result.returncode == 3
    assert "server.crt already exists; refusing to overwrite it" in result.stderr
    assert {p.name: p.read_bytes() for p in (tmp_path / "certs").iterdir()} == before


def test_renewal_keeps_the_ca(tmp_path: Path) -> None:
    assert run("generate-ssl-certs.sh", "certs", tmp_path=tmp_path).returncode == 0
    certs = tmp_path / "certs"
    ca_before = (certs / "ca.crt").read_bytes()
    old_cert = (certs / "server.crt").read_bytes()
    os.unlink(certs / "server.crt")
    os.unlink(certs / "server.key")
    result = run("generate-ssl-certs.sh", "certs", tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "reusing the CA" in result.stderr
    assert (certs / "ca.crt").read_bytes() == ca_before
    assert (certs / "server.crt").read_bytes() != old_cert
    assert verified(certs)


@pytest.mark.parametrize("name", ["bad name", "under_score.example", "-lead.example", "a/b"])
def test_bad_extra_names_are_refused_before_anything_is_written(name: str, tmp_path: Path) -> None:
    result = run("generate-ssl-certs.sh", "certs", name, tmp_path=tmp_path)
    assert result.returncode == 2
    assert f"extra name '{name}'" in result.stderr
    assert not (tmp_path / "certs").exists()


def test_a_lone_ca_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "certs").mkdir()
    (tmp_path / "certs/ca.crt").write_text("x")
    result = run("generate-ssl-certs.sh", "certs", tmp_path=tmp_path)
    assert result.returncode == 3
    assert "only one of ca.crt / ca.key" in result.stderr
    assert sorted(p.name for p in (tmp_path / "certs").iterdir()) == ["ca.crt"]
