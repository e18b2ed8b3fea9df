"""TLS through the real entrypoint and real PostgreSQL binaries on 127.0.0.1 (no Docker).

The certificates come from scripts/tools/generate-ssl-certs.sh and stay root-owned with a 0600 key, as a
read-only mount would be; the entrypoint must install copies the server can read and point it at them.
Non-loopback refusal (hostssl) needs another address and is proven in tests/compose/test_tls.py; here the
rendered pg_hba lines are checked instead.
"""

from __future__ import annotations

import os
import pwd
import stat
import subprocess
from pathlib import Path

import psycopg
import pytest

from tests.process.pgharness import Instance

pytestmark = pytest.mark.process

TOOLS = Path(__file__).resolve().parents[2] / "scripts/tools"


def certs_for(pg: Instance) -> Path:
    directory = pg.base / "certs"
    subprocess.run([str(TOOLS / "generate-ssl-certs.sh"), str(directory)], check=True, capture_output=True,
                   timeout=60)
    return directory


def test_tls_on_then_off() -> None:
    with Instance.create() as pg:
        certs = certs_for(pg)
        pg.env.update({
            "POSTGRES_SSL": "on",
            "POSTGRES_SSL_CERT_FILE": str(certs / "server.crt"),
            "POSTGRES_SSL_KEY_FILE": str(certs / "server.key"),
            "POSTGRES_HBA_REQUIRE_SSL": "on",
        })
        pg.start()
        with pg.connect(sslmode="verify-full", sslrootcert=str(certs / "ca.crt")) as conn:
            row = conn.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone()
        assert row == (True,)

        key = pg.pgdata / "aza-pg/tls/server.key"
        st = key.stat()
        assert stat.S_IMODE(st.st_mode) == 0o600
        server_uid = pwd.getpwnam("postgres").pw_uid if os.geteuid() == 0 else os.geteuid()
        assert st.st_uid == server_uid  # the server's own copy, not root's
        assert key.read_bytes() == (certs / "server.key").read_bytes()
        assert stat.S_IMODE((certs / "server.key").stat().st_mode) == 0o600  # the original is untouched

        hba = [line.split() for line in (pg.pgdata / "aza-pg/pg_hba.conf").read_text().splitlines()
               if line and not line.startswith("#")]
        loop = ("127.0.0.1/32", "::1/128")
        network = [row for row in hba if row[0].startswith("host") and row[3] not in loop]
        loopback = [row for row in hba if row[0].startswith("host") and row[3] in loop]
        assert network
        assert {row[0] for row in network} == {"hostssl"}
        assert {row[0] for row in loopback} == {"host"}

        # Turned off again: plain connections only, and the key copy is gone from PGDATA.
        pg.stop()
        for name in ("POSTGRES_SSL", "POSTGRES_HBA_REQUIRE_SSL"):
            pg.env[name] = "off"
        pg.start()
        assert not (pg.pgdata / "aza-pg/tls").exists()
        with pytest.raises(psycopg.OperationalError, match="SSL"):
            pg.connect(sslmode="require").close()
        assert pg.query("SELECT 1") == [(1,)]


def test_missing_certificate_is_one_clear_error_before_anything_changes() -> None:
    with Instance.create() as pg:
        pg.env.update({"POSTGRES_SSL": "on", "POSTGRES_SSL_CERT_FILE": str(pg.base / "nope.crt")})
        result = pg.run(timeout=60)
        assert result.returncode == 2
        assert f"POSTGRES_SSL=on but POSTGRES_SSL_CERT_FILE={pg.base / 'nope.crt'}" in result.output
        assert "Traceback" not in result.output
        assert not pg.pgdata.exists() or not any(pg.pgdata.iterdir())
