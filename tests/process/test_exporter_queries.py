"""The exporter's custom queries run as the least-privilege monitoring role against a server the real
entrypoint set up (no Docker): every query succeeds as `postgres_exporter` (pg_monitor only), returns the
columns queries.yaml declares, and reports what the server really runs with.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml

from tests.process.pgharness import Instance

pytestmark = pytest.mark.process

QUERIES = Path(__file__).resolve().parents[2] / "image/exporters/queries.yaml"
EXPORTER_PASSWORD = "p@ss w:rd/'\"\\%#?&=x"


def declared_columns(spec: dict[str, Any]) -> list[str]:
    return [next(iter(column)) for column in spec["metrics"]]


@pytest.fixture(scope="module")
def pg() -> Iterator[Instance]:
    env = {"POSTGRES_ROLE": "primary", "PG_REPLICATION_PASSWORD": "repl-secret",
           "POSTGRES_EXPORTER_PASSWORD": EXPORTER_PASSWORD}
    with Instance.create(env=env, memory_mb=1024, cpus=2) as instance:
        instance.start()
        yield instance


@pytest.fixture
def exporter(pg: Instance) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(host="127.0.0.1", port=pg.port, user="postgres_exporter", password=EXPORTER_PASSWORD,
                         dbname="postgres", autocommit=True, connect_timeout=10) as conn:
        yield conn


def run_all(conn: psycopg.Connection[Any]) -> dict[str, list[dict[str, Any]]]:
    results = {}
    for namespace, spec in yaml.safe_load(QUERIES.read_text()).items():
        cur = conn.execute(spec["query"])
        assert cur.description is not None
        assert [col.name for col in cur.description] == declared_columns(spec), namespace
        results[namespace] = [dict(zip(declared_columns(spec), row, strict=True)) for row in cur.fetchall()]
    return results


def test_monitoring_role_is_least_privileged(pg: Instance) -> None:
    with pg.connect() as conn:
        row = conn.execute(
            "SELECT rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls, "
            "ARRAY(SELECT b.rolname::text FROM pg_auth_members m JOIN pg_roles b ON b.oid = m.roleid "
            "      WHERE m.member = r.oid ORDER BY 1) FROM pg_roles r WHERE rolname = 'postgres_exporter'"
        ).fetchone()
    assert row == (False, False, False, False, False, ["pg_monitor"])


def test_every_query_runs_as_the_monitoring_role(pg: Instance, exporter: psycopg.Connection[Any]) -> None:
    results = run_all(exporter)
    # a primary: no replica-only rows, one row for each server-wide query
    assert results["pg_replication_lag"] == []
    assert results["pg_wal_receiver"] == []
    for namespace in ("pg_postmaster", "pg_connection_usage", "pg_autoconfig", "pg_temp_usage"):
        assert len(results[namespace]) == 1, namespace
    assert results["pg_postmaster"][0]["uptime_seconds"] > 0
    usage = results["pg_connection_usage"][0]
    with pg.connect() as conn:
        max_connections = conn.execute("SELECT current_setting('max_connections')::int").fetchone()
    assert max_connections is not None
    assert usage["max_conn"] == max_connections[0]
    assert usage["current_conn"] >= 1  # this very session


def test_memory_settings_name_the_auto_config_file(pg: Instance, exporter: psycopg.Connection[Any]) -> None:
    rows = {row["name"]: row for row in run_all(exporter)["pg_memory_settings"]}
    with pg.connect() as conn:
        running = conn.execute(
            "SELECT name, pg_size_bytes(current_setting(name))::float8 FROM unnest(ARRAY["
            "'shared_buffers', 'work_mem', 'maintenance_work_mem', 'effective_cache_size']) AS name"
        ).fetchall()
    for name, value in running:
        assert rows[name]["value_bytes"] == value, name
        assert rows[name]["source"] == "configuration file", rows[name]
        assert rows[name]["sourcefile"].endswith("/aza-pg/conf.d/10-auto-config.conf"), rows[name]
    # a setting auto-config leaves alone keeps PostgreSQL's default
    assert rows["temp_buffers"]["source"] == "default"


def test_auto_config_facts_are_readable(exporter: psycopg.Connection[Any]) -> None:
    (row,) = run_all(exporter)["pg_autoconfig"]
    assert row["memory_source"] == "manual"  # the harness pins POSTGRES_MEMORY=1024
    assert row["memory_bytes"] == 1024 * 1024 * 1024
    assert row["cpus"] == 2
    assert row["info"] == 1


def test_replication_slot_retention_is_reported(pg: Instance, exporter: psycopg.Connection[Any]) -> None:
    slots = {row["slot_name"]: row for row in run_all(exporter)["pg_replication_slot_retained"]}
    with pg.connect() as conn:
        names = {r[0] for r in conn.execute("SELECT slot_name FROM pg_replication_slots").fetchall()}
    assert set(slots) == names
    for row in slots.values():
        assert row["wal_bytes"] >= 0
        assert row["active"] in ("true", "false")


def test_temp_usage_sees_a_spilled_cursor(pg: Instance, exporter: psycopg.Connection[Any]) -> None:
    assert run_all(exporter)["pg_temp_usage"][0]["bytes"] == 0
    with pg.connect() as conn:
        conn.execute("SET work_mem = '64kB'")
        with conn.transaction():
            conn.execute("DECLARE spill CURSOR WITH HOLD FOR "
                         "SELECT g, repeat('x', 100) FROM generate_series(1, 100000) g ORDER BY g DESC")
        (row,) = run_all(exporter)["pg_temp_usage"]
        assert row["files"] >= 1
        assert row["bytes"] > 1_000_000
        conn.execute("CLOSE spill")
    assert run_all(exporter)["pg_temp_usage"][0]["bytes"] == 0
