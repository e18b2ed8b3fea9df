"""The files generated from manifest.yaml are up to date, and the generator follows a changed copy."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
GEN = REPO / "scripts" / "gen_extensions.py"
GENERATED = ("image/packages/extensions.txt", "image/extensions.json", "docs/EXTENSIONS.md")


def gen(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(GEN), *args], capture_output=True, text=True, timeout=60,
                          check=False)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of the manifest and the generated files (what the generator reads and writes)."""
    for rel in ("manifest.yaml", *GENERATED):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / rel, tmp_path / rel)
    return tmp_path


def disable(root: Path, name: str, reason: str = "not needed here") -> None:
    """Disable one entry in the copy's manifest.yaml by editing the YAML text, as a user would."""
    path = root / "manifest.yaml"
    text = path.read_text()
    block = re.compile(rf"(  - name: {re.escape(name)}\n(?:    .*\n)+)")
    match = block.search(text)
    assert match, name
    new = match.group(1).replace("    enabled: true\n", "    enabled: false\n")
    new = new.replace("    preload: true\n", "    preload: false\n")
    new = new.replace("    first_boot: true\n", "    first_boot: false\n")
    new += f"    reason: {reason}\n"
    path.write_text(text.replace(match.group(1), new))


def test_repository_files_are_up_to_date() -> None:
    result = gen("--check")
    assert result.returncode == 0, result.stderr


def test_generated_files_agree_with_the_manifest_counts() -> None:
    packages = (REPO / "image/packages/extensions.txt").read_text().splitlines()
    assert "postgresql-17-pgq3" not in packages
    assert packages == sorted(set(packages))
    runtime = json.loads((REPO / "image/extensions.json").read_text())
    assert len(runtime["catalog"]) == 38
    assert sum(e["enabled"] for e in runtime["catalog"]) == 37
    doc = (REPO / "docs/EXTENSIONS.md").read_text()
    assert "38 total catalog entries (37 enabled extensions, 1 disabled: pgq)" in doc
    assert "## Enabling and disabling extensions" in doc


def test_check_names_each_stale_file_and_changes_nothing(tree: Path) -> None:
    assert gen("--root", str(tree), "--check").returncode == 0
    disable(tree, "pgvector")
    before = {rel: (tree / rel).read_text() for rel in GENERATED}
    result = gen("--root", str(tree), "--check")
    assert result.returncode == 1
    for rel in GENERATED:
        assert f"out of date: {rel}" in result.stderr
        assert (tree / rel).read_text() == before[rel]


def test_disabling_one_more_entry_removes_it_everywhere(tree: Path) -> None:
    disable(tree, "pgvector")
    disable(tree, "pg_cron", reason="jobs run outside the database")
    (tree / "README.md").write_text("The image has 38 total catalog entries (37 enabled extensions, "
                                    "1 disabled: pgq). More text.\n")
    result = gen("--root", str(tree))
    assert result.returncode == 0, result.stderr
    assert "wrote image/packages/extensions.txt" in result.stdout

    packages = (tree / "image/packages/extensions.txt").read_text().splitlines()
    assert "postgresql-17-pgvector" not in packages
    assert "postgresql-17-cron" not in packages
    assert "postgresql-17-timescaledb" in packages

    runtime = json.loads((tree / "image/extensions.json").read_text())
    assert "pg_cron" not in runtime["default_shared_preload_libraries"]
    assert runtime["default_shared_preload_libraries"] == [
        "pg_stat_statements", "auto_explain", "timescaledb", "pgaudit"]
    assert runtime["first_boot_extensions"] == ["pg_stat_statements", "pgaudit"]
    by = {e["name"]: e for e in runtime["catalog"]}
    assert by["pgvector"]["enabled"] is False

    doc = (tree / "docs/EXTENSIONS.md").read_text()
    assert "38 total catalog entries (35 enabled extensions, 3 disabled: pgvector, pg_cron, pgq)" in doc
    enabled_table, disabled_table = doc.split("Disabled (not installed", 1)
    assert "| pgvector |" not in enabled_table
    assert "| pgvector | extension | `postgresql-17-pgvector` | not needed here |" in disabled_table
    assert "pg_cron" not in doc.split("Default `shared_preload_libraries`:")[1].splitlines()[0]
    # The hand-written prose around the generated regions is kept.
    assert "## Enabling and disabling extensions" in doc
    assert (tree / "README.md").read_text() == (
        "The image has 38 total catalog entries (35 enabled extensions, 3 disabled: pgvector, pg_cron, pgq). "
        "More text.\n")
    assert gen("--root", str(tree), "--check").returncode == 0


def test_manifest_option_reads_another_file(tree: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.yaml"
    shutil.copy2(tree / "manifest.yaml", other)
    disable(tree, "hll")  # the tree's own manifest changes, the one passed by --manifest does not
    assert gen("--root", str(tree), "--manifest", str(other), "--check").returncode == 0


def test_malformed_manifest_changes_nothing_and_reports_each_problem(tree: Path) -> None:
    path = tree / "manifest.yaml"
    text = path.read_text()
    text = text.replace("  - name: postgis\n    kind: extension\n    enabled: true\n",
                        "  - name: postgis\n    kind: extension\n    enabled: false\n", 1)
    text = text.replace("  - name: hll\n    kind: extension\n", "  - name: hll\n    kind: plugin\n", 1)
    path.write_text(text)
    before = {rel: (tree / rel).read_text() for rel in GENERATED}
    result = gen("--root", str(tree))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert f"{path}: entry 'postgis': disabled entry needs a reason" in lines
    assert f"{path}: entry 'pgrouting': requires 'postgis', which is disabled" in lines
    assert f"{path}: entry 'hll': kind must be one of extension, module, tool, got 'plugin'" in lines
    assert len(lines) == 3
    assert all("Traceback" not in line for line in lines)
    assert {rel: (tree / rel).read_text() for rel in GENERATED} == before


def test_invalid_yaml_is_one_line(tree: Path) -> None:
    (tree / "manifest.yaml").write_text("pg_major: [17\n")
    result = gen("--root", str(tree))
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "not valid YAML" in result.stderr
