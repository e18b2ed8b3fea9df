"""Monitoring end to end (issue 8): primary + replica + Prometheus stacks as shipped, on a test network.

One module-scoped deployment serves every test:
- the primary stack (PostgreSQL, PgBouncer with a pool of 1, both exporters) and the same-host replica stack
  (PostgreSQL, exporter) from stacks/, with a test prefix for container/network names and free loopback ports;
- examples/prometheus/compose.yml on a `monitoring` network the test created, with a copy of the shipped
  prometheus.yml (targets get the test prefix, scrapes every 2 s) and of the shipped rules whose only
  change is shorter `for:` durations.
Prometheus is asked through its HTTP API on its loopback port. Every wait is bounded; `docker compose down -v`
and the network removal run even when a test fails.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import threading
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml

pytestmark = pytest.mark.compose

REPO = Path(__file__).resolve().parents[2]
PRIMARY_DIR = REPO / "stacks/primary"
REPLICA_DIR = REPO / "stacks/replica"
MONITORING_DIR = REPO / "examples/prometheus"

# Passwords with characters that break naive DSNs / URLs / pgpass files (no `$`: Compose would expand it).
EXPORTER_PASSWORD = "p@ss w:rd/'\"\\%#?&=x" + uuid.uuid4().hex[:6]
STATS_PASSWORD = "st@ts pw:x\\y'" + uuid.uuid4().hex[:6]
SUPERUSER_PASSWORD = "super-" + uuid.uuid4().hex[:12]
SHORT_FOR = dict.fromkeys((
    "ReplicationLag", "PgBouncerHighWait", "PostgresDown", "ReplicaNotStreaming", "PgBouncerDown",
    "PgBouncerExporterDown",
), "4s")
GUIDE_METRICS = (
    "pg_up", "pg_replication_lag_lag_seconds", "pg_postmaster_uptime_seconds",
    "pg_memory_settings_value_bytes", "pg_connection_usage_current_conn", "pg_connection_usage_max_conn",
    "pgbouncer_pools_cl_active", "pgbouncer_pools_sv_active", "pgbouncer_pools_cl_waiting",
)
UP_TIMEOUT = 420.0
WAIT_CLIENTS = 25  # pool of 1 + reserve pool of 5: 19 clients wait, more than the alert's 10


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def run(args: list[str], *, env: dict[str, str] | None = None, timeout: float = 120, check: bool = True,
        cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=env, cwd=cwd,
                            check=False)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(args[:4])} ... exited {result.returncode}:\n{result.stderr[-3000:]}")
    return result


@dataclass
class Deployment:
    prefix: str
    env: dict[str, str]
    prometheus_port: int
    pgbouncer_port: int
    projects: list[tuple[str, list[str]]]

    def compose(self, project: str, files: list[str], *args: str, timeout: float = 600,
                check: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = ["docker", "compose", "-p", project, "--env-file", os.devnull]
        for f in files:
            cmd += ["-f", f]
        return run([*cmd, *args], env=self.env, timeout=timeout, check=check)

    def container(self, name: str) -> str:
        return f"{self.prefix}{name}"

    def psql(self, container: str, sql: str, *, timeout: float = 60) -> str:
        script = ('PGPASSWORD="$POSTGRES_PASSWORD" exec psql -X -q -A -t -v ON_ERROR_STOP=1 '
                  "-h /var/run/postgresql -U postgres -d postgres")
        result = subprocess.run(
            ["docker", "exec", "-i", "-u", "postgres", self.container(container), "sh", "-c", script],
            input=sql, capture_output=True, text=True, timeout=timeout, check=False)
        assert result.returncode == 0, f"psql in {container}: {result.stderr[-2000:]}"
        return result.stdout.strip()

    def api(self, path: str, **params: str) -> Any:
        url = f"http://127.0.0.1:{self.prometheus_port}{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - loopback http only
            body = json.loads(response.read())
        assert body["status"] == "success", body
        return body["data"]

    def query(self, promql: str) -> list[dict[str, Any]]:
        data = self.api("/api/v1/query", query=promql)
        result: list[dict[str, Any]] = data["result"]
        return result

    def alert_states(self, name: str) -> set[str]:
        return {a["state"] for a in self.api("/api/v1/alerts")["alerts"] if a["labels"]["alertname"] == name}


def wait_for(what: str, check: Any, timeout: float, interval: float = 2.0) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except (OSError, AssertionError, ValueError, KeyError) as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; last: {last!r}")


def prepared_prometheus_files(workdir: Path, prefix: str) -> tuple[Path, Path]:
    """Copies of the shipped prometheus.yml and rules: targets prefixed, fast scrapes, short `for:`."""
    config = yaml.safe_load((MONITORING_DIR / "prometheus.yml").read_text())
    config["global"]["scrape_interval"] = "2s"
    config["global"]["evaluation_interval"] = "2s"
    for job in config["scrape_configs"]:
        for static in job["static_configs"]:
            static["targets"] = [
                t if t.startswith("localhost:") else prefix + t for t in static["targets"]
            ]
    rules_dir = workdir / "rules"
    rules_dir.mkdir()
    for path in sorted((MONITORING_DIR / "rules").glob("*.yml")):
        rules = yaml.safe_load(path.read_text())
        for group in rules["groups"]:
            for rule in group["rules"]:
                if rule.get("alert") in SHORT_FOR:
                    rule["for"] = SHORT_FOR[rule["alert"]]
        (rules_dir / path.name).write_text(yaml.safe_dump(rules, sort_keys=False))
    config_path = workdir / "prometheus.yml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    for p in [workdir, rules_dir, *rules_dir.iterdir(), config_path]:
        p.chmod(0o755 if p.is_dir() else 0o644)  # read by the container's prometheus user
    return config_path, rules_dir


def diagnostics(dep: Deployment) -> str:
    out = []
    for project, files in dep.projects:
        result = dep.compose(project, files, "logs", "--no-color", "--tail", "40", timeout=60, check=False)
        out.append(f"--- {project}\n{result.stdout[-6000:]}{result.stderr[-1000:]}")
    return "\n".join(out)


@pytest.fixture(scope="module")
def dep(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    if shutil.which("docker") is None:
        pytest.fail("docker is required for compose tests")
    prefix = f"mon{uuid.uuid4().hex[:6]}-"
    network = f"{prefix}monitoring"
    workdir = tmp_path_factory.mktemp("monitoring")
    workdir.chmod(0o755)
    config_path, rules_dir = prepared_prometheus_files(workdir, prefix)
    ports = {name: free_port() for name in (
        "POSTGRES_HOST_PORT", "PGBOUNCER_HOST_PORT", "POSTGRES_EXPORTER_HOST_PORT",
        "PGBOUNCER_EXPORTER_HOST_PORT", "PROMETHEUS_HOST_PORT", "REPLICA_POSTGRES_HOST_PORT",
        "REPLICA_POSTGRES_EXPORTER_HOST_PORT",
    )}
    base_env = {
        # the caller's stack settings must not leak in (PATH, HOME, DOCKER_* and image overrides stay)
        **{k: v for k, v in os.environ.items()
           if not k.startswith(("POSTGRES_", "PG", "AZA_PG_", "COMPOSE_", "PROMETHEUS_"))
           or re.fullmatch(r"AZA_PG_\w*IMAGE", k)},
        "AZA_PG_NAME_PREFIX": prefix,
        "AZA_PG_MONITORING_NETWORK": network,
        "POSTGRES_PASSWORD": SUPERUSER_PASSWORD,
        "PG_REPLICATION_PASSWORD": "repl-" + uuid.uuid4().hex[:12],
        "PGBOUNCER_AUTH_PASS": "auth-" + uuid.uuid4().hex[:12],
        "POSTGRES_EXPORTER_PASSWORD": EXPORTER_PASSWORD,
        "PGBOUNCER_STATS_PASSWORD": STATS_PASSWORD,
        "PGBOUNCER_DEFAULT_POOL_SIZE": "1",
        "POSTGRES_MEMORY_LIMIT": "512m",
        "POSTGRES_MEMORY_RESERVATION": "256m",
        "POSTGRES_CPU_LIMIT": "1",
        "PROMETHEUS_CONFIG": str(config_path),
        "PROMETHEUS_RULES_DIR": str(rules_dir),
    }
    primary_env = {**base_env, **{k: str(v) for k, v in ports.items() if not k.startswith("REPLICA_")}}
    replica_env = {
        **base_env,
        "POSTGRES_HOST_PORT": str(ports["REPLICA_POSTGRES_HOST_PORT"]),
        "POSTGRES_EXPORTER_HOST_PORT": str(ports["REPLICA_POSTGRES_EXPORTER_HOST_PORT"]),
    }
    primary = (f"{prefix}primary", [str(PRIMARY_DIR / "compose.yml")])
    replica = (f"{prefix}replica",
               [str(REPLICA_DIR / "compose.yml"), str(REPLICA_DIR / "compose.same-host.yml")])
    monitoring = (f"{prefix}monitoring", [str(MONITORING_DIR / "compose.yml")])
    dep = Deployment(prefix=prefix, env=primary_env, prometheus_port=ports["PROMETHEUS_HOST_PORT"],
                     pgbouncer_port=ports["PGBOUNCER_HOST_PORT"], projects=[])
    run(["docker", "network", "create", network])
    try:
        dep.projects.append(primary)
        dep.compose(*primary, "up", "-d", "--no-build", "--wait", "--wait-timeout", str(int(UP_TIMEOUT)),
                    timeout=UP_TIMEOUT + 60)
        dep.projects.append(replica)
        dep.env = replica_env
        dep.compose(*replica, "up", "-d", "--no-build", "--wait", "--wait-timeout", str(int(UP_TIMEOUT)),
                    timeout=UP_TIMEOUT + 60)
        dep.projects.append(monitoring)
        dep.env = primary_env
        dep.compose(*monitoring, "up", "-d", "--no-build", "--wait", "--wait-timeout", "120", timeout=180)
        yield dep
    except BaseException:
        print(diagnostics(dep))  # shown by pytest with the failing test
        raise
    finally:
        for project, files in reversed(dep.projects):
            dep.compose(project, files, "down", "-v", "--remove-orphans", "--timeout", "20", timeout=180,
                        check=False)
        run(["docker", "network", "rm", network], check=False)


def test_every_prometheus_target_is_up(dep: Deployment) -> None:
    def all_up() -> list[dict[str, Any]] | None:
        targets = dep.api("/api/v1/targets")["activeTargets"]
        assert {t["labels"]["job"] for t in targets} == {"postgres", "pgbouncer", "prometheus"}
        return targets if all(t["health"] == "up" for t in targets) else None

    targets = wait_for("all targets up", all_up, timeout=120)
    instances = sorted(t["labels"]["instance"] for t in targets)
    assert instances == sorted([
        f"{dep.prefix}postgres-exporter-primary:9187", f"{dep.prefix}postgres-exporter-replica:9188",
        f"{dep.prefix}pgbouncer-exporter-primary:9127", "localhost:9090",
    ])


def test_each_guide_metric_has_a_series(dep: Deployment) -> None:
    for name in GUIDE_METRICS:
        wait_for(f"a series of {name}", lambda name=name: dep.query(name), timeout=90)
    # lag is a replica metric; pg_up is 1 on both servers
    lag = dep.query("pg_replication_lag_lag_seconds")
    assert {s["metric"]["stack"] for s in lag} == {"replica"}
    up = {s["metric"]["stack"]: s["value"][1] for s in dep.query("pg_up")}
    assert up == {"primary": "1", "replica": "1"}
    assert dep.query('pgbouncer_up == 1')
    # the replica streams, and its WAL receiver says so
    assert [s["value"][1] for s in dep.query("pg_wal_receiver_streaming")] == ["1"]


def test_memory_settings_show_where_each_value_came_from(dep: Deployment) -> None:
    series = wait_for("memory settings",
                      lambda: dep.query('pg_memory_settings_value_bytes{stack="primary"}'), 60)
    by_name = {s["metric"]["name"]: s["metric"] for s in series}
    assert {"shared_buffers", "work_mem", "effective_cache_size", "maintenance_work_mem"} <= set(by_name)
    # auto-config wrote shared_buffers into a configuration file (not PostgreSQL's default)
    shared = by_name["shared_buffers"]
    assert shared["source"] == "configuration file", shared
    assert shared["sourcefile"].startswith("/"), shared
    # the value is the one the server runs with
    running = dep.psql("postgres-primary", "SELECT pg_size_bytes(current_setting('shared_buffers'))")
    values = {s["metric"]["name"]: float(s["value"][1]) for s in series}
    assert values["shared_buffers"] == float(running)


def test_connection_usage_matches_the_server(dep: Deployment) -> None:
    max_conn = dep.psql("postgres-primary", "SHOW max_connections")
    series = dep.query('pg_connection_usage_max_conn{stack="primary"}')
    assert [s["value"][1] for s in series] == [max_conn]
    current = dep.query('pg_connection_usage_current_conn{stack="primary"}')
    assert float(current[0]["value"][1]) >= 1  # at least the exporter's own session


def test_exporters_hold_no_password_in_argv_or_environment(dep: Deployment) -> None:
    for container, secret in (("postgres-exporter-primary", EXPORTER_PASSWORD),
                              ("postgres-exporter-replica", EXPORTER_PASSWORD),
                              ("pgbouncer-exporter-primary", STATS_PASSWORD)):
        proc = run(["docker", "exec", dep.container(container), "sh", "-c",
                    "tr '\\0' '\\n' < /proc/1/cmdline; echo ---; tr '\\0' '\\n' < /proc/1/environ"]).stdout
        assert "PGPASSFILE=" in proc
        assert "exporter" in proc.split("---")[0]
        assert secret not in proc
        assert "PASSWORD" not in proc.split("---")[1]
    # and the exporter logs in as the least-privileged role
    roles = dep.psql("postgres-primary",
                     "SELECT usename FROM pg_stat_activity WHERE application_name = 'postgres_exporter'")
    assert set(roles.split()) == {"postgres_exporter"}


def test_paused_replay_raises_lag_and_the_lag_alert(dep: Deployment) -> None:
    dep.psql("postgres-primary", "CREATE TABLE IF NOT EXISTS mon_lag(x int); INSERT INTO mon_lag VALUES (0)")
    wait_for("replica caught up",
             lambda: dep.query('pg_replication_lag_lag_seconds{stack="replica"} == 0'), 60)
    dep.psql("postgres-replica", "SELECT pg_wal_replay_pause()")
    try:
        stop = time.monotonic() + 150
        samples: list[float] = []
        state: set[str] = set()
        while time.monotonic() < stop:
            dep.psql("postgres-primary", "INSERT INTO mon_lag SELECT generate_series(1, 100)")
            series = dep.query('pg_replication_lag_lag_seconds{stack="replica"}')
            if series:
                samples.append(float(series[0]["value"][1]))
            state = dep.alert_states("ReplicationLag")
            if state & {"pending", "firing"}:
                break
            time.sleep(3)
        assert state & {"pending", "firing"}, f"ReplicationLag never became pending; lag samples {samples}"
        rising = [s for s in samples if s > 0]
        assert len(rising) >= 2, samples
        assert rising[-1] > rising[0], samples
        assert max(samples) > 60
    finally:
        dep.psql("postgres-replica", "SELECT pg_wal_replay_resume()")
    wait_for("lag back to 0 after resume",
             lambda: dep.query('pg_replication_lag_lag_seconds{stack="replica"} == 0'), 60)


def _client(port: int, stop: threading.Event, errors: list[str]) -> None:
    try:
        with psycopg.connect(host="127.0.0.1", port=port, user="postgres", password=SUPERUSER_PASSWORD,
                             dbname="postgres", connect_timeout=20, autocommit=True) as conn:
            while not stop.is_set():
                conn.execute("SELECT pg_sleep(2)")
    except psycopg.Error as exc:
        if not stop.is_set():
            errors.append(str(exc))


def test_more_clients_than_the_pool_serves_fire_the_wait_alert(dep: Deployment) -> None:
    stop = threading.Event()
    errors: list[str] = []
    threads = [threading.Thread(target=_client, args=(dep.pgbouncer_port, stop, errors), daemon=True)
               for _ in range(WAIT_CLIENTS)]
    for thread in threads:
        thread.start()
    try:
        wait_for("pgbouncer_pools_cl_waiting > 10",
                 lambda: dep.query('pgbouncer_pools_cl_waiting{database="postgres"} > 10'), timeout=90)
        wait_for("PgBouncerHighWait firing", lambda: "firing" in dep.alert_states("PgBouncerHighWait"), 90)
        assert not errors, errors[:3]
        active = dep.query('sum(pgbouncer_pools_sv_active{database="postgres"})')
        assert 1 <= float(active[0]["value"][1]) <= 6  # pool of 1 plus at most the reserve pool of 5
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
    wait_for("waiting clients gone",
             lambda: not dep.query('pgbouncer_pools_cl_waiting{database="postgres"} > 0'), timeout=60)


def test_auto_config_memory_source_is_exported(dep: Deployment) -> None:
    """The stacks set mem_limit, so auto-config read the cgroup limit (v1 on these hosts), not meminfo."""
    series = wait_for("pg_autoconfig_info", lambda: dep.query("pg_autoconfig_info"), timeout=60)
    sources = {s["metric"]["stack"]: s["metric"]["memory_source"] for s in series}
    assert sources["primary"] in ("cgroup-v1", "cgroup-v2"), sources
    assert not dep.query('pg_autoconfig_info{memory_source="meminfo"}')


def test_guide_alerts_are_loaded_and_quiet_otherwise(dep: Deployment) -> None:
    groups = dep.api("/api/v1/rules")["groups"]
    names = {rule["name"] for group in groups for rule in group["rules"]}
    assert {"PostgresDown", "ReplicationLag", "PgBouncerHighWait", "HighConnections",
            "pgbouncer_pools_cl_active", "ReplicationSlotRetainingWal", "AutoConfigMemoryFromMeminfo",
            "ReplicaNotStreaming"} <= names
    assert all(rule.get("health") == "ok" for group in groups for rule in group["rules"]), groups
    firing = {a["labels"]["alertname"] for a in dep.api("/api/v1/alerts")["alerts"] if a["state"] == "firing"}
    assert not firing & {"PostgresDown", "PostgresExporterDown", "PgBouncerExporterDown", "PgBouncerDown",
                         "ReplicaNotStreaming", "HighConnections", "AutoConfigMemoryFromMeminfo"}, firing


def test_every_dashboard_query_returns_data(dep: Deployment) -> None:
    """The Grafana dashboard's queries, variables filled in, all return series from this Prometheus."""
    dashboard = json.loads((REPO / "examples/grafana/aza-pg-dashboard.json").read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel.get("targets", [])]
    assert len(exprs) >= 10
    for expr in exprs:
        concrete = expr.replace("$__rate_interval", "1m").replace("$instance", ".*")
        assert "$" not in concrete, expr
        wait_for(f"data for {concrete}", lambda q=concrete: dep.query(q), timeout=60)


