"""The state of a replica's data directory: cluster, standby, or the remains of an interrupted clone.

A clone is made in ``$PGDATA/.aza-pg-clone`` (same volume, so moving it into place is a rename), then its
entries are renamed into ``$PGDATA`` with ``PG_VERSION`` last, after their names were recorded in
``$PGDATA/.aza-pg-clone.moving``. So at any instant:

- ``PG_VERSION`` present: a complete cluster. Only our own scratch names may be left over.
- no ``PG_VERSION`` but a move list: the move was interrupted; exactly the listed names are ours.
- no ``PG_VERSION`` and no move list: whatever clone ran was interrupted; only the scratch names are ours.

Anything else in a directory without ``PG_VERSION`` belongs to someone else and is never deleted.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from entrypoint.errors import RuntimeFailure

CLONE_DIR = ".aza-pg-clone"
MOVE_LIST = ".aza-pg-clone.moving"
CLONE_PASSFILE = ".aza-pg-clone.pgpass"
SCRATCH = (CLONE_DIR, CLONE_PASSFILE, MOVE_LIST)
# Present on freshly formatted volumes, or made by the postgres flow before the clone (its own directory,
# e.g. TLS key copies): kept, never counted as someone else's data.
AZA_DIR = "aza-pg"
IGNORED = frozenset({"lost+found", AZA_DIR})


@dataclass(frozen=True)
class DataDirState:
    exists: bool
    has_cluster: bool          # PG_VERSION is there (and the move, if any, had finished)
    standby_signal: bool
    leftovers: tuple[str, ...]  # names in PGDATA that an interrupted clone left and that are ours to delete
    foreign: tuple[str, ...]    # other names in a PGDATA without a cluster: never touched


@dataclass(frozen=True)
class PostmasterAddress:
    pid: int
    port: int
    socket_dir: str


def _move_list(pgdata: Path) -> list[str]:
    path = pgdata / MOVE_LIST
    try:
        names = json.loads(path.read_text())
    except (OSError, ValueError):
        return []  # a torn or unreadable list was written before any rename happened (it is atomic)
    if not isinstance(names, list):
        return []
    # Only plain names directly inside PGDATA, never a path that climbs out of it.
    return [n for n in names if isinstance(n, str) and n and "/" not in n and n not in (".", "..")]


def inspect(pgdata: Path) -> DataDirState:
    if not pgdata.exists():
        return DataDirState(exists=False, has_cluster=False, standby_signal=False, leftovers=(), foreign=())
    if not pgdata.is_dir():
        raise RuntimeFailure(f"PGDATA={pgdata} exists but is not a directory")
    try:
        present = {p.name for p in pgdata.iterdir()}
    except OSError as exc:
        raise RuntimeFailure(f"cannot list PGDATA={pgdata}: {exc.strerror or exc}") from None
    scratch = [n for n in SCRATCH if n in present]
    if "PG_VERSION" in present:
        return DataDirState(
            exists=True, has_cluster=True, standby_signal="standby.signal" in present,
            leftovers=tuple(scratch), foreign=(),
        )
    moved = [n for n in _move_list(pgdata) if n in present and n not in SCRATCH]
    ours = set(moved) | set(scratch)
    foreign = sorted(present - ours - IGNORED)
    return DataDirState(
        exists=True, has_cluster=False, standby_signal=False,
        leftovers=tuple(moved + scratch), foreign=tuple(foreign),
    )


def postmaster_address(pgdata: Path) -> PostmasterAddress | None:
    """Port and socket directory of the running server, from ``postmaster.pid`` (None when it is absent)."""
    try:
        lines = (pgdata / "postmaster.pid").read_text().splitlines()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise RuntimeFailure(f"cannot read {pgdata / 'postmaster.pid'}: {exc.strerror or exc}") from None
    try:
        pid, port = int(lines[0]), int(lines[3])
    except (IndexError, ValueError):
        raise RuntimeFailure(f"{pgdata / 'postmaster.pid'} is incomplete (server still starting?)") from None
    socket_dir = lines[4].strip() if len(lines) > 4 else ""
    return PostmasterAddress(pid=pid, port=port, socket_dir=socket_dir)
