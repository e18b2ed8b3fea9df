"""The built images: what they contain, how they start, and how they refuse bad input."""

from __future__ import annotations

import json
import re
from collections.abc import Callable

import pytest

from tests.compose import dockerlib
from tests.compose.dockerlib import REPO, docker, image_name

pytestmark = pytest.mark.compose

POSTGRES = image_name("postgres")


def _config(image: str) -> dict[str, object]:
    data = json.loads(docker("image", "inspect", image, timeout=30).stdout)[0]["Config"]
    assert isinstance(data, dict)
    return data


def _sh(image: str, script: str, *, user: str | None = None, timeout: float = 120) -> str:
    args = ["run", "--rm", "--entrypoint", "bash"]
    if user:
        args += ["--user", user]
    return docker(*args, image, "-c", script, timeout=timeout).stdout


@pytest.fixture(scope="module")
def built(images: Callable[..., None]) -> None:
    images(["postgres", "pgbouncer", "postgres-exporter", "pgbouncer-exporter", "prometheus"])


def test_postgres_image_runtime_contract(built: None) -> None:
    cfg = _config(POSTGRES)
    assert cfg["Entrypoint"] == ["aza-pg", "postgres"]
    assert cfg["StopSignal"] == "SIGINT"
    assert cfg["Healthcheck"]["Test"] == ["CMD", "aza-pg", "healthcheck"]  # type: ignore[index]
    env_list = cfg["Env"]
    assert isinstance(env_list, list)
    env = dict(item.split("=", 1) for item in env_list)
    assert env["PGDATA"] == "/var/lib/postgresql/data"
    assert env["PATH"].split(":")[0] == "/usr/lib/postgresql/17/bin"
    assert "/var/lib/postgresql/data" in cfg["Volumes"]  # type: ignore[operator]


def test_postgres_image_contents(built: None) -> None:
    out = _sh(
        POSTGRES,
        """
        set -e
        echo "pg=$(postgres --version)"
        echo "aza=$(aza-pg --version)"
        echo "pgbackrest=$(/usr/local/bin/pgbackrest version)"
        echo "uid=$(id -u postgres):$(id -g postgres)"
        echo "pgdata=$(stat -c %U:%a /var/lib/postgresql/data)"
        echo "rundir=$(stat -c %U:%a /var/run/postgresql)"
        echo "clusters=$(ls /etc/postgresql/ | tr '\\n' ' ')"
        echo "createcluster=$(grep -rh '^create_main_cluster' /etc/postgresql-common/createcluster.d/)"
        echo "compilers=$(ls /usr/bin/gcc* /usr/bin/cc /usr/bin/pip* 2>/dev/null | wc -l)"
        echo "pipcache=$(ls -d /root/.cache/pip 2>/dev/null | wc -l)"
        echo "snakeoil=$(ls /etc/ssl/private/ 2>/dev/null | wc -l)"
        echo "extjson=$(test -s /usr/share/aza-pg/extensions.json && echo yes)"
        python3 -sE -c 'import psutil, psycopg, click, structlog; print("pymods=ok")'
        for d in /var/lib/pgbackrest /var/log/pgbackrest /var/spool/pgbackrest /etc/pgbackrest; do
            echo "dir $d $(stat -c %U:%a $d)"; done
        echo "pgbackrest_wrapper=$(head -c 9 /usr/local/bin/pgbackrest)"
        echo "gzip=$(command -v gzip)"
        echo "pg_dump=$(command -v pg_dump)"
    """,
    )
    facts = dict(
        line.split("=", 1) for line in out.splitlines() if "=" in line and not line.startswith("dir ")
    )
    assert facts["pg"].startswith("postgres (PostgreSQL) 17.")
    assert facts["aza"].startswith("aza-pg, version ")
    assert facts["pgbackrest"].startswith("pgBackRest 2.")
    assert facts["uid"] == "999:999"
    assert facts["pgdata"] == "postgres:700"
    assert facts["rundir"] == "postgres:2775"
    assert facts["clusters"].split() == ["conf.d"] or set(facts["clusters"].split()) == {"conf.d", "certs"}
    assert facts["createcluster"].replace(" ", "") == "create_main_cluster=false"
    assert facts["compilers"] == "0"
    assert facts["pipcache"] == "0"
    assert facts["snakeoil"] == "0"
    assert facts["extjson"] == "yes"
    assert facts["pymods"] == "ok"
    assert facts["pgbackrest_wrapper"] == "#!/bin/sh"  # image/backup/pgbackrest, runs as postgres
    assert facts["gzip"]
    assert facts["pg_dump"] == "/usr/lib/postgresql/17/bin/pg_dump"
    for line in out.splitlines():
        if line.startswith("dir "):
            assert line.endswith("postgres:750"), line


