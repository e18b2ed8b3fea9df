"""What is on disk: the data directory's state, the PostgreSQL binaries, the user's config sources.

Read-only. ``inspect(pgdata)`` never creates or changes anything, so the flow can call it before it
decides whether the start is valid.

"Initialised" means ``PG_VERSION`` exists in PGDATA. aza-pg's first boot builds the cluster in
``PGDATA/.aza-pg-staging`` and moves ``PG_VERSION`` in last, so an interrupted or failed first boot
leaves no ``PG_VERSION`` and the next start initialises again instead of coming up half-made.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

AZA_DIR = "aza-pg"
STAGING = ".aza-pg-staging"
STATE_FILE = "state.json"
INCLUDE_LINE = "include_dir = 'aza-pg/conf.d'"
# Entries allowed in a PGDATA that has no cluster yet (a fresh volume's lost+found, our own dirs).
IGNORABLE = frozenset({"lost+found", AZA_DIR, STAGING})


@dataclass(frozen=True)
class PgdataState:
    path: Path
    exists: bool
    initialised: bool
    pg_major: int | None
    owner_uid: int | None
    foreign_entries: tuple[str, ...] = ()  # non-ignorable entries when not initialised
    staging_leftover: bool = False
    has_include: bool = False  # postgresql.conf includes aza-pg/conf.d
    state: Mapping[str, Any] = field(default_factory=dict)


def _major(text: str) -> int | None:
    head = text.strip().split(".", 1)[0]
    return int(head) if head.isdigit() else None


def read_state(pgdata: Path) -> dict[str, Any]:
    try:
        data = json.loads((pgdata / AZA_DIR / STATE_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def inspect(pgdata: Path) -> PgdataState:
    try:
        st = pgdata.stat()
    except FileNotFoundError:
        return PgdataState(pgdata, False, False, None, None)
    except PermissionError:
        return PgdataState(pgdata, True, False, None, None)
    try:
        version = (pgdata / "PG_VERSION").read_text()
    except FileNotFoundError:
        version = None
    except PermissionError:  # started as root on a volume owned by postgres with 0700: root can read
        version = None
    if version is not None:
        conf = ""
        with contextlib.suppress(OSError):
            conf = (pgdata / "postgresql.conf").read_text(errors="replace")
        return PgdataState(
            pgdata,
            True,
            True,
            _major(version),
            st.st_uid,
            has_include=any(line.strip() == INCLUDE_LINE for line in conf.splitlines()),
            state=read_state(pgdata),
        )
    try:
        entries = sorted(os.listdir(pgdata))
    except OSError:
        entries = []
    return PgdataState(
        pgdata,
        True,
        False,
        None,
        st.st_uid,
        foreign_entries=tuple(e for e in entries if e not in IGNORABLE),
        staging_leftover=STAGING in entries,
    )


# --- binaries ---------------------------------------------------------------------------------------


def find_bindir(override: Path | None, root: Path = Path("/")) -> Path | None:
    """PG_BINDIR, else the newest /usr/lib/postgresql/<major>/bin with a postgres binary, else PATH."""
    if override is not None:
        return override if (override / "postgres").exists() else None
    base = root / "usr/lib/postgresql"
    candidates: list[tuple[int, Path]] = []
    with contextlib.suppress(OSError):
        for entry in base.iterdir():
            if entry.name.isdigit() and (entry / "bin" / "postgres").exists():
                candidates.append((int(entry.name), entry / "bin"))
    if candidates:
        return max(candidates)[1]
    found = shutil.which("postgres")
    return Path(os.path.realpath(found)).parent if found else None


def bindir_major(bindir: Path) -> int | None:
    """The major version from a Debian-style path (/usr/lib/postgresql/15/bin), else None."""
    return int(bindir.parent.name) if bindir.parent.name.isdigit() else None


def binary_id(bindir: Path) -> str:
    """Identifies the server binary (path, size, mtime): a changed binary means re-validating the config."""
    try:
        st = (bindir / "postgres").stat()
    except OSError:
        return str(bindir)
    return f"{bindir}:{st.st_size}:{st.st_mtime_ns}"


def installed_libraries(bindir: Path) -> set[str]:
    """Names (without .so) of the loadable libraries next to the binaries ($libdir)."""
    libdir = bindir.parent / "lib"
    try:
        return {p.name[:-3] for p in libdir.iterdir() if p.name.endswith(".so")}
    except OSError:
        return set()


# --- what the user set ------------------------------------------------------------------------------

_LINE = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_$]*(?:\.[A-Za-z_][A-Za-z0-9_$]*)?)\s*=?\s*(.*)")


def _value(rest: str) -> str:
    rest = rest.strip()
    if rest.startswith("'"):
        out = []
        i = 1
        while i < len(rest):
            ch = rest[i]
            if ch == "\\" and i + 1 < len(rest):
                out.append(rest[i + 1])
                i += 2
                continue
            if ch == "'":
                if rest[i + 1 : i + 2] == "'":
                    out.append("'")
                    i += 2
                    continue
                break
            out.append(ch)
            i += 1
        return "".join(out)
    return rest.split("#", 1)[0].split()[0] if rest.split("#", 1)[0].strip() else ""


def parse_conf(text: str) -> dict[str, str]:
    """Top-level ``name = value`` settings of a postgresql.conf-style text (last one wins).

    Include directives are not followed (their names are skipped); values are returned unquoted.
    """
    out: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _LINE.match(line)
        if not match:
            continue
        name = match.group(1).lower()
        if name in ("include", "include_dir", "include_if_exists"):
            continue
        out[name] = _value(match.group(2))
    return out


def parse_args(args: Sequence[str]) -> dict[str, str]:
    """Settings given on the postgres command line: ``-c name=value``, ``-cname=value``, ``--name=value``."""
    out: dict[str, str] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        item: str | None = None
        if arg == "-c" and i + 1 < len(args):
            item = args[i + 1]
            i += 1
        elif (arg.startswith("-c") and len(arg) > 2) or (arg.startswith("--") and "=" in arg):
            item = arg[2:]
        i += 1
        if item and "=" in item:
            name, value = item.split("=", 1)
            out[name.strip().lower().replace("-", "_")] = value
    return out


@dataclass(frozen=True)
class UserSource:
    label: (
        str  # e.g. "/etc/postgresql/conf.d/custom.conf", "ALTER SYSTEM (postgresql.auto.conf)", "-c argument"
    )
    settings: Mapping[str, str]
    raw: bytes = b""


def user_sources(pgdata: Path, conf_d: Path, args: Sequence[str]) -> list[UserSource]:
    """Every place a user can set a value, lowest priority first (the order PostgreSQL applies them)."""
    sources: list[UserSource] = []

    def add(label: str, path: Path) -> None:
        try:
            data = path.read_bytes()
        except OSError:
            return
        sources.append(UserSource(label, parse_conf(data.decode("utf-8", "replace")), data))

    add("postgresql.conf", pgdata / "postgresql.conf")
    for path in conf_files(conf_d):
        add(str(path), path)
    add("ALTER SYSTEM (postgresql.auto.conf)", pgdata / "postgresql.auto.conf")
    cli = parse_args(args)
    sources.append(UserSource("-c argument", cli, "\0".join(args).encode()))
    return sources


def conf_files(conf_d: Path) -> list[Path]:
    """The ``*.conf`` files PostgreSQL's include_dir reads from ``conf_d``, in its order."""
    try:
        names = sorted(p.name for p in conf_d.iterdir())
    except OSError:
        return []
    return [
        conf_d / n for n in names if n.endswith(".conf") and not n.startswith(".") and (conf_d / n).is_file()
    ]


def init_scripts(directory: Path) -> list[Path]:
    """/docker-entrypoint-initdb.d entries, sorted by name (all types, as the official image)."""
    try:
        return sorted((p for p in directory.iterdir() if p.is_file()), key=lambda p: p.name)
    except OSError:
        return []
