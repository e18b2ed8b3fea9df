"""AGENTS.md's Auto-Config table must be what the code computes (scripts/gen_agents_table.py --check)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts/gen_agents_table.py"


def check(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--check", "--file", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_agents_md_matches_the_code() -> None:
    result = check(ROOT / "AGENTS.md")
    assert result.returncode == 0, result.stdout + result.stderr


def test_drift_is_detected_and_regeneration_fixes_it(tmp_path: Path) -> None:
    text = (ROOT / "AGENTS.md").read_text(encoding="utf-8")
    row = "| 2 GB | mixed | 512MB | 1536MB | 64MB |"
    assert row in text
    drifted = tmp_path / "AGENTS.md"
    drifted.write_text(text.replace(row, "| 2 GB | mixed | 640MB | 1536MB | 64MB |"), encoding="utf-8")
    result = check(drifted)
    assert result.returncode == 1
    assert "out of date" in result.stdout
    subprocess.run(
        [sys.executable, str(SCRIPT), "--file", str(drifted)], check=True, timeout=60, capture_output=True
    )
    assert drifted.read_text(encoding="utf-8") == text


def test_missing_markers_are_an_error(tmp_path: Path) -> None:
    bare = tmp_path / "AGENTS.md"
    bare.write_text("# no table here\n", encoding="utf-8")
    result = check(bare)
    assert result.returncode != 0
    assert "markers are missing" in result.stderr
