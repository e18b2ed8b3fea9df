"""TLS settings, the postgresql.conf values they produce, and the checked copy of the mounted files."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from entrypoint import tls
from entrypoint.apply import tls as apply_tls
from entrypoint.detect import tls as detect_tls
from entrypoint.errors import ConfigError
from entrypoint.render import conf

pytestmark = pytest.mark.unit

CERT = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
KEY = b"-----BEGIN PRIVATE KEY-----\nMIGH\n-----END PRIVATE KEY-----\n"
ENCRYPTED_KEY = b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nx\n-----END ENCRYPTED PRIVATE KEY-----\n"


def test_tls_is_off_by_default_and_adds_nothing() -> None:
    settings = tls.parse({})
    assert not settings.enabled
    assert tls.conf(settings, "/var/lib/postgresql/data") == {}
    assert tls.hba_connection_type(settings) == "host"


def test_tls_on_points_the_server_at_its_copies_inside_pgdata() -> None:
    settings = tls.parse({"POSTGRES_SSL": "on"})
    assert settings.cert_file == "/etc/postgresql/certs/server.crt"
    assert settings.key_file == "/etc/postgresql/certs/server.key"
    assert tls.conf(settings, "/data") == {
        "ssl": "on",
        "ssl_cert_file": "/data/aza-pg/tls/server.crt",
        "ssl_key_file": "/data/aza-pg/tls/server.key",
        "ssl_min_protocol_version": "TLSv1.2",
    }


def test_a_client_ca_adds_ssl_ca_file() -> None:
    settings = tls.parse({"POSTGRES_SSL": "true", "POSTGRES_SSL_CA_FILE": "/certs/ca.crt"})
    assert tls.conf(settings, "/d")["ssl_ca_file"] == "/d/aza-pg/tls/ca.crt"


def test_require_ssl_switches_network_lines_to_hostssl() -> None:
    settings = tls.parse({"POSTGRES_SSL": "on", "POSTGRES_HBA_REQUIRE_SSL": "on"})
    assert tls.hba_connection_type(settings) == "hostssl"


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"POSTGRES_HBA_REQUIRE_SSL": "on"}, "POSTGRES_HBA_REQUIRE_SSL=on needs POSTGRES_SSL=on"),
        ({"POSTGRES_SSL": "maybe"}, "POSTGRES_SSL="),
        ({"POSTGRES_SSL": "on", "POSTGRES_SSL_CERT_FILE": "certs/server.crt"}, "must be an absolute path"),
        ({"POSTGRES_SSL": "on", "POSTGRES_SSL_KEY_FILE": "/etc/postgresql/certs/server.crt"}, "same file"),
        ({"POSTGRES_SSL": "on", "POSTGRES_SSL_CA_FILE": "/a\nb"}, "line breaks"),
    ],
)
def test_bad_tls_settings_are_one_clear_error(env: dict[str, str], fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        tls.parse(env)
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


def test_conf_values_render_with_the_conf_escaper() -> None:
    settings = tls.parse({"POSTGRES_SSL": "on"})
    text = conf.render(tls.conf(settings, "/srv/it's data"))
    assert "ssl_key_file = '/srv/it''s data/aza-pg/tls/server.key'" in text
    assert "ssl = on" in text


# --- detect: reading the mounted files ------------------------------------------------------------------

def _mount(tmp_path: Path, cert: bytes = CERT, key: bytes = KEY, key_mode: int = 0o600) -> dict[str, str]:
    certs = tmp_path / "certs"
    certs.mkdir(exist_ok=True)
    (certs / "server.crt").write_bytes(cert)
    (certs / "server.key").write_bytes(key)
    os.chmod(certs / "server.key", key_mode)
    return {
        "POSTGRES_SSL": "on",
        "POSTGRES_SSL_CERT_FILE": str(certs / "server.crt"),
        "POSTGRES_SSL_KEY_FILE": str(certs / "server.key"),
    }


def test_read_material_returns_nothing_when_off(tmp_path: Path) -> None:
    assert detect_tls.read_material(tls.parse({})) is None


def test_read_material_reads_the_files(tmp_path: Path) -> None:
    material = detect_tls.read_material(tls.parse(_mount(tmp_path, key_mode=0o640)))
    assert material is not None
    assert (material.cert, material.key, material.ca, material.key_source_mode) == (CERT, KEY, None, 0o640)


def test_missing_key_names_the_variable_and_the_tool(tmp_path: Path) -> None:
    env = _mount(tmp_path)
    (tmp_path / "certs/server.key").unlink()
    with pytest.raises(ConfigError) as info:
        detect_tls.read_material(tls.parse(env))
    message = str(info.value)
    assert message.startswith("POSTGRES_SSL=on but POSTGRES_SSL_KEY_FILE=")
    assert "does not exist" in message
    assert "generate-ssl-certs.sh" in message


@pytest.mark.parametrize(
    ("cert", "key", "fragment"),
    [
        (b"hello", KEY, "POSTGRES_SSL_CERT_FILE=.*not a PEM certificate"),
        (CERT, CERT, "POSTGRES_SSL_KEY_FILE=.*not a PEM private key"),
        (CERT, ENCRYPTED_KEY, "passphrase"),
    ],
)
def test_wrong_file_contents_are_refused(tmp_path: Path, cert: bytes, key: bytes, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        detect_tls.read_material(tls.parse(_mount(tmp_path, cert=cert, key=key)))


def test_a_directory_instead_of_the_certificate_is_refused(tmp_path: Path) -> None:
    env = _mount(tmp_path)
    env["POSTGRES_SSL_CERT_FILE"] = str(tmp_path)
    with pytest.raises(ConfigError, match="not a regular file"):
        detect_tls.read_material(tls.parse(env))


# --- apply: the server's copies -------------------------------------------------------------------------

def test_install_writes_owned_copies_with_strict_modes(tmp_path: Path) -> None:
    pgdata = tmp_path / "data"
    pgdata.mkdir(mode=0o700)
    env = _mount(tmp_path, key_mode=0o644)
    env["POSTGRES_SSL_CA_FILE"] = env["POSTGRES_SSL_CERT_FILE"]
    material = detect_tls.read_material(tls.parse(env))
    uid, gid = 65534, 65534  # nobody: a user other than the one running the test (root)
    apply_tls.install(material, pgdata, uid, gid)
    directory = pgdata / "aza-pg/tls"
    expected = {"server.crt": (0o644, CERT), "server.key": (0o600, KEY), "ca.crt": (0o644, CERT)}
    for name, (mode, content) in expected.items():
        st = (directory / name).stat()
        assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (mode, uid, gid), name
        assert (directory / name).read_bytes() == content
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert directory.stat().st_uid == uid
    assert sorted(p.name for p in directory.iterdir()) == ["ca.crt", "server.crt", "server.key"]


def test_install_with_tls_off_removes_old_copies(tmp_path: Path) -> None:
    pgdata = tmp_path / "data"
    pgdata.mkdir()
    apply_tls.install(detect_tls.read_material(tls.parse(_mount(tmp_path))), pgdata)
    assert (pgdata / "aza-pg/tls/server.key").exists()
    apply_tls.install(None, pgdata)
    assert not (pgdata / "aza-pg/tls").exists()
    assert (pgdata / "aza-pg").is_dir()


def test_generated_certificates_pass_the_checks(tmp_path: Path) -> None:
    script = Path(__file__).resolve().parents[2] / "scripts/tools/generate-ssl-certs.sh"
    subprocess.run([str(script), str(tmp_path / "certs")], check=True, capture_output=True, timeout=60)
    env = {
        "POSTGRES_SSL": "on",
        "POSTGRES_SSL_CERT_FILE": str(tmp_path / "certs/server.crt"),
        "POSTGRES_SSL_KEY_FILE": str(tmp_path / "certs/server.key"),
        "POSTGRES_SSL_CA_FILE": str(tmp_path / "certs/ca.crt"),
    }
    material = detect_tls.read_material(tls.parse(env))
    assert material is not None
    assert material.key_source_mode == 0o600
