"""TLS against the built image (issue 9): certificates from scripts/tools/generate-ssl-certs.sh mounted
read-only and root-owned at /etc/postgresql/certs, POSTGRES_SSL=on, POSTGRES_HBA_REQUIRE_SSL=on.

- a client on the host verifies the server with sslmode=verify-full and the generated CA;
- a client container on the test's own network verifies the server under its service name `postgres`;
- a connection without TLS from a non-loopback address (host via the published port, or another
  container) is refused, while loopback inside the container still works without TLS;
- a wrong CA is rejected; the key copy the server reads is owned by postgres with mode 0600;
- PgBouncer reaches the server over TLS with server_tls_sslmode=verify-full;
- a missing certificate or an inconsistent switch stops the container with one clear line.

Everything lives on a network and containers created here, reached through 127.0.0.1, removed at the end.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from tests.compose.backupkit import (
    IMAGE,
    NASTY_PASSWORD,
    TOOLS,
    docker,
    free_port,
    logs,
    psql,
    require_image,
    run,
    wait_accepting_writes,
    wait_for,
)

pytestmark = pytest.mark.compose

PGBOUNCER_IMAGE = os.environ.get("AZA_PG_PGBOUNCER_IMAGE", "aza-pg/pgbouncer:17")
AUTH_PASS = "auth:p@ss 'w\"ord\\"
APP_PASSWORD = "app p@ss:/#'\"x"
SSL_STATE = "SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()"


@dataclass
class TlsServer:
    name: str
    network: str
    port: int
    certs: Path
    cleanup: list[list[str]]


def generate_certs(directory: Path) -> Path:
    run([str(TOOLS / "generate-ssl-certs.sh"), str(directory)], timeout=60)
    os.chmod(directory.parent, 0o755)  # noqa: S103 - containers traverse it; the keys inside stay 0600
    return directory


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsServer]:
    require_image()
    tag = uuid.uuid4().hex[:8]
    certs = generate_certs(tmp_path_factory.mktemp(f"tls-{tag}") / "certs")
    network = f"azapg-tls-{tag}"
    name = f"azapg-tls-pg-{tag}"
    port = free_port()
    cleanup: list[list[str]] = [["network", "rm", network], ["rm", "-f", "-v", name]]
    env = {"POSTGRES_PASSWORD": NASTY_PASSWORD, "PGBOUNCER_AUTH_PASS": AUTH_PASS}
    try:
        docker("network", "create", network)
        docker("run", "-d", "--name", name, "--network", network, "--network-alias", "postgres",
               "-p", f"127.0.0.1:{port}:5432", "--memory", "1g", "--shm-size", "256m",
               "-e", "POSTGRES_PASSWORD", "-e", "PGBOUNCER_AUTH_PASS", "-e", "POSTGRES_MEMORY=1024",
               "-e", "POSTGRES_SSL=on", "-e", "POSTGRES_HBA_REQUIRE_SSL=on",
               "-v", f"{certs}:/etc/postgresql/certs:ro", IMAGE, env=env)
        wait_accepting_writes(name)
        psql(name, "CREATE ROLE app LOGIN PASSWORD :'pw'", pw=APP_PASSWORD)
        yield TlsServer(name=name, network=network, port=port, certs=certs, cleanup=cleanup)
    finally:
        for args in reversed(cleanup):
            docker(*args, check=False, timeout=120)


def connect(srv: TlsServer, **params: str) -> psycopg.Connection[tuple[object, ...]]:
    base = {"host": "localhost", "port": str(srv.port), "user": "postgres", "password": NASTY_PASSWORD,
            "dbname": "postgres", "connect_timeout": "10"}
    return psycopg.connect(**{**base, **params})


def test_host_client_verifies_the_server_with_the_generated_ca(server: TlsServer) -> None:
    with connect(server, sslmode="verify-full", sslrootcert=str(server.certs / "ca.crt")) as conn:
        ssl, version = conn.execute(SSL_STATE).fetchone() or (None, None)
    assert ssl is True
    assert version in ("TLSv1.2", "TLSv1.3")


def test_connection_without_tls_from_outside_the_container_is_refused(server: TlsServer) -> None:
    with pytest.raises(psycopg.OperationalError) as info:
        connect(server, sslmode="disable").close()
    assert "no pg_hba.conf entry" in str(info.value)
    assert "no encryption" in str(info.value)


def test_a_different_ca_is_rejected(server: TlsServer, tmp_path: Path) -> None:
    other = generate_certs(tmp_path / "other")
    with pytest.raises(psycopg.OperationalError, match="certificate verify failed"):
        connect(server, sslmode="verify-full", sslrootcert=str(other / "ca.crt")).close()


def test_container_client_verifies_the_service_name_and_needs_tls(server: TlsServer) -> None:
    def client(sslmode: str) -> subprocess.CompletedProcess[str]:
        conninfo = (f"host=postgres port=5432 user=app dbname=postgres sslmode={sslmode} "
                    "sslrootcert=/certs/ca.crt connect_timeout=10")
        return docker("run", "--rm", "--network", server.network, "-e", "PGPASSWORD",
                      "-v", f"{server.certs}:/certs:ro", "--entrypoint", "psql", IMAGE,
                      "-X", "-At", "-d", conninfo, "-c", SSL_STATE, env={"PGPASSWORD": APP_PASSWORD},
                      check=False, timeout=120)

    ok = client("verify-full")
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip().startswith("t|TLSv1.")
    refused = client("disable")
    assert refused.returncode != 0
    assert "no pg_hba.conf entry" in refused.stderr
    assert "no encryption" in refused.stderr


def test_loopback_inside_the_container_works_without_tls(server: TlsServer) -> None:
    result = docker("exec", "-e", "PGPASSWORD", server.name, "psql", "-X", "-At",
                    "-d", "host=127.0.0.1 user=app dbname=postgres sslmode=disable", "-c", SSL_STATE,
                    env={"PGPASSWORD": APP_PASSWORD}, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "f|"


def test_server_reads_its_own_copy_of_the_key(server: TlsServer) -> None:
    out = docker("exec", server.name, "sh", "-c",
                 'stat -c "%U %a" "$PGDATA/aza-pg/tls/server.key" "$PGDATA/aza-pg/tls/server.crt"').stdout
    assert out.split("\n")[:2] == ["postgres 600", "postgres 644"]
    assert psql(server.name, "SHOW ssl_key_file").endswith("/aza-pg/tls/server.key")
    # The mounted original stays as it was: root-owned, 0600, read-only.
    assert docker("exec", server.name, "stat", "-c", "%u %a", "/etc/postgresql/certs/server.key"
                  ).stdout.strip() == "0 600"


def test_pgbouncer_uses_verify_full_to_the_server(server: TlsServer) -> None:
    if docker("image", "inspect", PGBOUNCER_IMAGE, check=False).returncode != 0:
        pytest.fail(f"image {PGBOUNCER_IMAGE} is missing (scripts/docker/build-images.sh)")
    name = f"{server.name}-bouncer"
    port = free_port()
    server.cleanup.append(["rm", "-f", "-v", name])
    docker("run", "-d", "--name", name, "--network", server.network, "-p", f"127.0.0.1:{port}:6432",
           "-e", "POSTGRES_HOST=postgres", "-e", "PGBOUNCER_AUTH_PASS",
           "-e", "PGBOUNCER_SERVER_SSLMODE=verify-full",
           "-e", "PGBOUNCER_SERVER_SSL_CA_FILE=/etc/postgresql/certs/ca.crt",
           "-v", f"{server.certs}:/etc/postgresql/certs:ro", PGBOUNCER_IMAGE,
           env={"PGBOUNCER_AUTH_PASS": AUTH_PASS})

    state: dict[str, object] = {}

    def through_bouncer() -> bool:
        try:
            with psycopg.connect(host="127.0.0.1", port=port, user="app", password=APP_PASSWORD,
                                 dbname="postgres", sslmode="disable", connect_timeout=5,
                                 prepare_threshold=None) as conn:
                state["row"] = conn.execute(SSL_STATE).fetchone()
            return True
        except psycopg.OperationalError as exc:
            state["error"] = str(exc)
            return False

    wait_for("a query through PgBouncer", through_bouncer, timeout=90,
             diagnostics=lambda: f"{state.get('error')}\n{logs(name)}")
    ssl, version = state["row"]  # type: ignore[misc]
    assert ssl is True
    assert str(version).startswith("TLSv1.")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"POSTGRES_SSL": "on"},
         "POSTGRES_SSL=on but POSTGRES_SSL_CERT_FILE=/etc/postgresql/certs/server.crt: the server "
         "certificate does not exist"),
        ({"POSTGRES_HBA_REQUIRE_SSL": "on"}, "POSTGRES_HBA_REQUIRE_SSL=on needs POSTGRES_SSL=on"),
    ],
)
def test_bad_tls_setup_stops_the_container_with_one_clear_line(env: dict[str, str], message: str) -> None:
    require_image()
    name = f"azapg-tls-bad-{uuid.uuid4().hex[:8]}"
    args = [a for k, v in env.items() for a in ("-e", f"{k}={v}")]
    try:
        docker("run", "-d", "--name", name, "-e", "POSTGRES_PASSWORD=x", *args, IMAGE)
        code = docker("wait", name, timeout=120).stdout.strip()
        output = logs(name)
        assert code == "2", output
        assert message in output
        assert "Traceback" not in output
    finally:
        docker("rm", "-f", "-v", name, check=False)
