"""`aza-pg tune` through the real console script: acceptance line, formats, and every bad input.

Bad input must give exit status 2 and exactly one line on stderr that names the variable or flag, with
no traceback. These run the installed `.venv/bin/aza-pg` as a subprocess with a controlled environment.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

AZA_PG = Path(sys.executable).with_name("aza-pg")


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("POSTGRES_", "PG_MAJOR", "AZA_PG_"))}
    return subprocess.run(
        [str(AZA_PG), "tune", *args],
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_acceptance_line() -> None:
    result = run("--memory", "2048", "--cpus", "4", "--format", "line")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(
        "[POSTGRES] [AUTO-CONFIG] RAM: 2048MB (manual), CPU: 4 cores (manual) → shared_buffers=512MB, "
        "effective_cache_size=1536MB, maintenance_work_mem=64MB, work_mem="
    )
    assert result.stderr == ""


def test_environment_is_used_and_flags_override_it() -> None:
    env = {"POSTGRES_MEMORY": "4G", "POSTGRES_CPUS": "2", "POSTGRES_WORKLOAD_TYPE": "dw"}
    from_env = json.loads(run("--format", "json", env=env).stdout)
    assert (from_env["inputs"]["memory_mb"], from_env["inputs"]["cpus"]) == (4096, 2)
    assert from_env["settings"]["default_statistics_target"] == "500"
    flags = json.loads(run("--format", "json", "--memory", "8192", "--workload", "web", env=env).stdout)
    assert flags["inputs"]["memory_mb"] == 8192
    assert flags["inputs"]["workload"] == "web"
    assert flags["inputs"]["cpus"] == 2


def test_a_flag_replaces_a_bad_variable() -> None:
    result = run("--memory", "2048", "--format", "line", env={"POSTGRES_MEMORY": "abc"})
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(("pg", "has_io_workers"), [("15", False), ("18", True)])
def test_pg_version_flag_gates_settings(pg: str, has_io_workers: bool) -> None:
    result = run("--memory", "2048", "--cpus", "4", "--pg-version", pg, "--format", "conf")
    assert result.returncode == 0, result.stderr
    assert ("io_workers = " in result.stdout) is has_io_workers
    assert f"PostgreSQL {pg}." in result.stdout


def test_pg_major_environment_is_the_default_version() -> None:
    result = run("--memory", "2048", "--format", "json", env={"PG_MAJOR": "16"})
    assert json.loads(result.stdout)["inputs"]["pg_major"] == 16


def test_table_format_explains_the_budget() -> None:
    result = run("--memory", "2048", "--cpus", "4")
    assert result.returncode == 0, result.stderr
    assert "memory budget" in result.stdout
    assert "shared_buffers" in result.stdout


def test_detection_without_flags_runs_and_names_a_source() -> None:
    result = run("--format", "json")
    assert result.returncode == 0, result.stderr
    inputs = json.loads(result.stdout)["inputs"]
    assert inputs["memory_source"] in ("cgroup-v1", "cgroup-v2", "meminfo")
    assert inputs["cpu_source"] in ("cgroup-v1", "cgroup-v2", "affinity", "nproc")
    assert inputs["memory_mb"] <= inputs["mem_total_mb"]


BAD = [
    ({"POSTGRES_MEMORY": "abc"}, (), "POSTGRES_MEMORY"),
    ({"POSTGRES_MEMORY": "0"}, (), "POSTGRES_MEMORY"),
    ({"POSTGRES_MEMORY": "-5"}, (), "POSTGRES_MEMORY"),
    ({"POSTGRES_MEMORY": "1.5.5"}, (), "POSTGRES_MEMORY"),
    ({"POSTGRES_MEMORY": "99999999999"}, (), "POSTGRES_MEMORY"),
    ({"POSTGRES_MEMORY": "256"}, (), "POSTGRES_MEMORY"),
    ({"POSTGRES_MEMORY": "511"}, (), "POSTGRES_MEMORY"),
    ({"POSTGRES_WORKLOAD_TYPE": "analytics"}, (), "POSTGRES_WORKLOAD_TYPE"),
    ({"POSTGRES_STORAGE_TYPE": "nvme"}, (), "POSTGRES_STORAGE_TYPE"),
    ({"POSTGRES_CPUS": "0"}, (), "POSTGRES_CPUS"),
    ({"POSTGRES_MAX_CONNECTIONS": "-1"}, (), "POSTGRES_MAX_CONNECTIONS"),
    ({"POSTGRES_AUTO_CONFIG": "perhaps"}, (), "POSTGRES_AUTO_CONFIG"),
    ({"PG_MAJOR": "14"}, (), "PG_MAJOR"),
    ({}, ("--memory", "abc"), "--memory"),
    ({}, ("--memory", "100"), "--memory"),
    ({}, ("--cpus", "0"), "--cpus"),
    ({}, ("--workload", "batch"), "--workload"),
    ({}, ("--storage", "tape"), "--storage"),
    ({}, ("--pg-version", "14"), "--pg-version"),
]


@pytest.mark.parametrize(("env", "args", "name"), BAD)
def test_bad_input_is_one_line_and_exit_2(env: dict[str, str], args: tuple[str, ...], name: str) -> None:
    result = run(*args, "--format", "line", env=env)
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert name in lines[0]
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_below_512_names_the_fix() -> None:
    result = run("--format", "line", env={"POSTGRES_MEMORY": "256"})
    assert "mem_limit: 512m" in result.stderr
    assert "docker run -m 512m" in result.stderr
