"""What ``pg_controldata`` says about a data directory: the hot-standby floors and the cluster state.

A standby replays WAL written under the primary's settings, so PostgreSQL refuses hot standby when the
standby's max_connections, max_worker_processes, max_wal_senders, max_prepared_transactions or
max_locks_per_transaction is below the primary's. The primary's current values are recorded in the control
file (and updated on the standby when it replays a parameter change), so the clone itself tells us the
floors; no connection to the primary is needed.

``parse`` is pure (tests feed it text); ``read`` runs the binary with the C locale, because the labels
are translated otherwise.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from entrypoint.errors import RuntimeFailure

# pg_controldata label -> the GUC it records.
FLOOR_LABELS: dict[str, str] = {
    "max_connections setting": "max_connections",
    "max_worker_processes setting": "max_worker_processes",
    "max_wal_senders setting": "max_wal_senders",
    "max_prepared_xacts setting": "max_prepared_transactions",
    "max_locks_per_xact setting": "max_locks_per_transaction",
}
FLOOR_NAMES: tuple[str, ...] = tuple(FLOOR_LABELS.values())


@dataclass(frozen=True)
class ControlData:
    floors: dict[str, int]
    cluster_state: str
    system_identifier: str


def parse(text: str) -> ControlData:
    """Parse ``pg_controldata`` output (C locale). Missing floor lines are an error: without them the
    standby's settings cannot be proven safe."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        label, sep, value = line.partition(":")
        if sep:
            fields[label.strip()] = value.strip()
    floors: dict[str, int] = {}
    for label, guc in FLOOR_LABELS.items():
        raw = fields.get(label)
        if raw is None or not raw.isdigit():
            raise RuntimeFailure(f"pg_controldata output has no usable '{label}' line (got {raw!r})")
        floors[guc] = int(raw)
    return ControlData(
        floors=floors,
        cluster_state=fields.get("Database cluster state", ""),
        system_identifier=fields.get("Database system identifier", ""),
    )


def read(pgdata: Path, bindir: Path) -> ControlData:
    """Run ``pg_controldata`` on ``pgdata`` and parse it."""
    try:
        done = subprocess.run(
            [str(bindir / "pg_controldata"), "-D", str(pgdata)],
            env={"LC_ALL": "C", "LANG": "C", "PATH": "/usr/bin:/bin"},
            capture_output=True, text=True, timeout=60, check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RuntimeFailure(f"cannot run pg_controldata on {pgdata}: {exc}") from None
    if done.returncode != 0:
        detail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeFailure(f"pg_controldata failed on {pgdata}: {detail}")
    return parse(done.stdout)
