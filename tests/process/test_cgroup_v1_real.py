"""A real process in a real cgroup v1 memory and cpu group reports that limit.

The test makes child groups below this process's own v1 memory and cpu groups, writes a 768 MiB memory
limit and a 150000/100000 CFS quota, starts a shell that moves itself into both groups and then execs
`aza-pg tune --format line`, and reads the summary line. The groups are removed afterwards, also when
the test fails. Without a writable v1 controller the test skips with the reason, except under CI=true,
where it fails (CI runs on hosts that have one).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.process

AZA_PG = Path(sys.executable).with_name("aza-pg")
MIB = 1024 * 1024


def _own_v1_dir(controller: str) -> Path | None:
    """This process's group directory in the v1 hierarchy that carries ``controller``."""
    own = None
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if controller in controllers.split(","):
            own = path
    if own is None:
        return None
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        sep = fields.index("-")
        if fields[sep + 1] == "cgroup" and controller in fields[sep + 3].split(","):
            root, mount_point = fields[3], Path(fields[4])
            relative = own[len(root) :] if own.startswith(root) else own
            candidate = mount_point / relative.strip("/")
            return candidate if candidate.is_dir() else mount_point
    return None


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"cgroup v1 test cannot run under CI: {reason}")
    pytest.skip(reason)


def _remove(path: Path) -> None:
    for _ in range(50):
        try:
            path.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.1)  # the exited process may take a moment to leave the group
    path.rmdir()


@contextlib.contextmanager
def _child_group(controller: str) -> Iterator[Path]:
    parent = _own_v1_dir(controller)
    if parent is None:
        _unavailable(f"no cgroup v1 {controller} controller is mounted")
        raise AssertionError("unreachable")
    group = parent / f"aza-pg-test-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        group.mkdir()
    except OSError as exc:
        _unavailable(f"cannot create a {controller} cgroup under {parent}: {exc.strerror}")
    try:
        yield group
    finally:
        for child in sorted(group.glob("*/"), reverse=True):
            if child.is_dir():
                _remove(child)
        _remove(group)


def _tune_inside(memory_group: Path, cpu_group: Path) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POSTGRES_", "AZA_PG_"))}
    script = 'echo $$ > "$1/cgroup.procs" && echo $$ > "$2/cgroup.procs" && exec "$3" tune --format line'
    result = subprocess.run(
        ["sh", "-c", script, "sh", str(memory_group), str(cpu_group), str(AZA_PG)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()[0]


def test_memory_limit_and_cfs_quota_of_the_own_group() -> None:
    with _child_group("memory") as memory_group, _child_group("cpu") as cpu_group:
        (memory_group / "memory.limit_in_bytes").write_text(str(768 * MIB))
        (cpu_group / "cpu.cfs_period_us").write_text("100000")
        (cpu_group / "cpu.cfs_quota_us").write_text("150000")
        line = _tune_inside(memory_group, cpu_group)
    assert "RAM: 768MB (cgroup-v1)" in line, line
    assert "CPU: 2 cores (cgroup-v1)" in line, line
    assert "shared_buffers=192MB" in line, line


def test_a_limited_parent_binds_an_unlimited_child() -> None:
    with _child_group("memory") as parent, _child_group("cpu") as cpu_group:
        (parent / "memory.limit_in_bytes").write_text(str(1024 * MIB))
        child = parent / "inner"
        child.mkdir()
        assert int((child / "memory.limit_in_bytes").read_text()) >= 1 << 62
        line = _tune_inside(child, cpu_group)
    assert "RAM: 1024MB (cgroup-v1)" in line, line


# --- the memory budget under a full load (AUTOCONFIG invariant 3) ------------------------------------------

PG_BINDIRS = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name), reverse=True)
BUDGET_LIMIT_MB = 768
SORT_SQL = "SELECT md5(g::text) AS h FROM generate_series(1, {rows}) g ORDER BY h"
PROBE = """BEGIN;
DECLARE c CURSOR FOR {query};
FETCH 1 FROM c;
SELECT pg_sleep({hold});
COMMIT;
"""


