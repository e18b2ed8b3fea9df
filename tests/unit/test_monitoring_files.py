"""The shipped monitoring files agree with each other and with what the exporters really serve.

The exporters' built-in metric names come from captures of the real binaries (fixtures/monitoring/); the
custom ones are derived from image/exporters/queries.yaml the way postgres_exporter derives them
(<namespace>_<column>); recorded names come from the recording rules. Every metric a rule or a dashboard
panel uses must be one of those, so a typo or a renamed exporter metric fails here instead of silently
producing an alert that can never fire. promtool itself runs in tests/compose/test_promtool.py.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
QUERIES = ROOT / "image/exporters/queries.yaml"
PROM_DIR = ROOT / "examples/prometheus"
RULES_DIR = PROM_DIR / "rules"
DASHBOARD = ROOT / "examples/grafana/aza-pg-dashboard.json"
FIXTURES = Path(__file__).parent / "fixtures/monitoring"

GUIDE_PG_METRICS = {
    "pg_up", "pg_replication_lag_lag_seconds", "pg_postmaster_uptime_seconds",
    "pg_memory_settings_value_bytes", "pg_connection_usage_current_conn", "pg_connection_usage_max_conn",
}
GUIDE_PGBOUNCER_METRICS = {
    "pgbouncer_pools_cl_active", "pgbouncer_pools_sv_active", "pgbouncer_pools_cl_waiting",
}
GUIDE_ALERTS = {
    "PostgresDown": ("pg_up == 0", "1m"),
    "ReplicationLag": ("pg_replication_lag_lag_seconds > 60", "5m"),
    "PgBouncerHighWait": ("pgbouncer_pools_cl_waiting > 10", "2m"),
    "HighConnections": ("pg_connection_usage_current_conn / pg_connection_usage_max_conn > 0.85", "5m"),
}

_PROMQL_WORDS = {
    "and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset",
    "inf", "nan", "sum", "min", "max", "avg", "count", "stddev", "stdvar", "topk", "bottomk", "quantile",
    "count_values", "group",
}


def promql_metric_names(expr: str) -> set[str]:
    """Metric names used by a PromQL expression (good enough for the expressions we write)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # string literals
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # range selectors
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    text = re.sub(r"\$\{?\w+\}?", "", text)  # Grafana variables
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        word = match.group(0)
        following = text[match.end():].lstrip()
        if following.startswith("(") or word.lower() in _PROMQL_WORDS:
            continue
        if re.fullmatch(r"\d+[smhdwy]", text[max(0, match.start() - 1):match.end()]):
            continue
        names.add(word)
    return names


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def custom_metric_names() -> set[str]:
    names = set()
    for namespace, spec in load_yaml(QUERIES).items():
        for column in spec["metrics"]:
            ((name, props),) = column.items()
            if props["usage"] in ("GAUGE", "COUNTER"):
                names.add(f"{namespace}_{name}")
    return names


def fixture_names(name: str) -> set[str]:
    lines = (FIXTURES / name).read_text().splitlines()
    return {line.strip() for line in lines if line.strip() and not line.startswith("#")}


def rule_groups() -> list[dict[str, Any]]:
    groups: list[dict[str, Any]] = []
    for path in sorted(RULES_DIR.glob("*.yml")):
        groups.extend(load_yaml(path)["groups"])
    return groups


def all_rules() -> list[dict[str, Any]]:
    return [rule for group in rule_groups() for rule in group["rules"]]


def recorded_names() -> set[str]:
    return {rule["record"] for rule in all_rules() if "record" in rule}


def known_metrics() -> set[str]:
    return (
        fixture_names("postgres_exporter-0.17.1.txt")
        | fixture_names("pgbouncer_exporter-0.10.2.txt")
        | custom_metric_names()
        | recorded_names()
        | {"up"}
    )


def test_promql_name_extraction_skips_functions_labels_and_durations() -> None:
    expr = (
        'sum by (instance, database) (rate(pg_stat_database_xact_commit{datname!~"template.*"}[5m])) '
        "> on (instance, job) group_left () clamp_min(2 * pg_settings_max_wal_size_bytes, 1073741824)"
    )
    assert promql_metric_names(expr) == {"pg_stat_database_xact_commit", "pg_settings_max_wal_size_bytes"}


def test_queries_yaml_is_well_formed() -> None:
    queries = load_yaml(QUERIES)
    assert isinstance(queries, dict)
    for namespace, spec in queries.items():
        assert namespace.startswith("pg_"), namespace
        assert spec["query"].strip().upper().startswith("SELECT"), namespace
        usages = []
        for column in spec["metrics"]:
            ((name, props),) = column.items()
            assert re.fullmatch(r"[a-z_]+", name), name
            assert props["usage"] in ("LABEL", "GAUGE", "COUNTER"), (namespace, name)
            assert props["description"], (namespace, name)
            usages.append(props["usage"])
            # every declared column is selected by the query
            assert re.search(rf"\b{name}\b", spec["query"]), (namespace, name)
        assert {"GAUGE", "COUNTER"} & set(usages), f"{namespace} has no value column"


def test_custom_queries_do_not_clash_with_builtin_metrics() -> None:
    assert not custom_metric_names() & fixture_names("postgres_exporter-0.17.1.txt")


