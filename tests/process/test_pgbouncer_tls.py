"""PgBouncer -> PostgreSQL over TLS with certificate verification (PGBOUNCER_SERVER_SSLMODE=verify-full)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.process.bouncerharness import REPO, Bouncer, Postgres, base_dir, postgres

pytestmark = pytest.mark.process

AUTH_PASS = "tls auth:pw\\'\""


def _certs(directory: Path) -> Path:
    subprocess.run(
        ["bash", str(REPO / "scripts/tools/generate-ssl-certs.sh"), str(directory)],
        check=True, capture_output=True, timeout=120,
    )
    directory.chmod(0o755)
    (directory / "ca.crt").chmod(0o644)
    return directory


@pytest.fixture(scope="module")
def certs() -> Iterator[Path]:
    with base_dir("aza-pgb-certs-") as base:
        yield _certs(base / "certs")


@pytest.fixture(scope="module")
def tls_server(certs: Path) -> Iterator[Postgres]:
    env = {
        "POSTGRES_SSL": "on",
        "POSTGRES_SSL_CERT_FILE": str(certs / "server.crt"),
        "POSTGRES_SSL_KEY_FILE": str(certs / "server.key"),
    }
    with postgres(AUTH_PASS, env) as pg:
        yield pg


def test_verify_full_reaches_the_server_over_tls(tls_server: Postgres, certs: Path) -> None:
    with base_dir() as base:
        b = Bouncer(base, tls_server.port, AUTH_PASS, {
            "PGBOUNCER_SERVER_SSLMODE": "verify-full",
            "PGBOUNCER_SERVER_SSL_CA_FILE": str(certs / "ca.crt"),
        })
        try:
            b.start()
            assert "server_tls_sslmode verify-full" in b.log()
            with b.connect("postgres", tls_server.password, "postgres", sslmode="disable") as conn:
                row = conn.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone()
            assert row == (True,)  # the server connection PgBouncer opened is encrypted
        finally:
            b.stop()


def test_a_server_certificate_from_another_ca_is_refused(tls_server: Postgres) -> None:
    with base_dir("aza-pgb-other-ca-") as other, base_dir() as base:
        wrong_ca = _certs(other / "certs") / "ca.crt"
        b = Bouncer(base, tls_server.port, AUTH_PASS, {
            "PGBOUNCER_SERVER_SSLMODE": "verify-full",
            "PGBOUNCER_SERVER_SSL_CA_FILE": str(wrong_ca),
            "PGBOUNCER_SERVER_CONNECT_TIMEOUT": "3",
        })
        try:
            b.start()
            with pytest.raises(psycopg.OperationalError):
                b.connect("postgres", tls_server.password, "postgres", sslmode="disable", connect_timeout=15)
            assert "certificate verify failed" in b.log()
        finally:
            b.stop()