def _bindir() -> Path:
    for bindir in PG_BINDIRS:
        if (bindir / "postgres").exists() and (bindir / "pgbench").exists():
            return bindir
    _unavailable("no PostgreSQL server with pgbench under /usr/lib/postgresql")
    raise AssertionError("unreachable")


def _as_postgres(argv: list[str]) -> list[str]:
    return ["setpriv", "--reuid=postgres", "--regid=postgres", "--clear-groups", *argv]


def _psql(bindir: Path, sock: Path, port: int, sql: str) -> str:
    result = subprocess.run(
        [str(bindir / "psql"), "-X", "-Atq", "-h", str(sock), "-p", str(port), "-U", "postgres", "-c", sql],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return result.stdout.strip()


def _sort_rows_that_fit(bindir: Path, sock: Path, port: int, work_mem_kb: int) -> int:
    """The largest row count (to ~3 %) whose sort still runs in memory within work_mem, by EXPLAIN ANALYZE."""

    def used(rows: int) -> int | None:
        plan = json.loads(
            _psql(bindir, sock, port, f"EXPLAIN (ANALYZE, FORMAT JSON) {SORT_SQL.format(rows=rows)}")
        )
        node = plan[0]["Plan"]
        return int(node["Sort Space Used"]) if node.get("Sort Space Type") == "Memory" else None

    low, high = 100, work_mem_kb * 40  # md5 rows cost far more than 25 bytes each in a sort
    for _ in range(14):
        if high - low <= max(low // 32, 1):
            break
        middle = (low + high) // 2
        space = used(middle)
        if space is not None and space <= work_mem_kb:
            low = middle
        else:
            high = middle
    return low


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _oom_kills(group: Path) -> int:
    for line in (group / "memory.oom_control").read_text().splitlines():
        if line.startswith("oom_kill "):
            return int(line.split()[1])
    return 0


def _run_full_load(group: Path, work: Path, extra_args: list[str], hold_s: int) -> dict[str, object]:
    """initdb, tune inside the group, start PostgreSQL in it, run the probe with every allowed connection."""
    bindir = _bindir()
    if shutil.which("setpriv") is None:
        _unavailable("setpriv (util-linux) is needed to start PostgreSQL as the postgres user")
    data, sock = work / "data", work / "sock"
    sock.mkdir()
    shutil.chown(sock, "postgres")
    subprocess.run(
        _as_postgres(
            [
                str(bindir / "initdb"),
                "-D",
                str(data),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
                "--no-instructions",
            ]
        ),
        check=True,
        capture_output=True,
        timeout=180,
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POSTGRES_", "AZA_PG_"))}
    script = 'echo $$ > "$1/cgroup.procs" && exec "$2" tune --format conf --pg-version "$3"'
    tuned = subprocess.run(
        ["sh", "-c", script, "sh", str(group), str(AZA_PG), bindir.parent.name],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert f"RAM {BUDGET_LIMIT_MB}MB (cgroup-v1)" in tuned, tuned
    (data / "aza-auto.conf").write_text(tuned)
    port = _free_port()
    with (data / "postgresql.conf").open("a") as conf:
        conf.write(
            f"include 'aza-auto.conf'\nlisten_addresses = ''\nport = {port}\n"
            f"unix_socket_directories = '{sock}'\nfsync = off\n"
        )
    settings = dict(line.split(" = ", 1) for line in tuned.splitlines() if line and not line.startswith("#"))
    log_path = work / "server.log"
    with log_path.open("wb") as log_file:
        server = subprocess.Popen(
            [
                "sh",
                "-c",
                'echo $$ > "$1/cgroup.procs" && shift && exec "$@"',
                "sh",
                str(group),
                *_as_postgres([str(bindir / "postgres"), "-D", str(data), *extra_args]),
            ],
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while (
            subprocess.run(
                [str(bindir / "pg_isready"), "-h", str(sock), "-p", str(port)],
                capture_output=True,
                timeout=10,
                check=False,
            ).returncode
            != 0
        ):
            assert server.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, "PostgreSQL did not become ready in 60 s"
            time.sleep(0.2)
        work_mem_kb = int(
            _psql(
                bindir,
                sock,
                port,
                "SELECT setting::int * CASE unit WHEN 'kB' THEN 1 ELSE 8 END "
                "FROM pg_settings WHERE name = 'work_mem'",
            )
        )
        max_connections = int(_psql(bindir, sock, port, "SHOW max_connections"))
        reserved = int(_psql(bindir, sock, port, "SHOW superuser_reserved_connections"))
        rows = _sort_rows_that_fit(bindir, sock, port, work_mem_kb)
        probe = work / "probe.sql"
        probe.write_text(PROBE.format(query=SORT_SQL.format(rows=rows), hold=hold_s))
        clients = max_connections - reserved
        bench = subprocess.run(
            [
                str(bindir / "pgbench"),
                "-n",
                "-c",
                str(clients),
                "-j",
                "4",
                "-t",
                "1",
                "-f",
                str(probe),
                "-h",
                str(sock),
                "-p",
                str(port),
                "-U",
                "postgres",
                "postgres",
            ],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        alive = server.poll() is None
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGINT)  # fast shutdown
            try:
                server.wait(timeout=60)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(timeout=30)
    log = log_path.read_text(errors="replace")
    return {
        "settings": settings,
        "work_mem_kb": work_mem_kb,
        "clients": clients,
        "rows": rows,
        "bench": bench,
        "alive": alive,
        "log": log,
        "oom_kills": _oom_kills(group),
        "peak_mb": int((group / "memory.max_usage_in_bytes").read_text()) // MIB,
    }


@contextlib.contextmanager
def _workdir() -> Iterator[Path]:
    work = Path(tempfile.mkdtemp(prefix="aza-budget-", dir="/tmp"))
    try:
        work.chmod(0o755)
        shutil.chown(work, "postgres")
        yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)


def test_budget_holds_with_every_connection_sorting_at_the_limit() -> None:
    """768 MiB group, auto-config's settings, every allowed connection holding a work_mem-sized sort."""
    with _child_group("memory") as group, _workdir() as work:
        (group / "memory.limit_in_bytes").write_text(str(BUDGET_LIMIT_MB * MIB))
        (group / "memory.swappiness").write_text("0")
        result = _run_full_load(group, work, [], hold_s=8)
    bench = result["bench"]
    assert isinstance(bench, subprocess.CompletedProcess)
    print(
        f"\nbudget probe: {result['clients']} clients x sort of {result['rows']} rows within work_mem "
        f"{result['work_mem_kb']}kB; peak {result['peak_mb']}MB of {BUDGET_LIMIT_MB}MB; "
        f"oom kills {result['oom_kills']}"
    )
    assert "terminated by signal 9" not in str(result["log"]), result["log"]
    assert result["oom_kills"] == 0
    assert result["alive"], result["log"]
    assert bench.returncode == 0, bench.stdout + bench.stderr
    assert (
        f"number of transactions actually processed: {result['clients']}/{result['clients']}" in bench.stdout
    )
    assert int(str(result["peak_mb"])) < BUDGET_LIMIT_MB


def test_the_probe_detects_an_oversized_override() -> None:
    """The same probe with work_mem=16MB forced by the user must end in OOM kills: the probe can fail."""
    with _child_group("memory") as group, _workdir() as work:
        (group / "memory.limit_in_bytes").write_text(str(BUDGET_LIMIT_MB * MIB))
        (group / "memory.swappiness").write_text("0")
        result = _run_full_load(group, work, ["-c", "work_mem=16MB"], hold_s=8)
    print(
        f"\noversized probe (postmaster alive: {result['alive']}): {result['clients']} clients x sort of "
        f"{result['rows']} rows within work_mem "
        f"{result['work_mem_kb']}kB; peak {result['peak_mb']}MB; oom kills {result['oom_kills']}"
    )
    killed = "terminated by signal 9" in str(result["log"]) or int(str(result["oom_kills"])) > 0
    assert killed, result["log"]