def test_queries_need_no_superuser_objects() -> None:
    # pg_monitor cannot read these; a query using them would fail for the postgres_exporter role
    text = QUERIES.read_text().lower()
    for forbidden in ("pg_authid", "pg_shadow", "pg_read_file", "pg_ls_dir(", "pg_stat_file"):
        assert forbidden not in text


def test_the_guides_postgres_metrics_are_produced() -> None:
    produced = fixture_names("postgres_exporter-0.17.1.txt") | custom_metric_names()
    assert produced >= GUIDE_PG_METRICS


def test_memory_settings_carry_name_and_source_labels() -> None:
    spec = load_yaml(QUERIES)["pg_memory_settings"]
    labels = {next(iter(c)) for c in spec["metrics"] if next(iter(c.values()))["usage"] == "LABEL"}
    assert labels == {"name", "source", "sourcefile"}
    for setting in ("shared_buffers", "effective_cache_size", "work_mem", "maintenance_work_mem"):
        assert f"'{setting}'" in spec["query"]


def test_the_guides_pgbouncer_names_are_recorded_from_real_exporter_metrics() -> None:
    exporter = fixture_names("pgbouncer_exporter-0.10.2.txt")
    records = {rule["record"]: rule["expr"].strip() for rule in all_rules() if "record" in rule}
    assert set(records) >= GUIDE_PGBOUNCER_METRICS
    assert records["pgbouncer_pools_cl_active"] == "pgbouncer_pools_client_active_connections"
    assert records["pgbouncer_pools_cl_waiting"] == "pgbouncer_pools_client_waiting_connections"
    assert records["pgbouncer_pools_sv_active"] == "pgbouncer_pools_server_active_connections"
    for expr in records.values():
        assert promql_metric_names(expr) <= exporter, expr
    # a recorded name must not shadow something the exporter already serves
    assert not set(records) & exporter


def test_guide_alerts_are_shipped_unchanged() -> None:
    alerts = {rule["alert"]: rule for rule in all_rules() if "alert" in rule}
    for name, (expr, duration) in GUIDE_ALERTS.items():
        assert alerts[name]["expr"].strip() == expr
        assert alerts[name]["for"] == duration


def test_extra_alerts_exist() -> None:
    alerts = {rule["alert"] for rule in all_rules() if "alert" in rule}
    assert alerts >= {
        "ReplicationSlotRetainingWal", "PostgresExporterDown", "PgBouncerExporterDown", "PgBouncerDown",
        "ReplicaNotStreaming", "AutoConfigMemoryFromMeminfo",
    }


def test_every_alert_has_severity_and_summary() -> None:
    for rule in all_rules():
        if "alert" in rule:
            assert rule["labels"]["severity"] in ("warning", "critical"), rule["alert"]
            assert rule["annotations"]["summary"], rule["alert"]


def test_rules_use_only_metrics_we_produce() -> None:
    known = known_metrics()
    for rule in all_rules():
        unknown = promql_metric_names(rule["expr"]) - known
        assert not unknown, f"{rule.get('alert') or rule.get('record')}: {sorted(unknown)}"


def test_rule_unit_tests_cover_every_alert() -> None:
    tests = load_yaml(PROM_DIR / "tests/rules_test.yml")
    tested = {
        case["alertname"] for group in tests["tests"] for case in group.get("alert_rule_test", [])
        if case["exp_alerts"]
    }
    alerts = {rule["alert"] for rule in all_rules() if "alert" in rule}
    assert alerts == tested
    rule_files = {(PROM_DIR / "tests" / f).resolve() for f in tests["rule_files"]}
    assert rule_files == {p.resolve() for p in RULES_DIR.glob("*.yml")}


def test_prometheus_config_has_the_guides_jobs_and_ports() -> None:
    config = load_yaml(PROM_DIR / "prometheus.yml")
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    targets = {
        name: [t for sc in job["static_configs"] for t in sc["targets"]] for name, job in jobs.items()
    }
    assert [t.rsplit(":", 1)[1] for t in targets["postgres"]] == ["9187", "9188"]
    assert [t.rsplit(":", 1)[1] for t in targets["pgbouncer"]] == ["9127"]
    assert config["rule_files"] == ["rules/*.yml"]
    assert sorted(PROM_DIR.glob(config["rule_files"][0]))  # the glob matches the shipped rule files


def dashboard_exprs() -> list[str]:
    dash = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in dash["panels"] for target in panel.get("targets", [])]


def test_dashboard_uses_only_metrics_we_produce() -> None:
    known = known_metrics()
    for expr in dashboard_exprs():
        unknown = promql_metric_names(expr) - known
        assert not unknown, f"{expr}: {sorted(unknown)}"


def test_dashboard_covers_connections_tps_lag_pools_and_memory() -> None:
    used = set().union(*(promql_metric_names(e) for e in dashboard_exprs()))
    assert used >= {
        "pg_connection_usage_current_conn", "pg_connection_usage_max_conn", "pg_stat_database_xact_commit",
        "pg_replication_lag_lag_seconds", "pgbouncer_pools_cl_active", "pgbouncer_pools_cl_waiting",
        "pgbouncer_pools_sv_active", "pg_memory_settings_value_bytes",
    }
    dash = json.loads(DASHBOARD.read_text())
    ids = [panel["id"] for panel in dash["panels"]]
    assert len(ids) == len(set(ids))
