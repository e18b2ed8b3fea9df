"""promtool (from the built Prometheus image) accepts the shipped configuration, rules and rule tests.

CI has no host promtool; the `prometheus` image target installs Debian's, so the check runs with exactly the
Prometheus version the monitoring example ships. examples/prometheus is mounted read-only.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.compose

REPO = Path(__file__).resolve().parents[2]
PROM_DIR = REPO / "examples/prometheus"
IMAGE = os.environ.get("AZA_PG_PROMETHEUS_IMAGE", "aza-pg/prometheus:17")


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", "run", "--rm", "--network", "none", "-v", f"{PROM_DIR}:/cfg:ro", "-w", "/cfg",
         "--entrypoint", "promtool", IMAGE, *args],
        capture_output=True, text=True, timeout=120, check=False,
    )


def test_promtool_check_config() -> None:
    result = promtool("check", "config", "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 2 rule files found" in result.stdout


def test_promtool_check_rules() -> None:
    rules = sorted(p.name for p in (PROM_DIR / "rules").glob("*.yml"))
    result = promtool("check", "rules", *(f"rules/{name}" for name in rules))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(rules)


def test_promtool_rule_unit_tests() -> None:
    result = promtool("test", "rules", "tests/rules_test.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_rejects_a_broken_rule(tmp_path: Path) -> None:
    """The check above can fail: the same promtool refuses a rule with a PromQL error."""
    bad = tmp_path / "bad.yml"
    bad.write_text("groups:\n  - name: x\n    rules:\n      - alert: Broken\n        expr: pg_up ==\n")
    bad.chmod(0o644)
    tmp_path.chmod(0o755)
    result = subprocess.run(
        ["docker", "run", "--rm", "--network", "none", "-v", f"{tmp_path}:/cfg:ro",
         "--entrypoint", "promtool", IMAGE, "check", "rules", "/cfg/bad.yml"],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode != 0
    assert "FAILED" in result.stdout + result.stderr