def firing(dep: Deployment, name: str) -> list[dict[str, str]]:
    return [a["labels"] for a in dep.api("/api/v1/alerts")["alerts"]
            if a["labels"]["alertname"] == name and a["state"] == "firing"]


def test_outages_fire_their_alerts(dep: Deployment) -> None:
    """Last in the module: it stops services (the fixture's teardown removes everything anyway)."""
    run(["docker", "stop", "-t", "10", dep.container("pgbouncer-primary")], timeout=60)
    labels = wait_for("PgBouncerDown", lambda: firing(dep, "PgBouncerDown"), timeout=90)
    assert labels[0]["instance"] == f"{dep.prefix}pgbouncer-exporter-primary:9127"

    run(["docker", "stop", "-t", "10", dep.container("pgbouncer-exporter-primary")], timeout=60)
    labels = wait_for("PgBouncerExporterDown", lambda: firing(dep, "PgBouncerExporterDown"), timeout=90)
    assert labels[0]["job"] == "pgbouncer"

    run(["docker", "stop", "-t", "30", dep.container("postgres-primary")], timeout=90)
    labels = wait_for("PostgresDown", lambda: firing(dep, "PostgresDown"), timeout=90)
    assert {label["stack"] for label in labels} == {"primary"}
    labels = wait_for("ReplicaNotStreaming", lambda: firing(dep, "ReplicaNotStreaming"), timeout=90)
    assert {label["stack"] for label in labels} == {"replica"}
    # the exporters themselves stay reachable: a stopped database is not an exporter outage
    assert not firing(dep, "PostgresExporterDown")