def test_every_catalog_package_is_installed(built: None) -> None:
    listed = [
        line.split("#", 1)[0].strip()
        for line in (REPO / "image/packages/extensions.txt").read_text(encoding="utf-8").splitlines()
    ]
    packages = [p for p in listed if p]
    assert packages, "image/packages/extensions.txt lists no package"
    out = _sh(POSTGRES, "dpkg-query -W -f='${Package} ${Status}\\n' " + " ".join(packages) + " 2>&1 || true")
    installed = {line.split()[0] for line in out.splitlines() if line.endswith("install ok installed")}
    assert installed == set(packages), f"missing: {sorted(set(packages) - installed)}"


def test_missing_password_is_one_clear_line(built: None) -> None:
    proc = docker("run", "--rm", "-m", "1g", POSTGRES, timeout=120, check=False)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
    fatal = [line for line in lines if "FATAL" in line]
    assert len(fatal) == 1, lines
    assert "POSTGRES_PASSWORD" in fatal[0]
    assert "Traceback" not in proc.stdout + proc.stderr


def test_pgbouncer_image(built: None) -> None:
    image = image_name("pgbouncer")
    cfg = _config(image)
    assert cfg["Entrypoint"] == ["aza-pg", "pgbouncer"]
    out = _sh(
        image, "pgbouncer --version | head -1; ls -A /etc/pgbouncer | wc -l; id -u postgres; aza-pg --version"
    )
    version, packaged, uid, aza = out.splitlines()[:4]
    assert re.match(r"PgBouncer 1\.2[4-9]", version), version
    assert packaged == "0"  # the packaged pgbouncer.ini would be mistaken for a user-mounted one
    assert uid == "999"
    assert aza.startswith("aza-pg, version")


@pytest.mark.parametrize(
    ("target", "binary", "entry"),
    [
        ("postgres-exporter", "prometheus-postgres-exporter", "postgres-exporter"),
        ("pgbouncer-exporter", "prometheus-pgbouncer-exporter", "pgbouncer-exporter"),
    ],
)
def test_exporter_images(built: None, target: str, binary: str, entry: str) -> None:
    image = image_name(target)
    cfg = _config(image)
    assert cfg["Entrypoint"] == ["aza-pg", entry]
    assert cfg["User"] == "65534:65534"
    out = _sh(image, f"{binary} --version 2>&1 | head -1")
    assert "version" in out


def test_exporter_refuses_missing_password(built: None) -> None:
    proc = docker("run", "--rm", image_name("postgres-exporter"), timeout=60, check=False)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "POSTGRES_EXPORTER_PASSWORD" in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr


def test_prometheus_image(built: None) -> None:
    image = image_name("prometheus")
    cfg = _config(image)
    assert cfg["Entrypoint"] == ["/usr/bin/prometheus"]
    assert cfg["User"] == "prometheus"
    out = _sh(image, "prometheus --version 2>&1 | head -1; stat -c %U /prometheus")
    assert out.splitlines()[0].startswith("prometheus, version 2.")
    assert out.splitlines()[1] == "prometheus"


def test_image_sizes_are_reported(built: None, capsys: pytest.CaptureFixture[str]) -> None:
    sizes = {}
    for target in dockerlib.TARGETS:
        size = int(docker("image", "inspect", "-f", "{{.Size}}", image_name(target), timeout=30).stdout)
        sizes[target] = size // 1_000_000
    with capsys.disabled():
        print("\nimage sizes (MB):", json.dumps(sizes))
    # Bounds that catch an accidental toolchain or cache in the image, not a tight budget.
    assert sizes["pgbouncer"] < 300
    assert sizes["postgres-exporter"] < 300
    assert sizes["postgres"] < 1500
