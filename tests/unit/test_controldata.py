"""pg_controldata parsing: the primary's settings a hot standby must not go below."""

from __future__ import annotations

import pytest

from entrypoint.detect import controldata
from entrypoint.errors import RuntimeFailure

pytestmark = pytest.mark.unit

# Real PostgreSQL 15 output (C locale) of a freshly cloned standby, trimmed of lines that do not matter.
PG15 = """\
pg_control version number:            1300
Catalog version number:               202209061
Database system identifier:           7714982761969310613
Database cluster state:               shut down in recovery
pg_control last modified:             Thu Dec  3 07:57:30 2026
Latest checkpoint location:           0/2000060
Latest checkpoint's oldestCommitTsXid:0
wal_level setting:                    replica
wal_log_hints setting:                off
max_connections setting:              240
max_worker_processes setting:         12
max_wal_senders setting:              16
max_prepared_xacts setting:           5
max_locks_per_xact setting:           128
track_commit_timestamp setting:       off
Maximum data alignment:               8
Mock authentication nonce:            1a82852e3deaa5ec26f9db4c2d330279ab0b9997c9b2c8111c3745624ac38e81
"""


def test_floors_are_read_under_their_guc_names() -> None:
    data = controldata.parse(PG15)
    assert data.floors == {
        "max_connections": 240,
        "max_worker_processes": 12,
        "max_wal_senders": 16,
        "max_prepared_transactions": 5,
        "max_locks_per_transaction": 128,
    }


def test_cluster_state_and_identifier() -> None:
    data = controldata.parse(PG15)
    assert data.cluster_state == "shut down in recovery"
    assert data.system_identifier == "7714982761969310613"


def test_floor_names_cover_every_hot_standby_parameter() -> None:
    assert set(controldata.FLOOR_NAMES) == {
        "max_connections", "max_worker_processes", "max_wal_senders", "max_prepared_transactions",
        "max_locks_per_transaction",
    }


@pytest.mark.parametrize("label", list(controldata.FLOOR_LABELS))
def test_a_missing_floor_line_is_an_error(label: str) -> None:
    text = "\n".join(line for line in PG15.splitlines() if not line.startswith(label))
    with pytest.raises(RuntimeFailure, match=label):
        controldata.parse(text)


def test_translated_output_is_refused_rather_than_guessed() -> None:
    german = PG15.replace("max_connections setting", "max_connections-Einstellung")
    with pytest.raises(RuntimeFailure, match="max_connections setting"):
        controldata.parse(german)


def test_a_non_numeric_value_is_an_error() -> None:
    with pytest.raises(RuntimeFailure, match="max_wal_senders"):
        controldata.parse(PG15.replace("max_wal_senders setting:              16",
                                       "max_wal_senders setting:              lots"))


def test_read_reports_a_directory_that_is_not_a_cluster(tmp_path: pytest.TempPathFactory) -> None:
    from pathlib import Path

    bindir = Path("/usr/lib/postgresql/15/bin")
    if not (bindir / "pg_controldata").exists():
        pytest.skip("PostgreSQL 15 binaries not installed")
    with pytest.raises(RuntimeFailure, match="pg_controldata failed"):
        controldata.read(Path(str(tmp_path)), bindir)
