"""Write the generated pgBackRest configuration and make its directories (POSTGRES_ARCHIVE=pgbackrest).

A configuration file the user mounted (one without the generated marker line) is used as it is and never
written to. The repository, log and spool directories are created for the server user when missing; an
empty, root-owned directory (a fresh Docker volume) is handed to the server user as well.
"""

from __future__ import annotations

import os
from pathlib import Path

from entrypoint import archive, log
from entrypoint.apply.fs import write_atomic
from entrypoint.render import pgbackrest_conf

LOG_DIR = Path("/var/log/pgbackrest")
SPOOL_DIR = Path("/var/spool/pgbackrest")


def _own_dir(path: Path, uid: int | None, gid: int | None) -> None:
    if not path.exists():
        path.mkdir(mode=0o750, parents=True)
        if uid is not None or gid is not None:
            os.chown(path, -1 if uid is None else uid, -1 if gid is None else gid)
        return
    st = path.stat()
    if uid is not None and st.st_uid == 0 and st.st_uid != uid and not any(path.iterdir()):
        os.chown(path, uid, -1 if gid is None else gid)
        os.chmod(path, 0o750)  # noqa: S103 - group read for backup operators, nothing for others


def install(
    settings: archive.ArchiveSettings,
    config_text: str,
    existing: str | None,
    *,
    config_path: Path = Path(archive.CONFIG_PATH),
    uid: int | None = None,
    gid: int | None = None,
    dirs: tuple[Path, ...] = (LOG_DIR, SPOOL_DIR),
) -> bool:
    """Write ``config_text`` unless the user owns the file; returns True when it was written."""
    if not settings.enabled:
        return False
    for directory in (Path(settings.repo_path), *dirs):
        _own_dir(directory, uid, gid)
    if existing is not None and not pgbackrest_conf.is_generated(existing):
        log.info("POSTGRES", "ENTRYPOINT", f"WAL archiving with pgBackRest: using your {config_path} as is")
        return False
    config_path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    write_atomic(config_path, config_text, mode=0o644)
    log.info("POSTGRES", "ENTRYPOINT",
             f"WAL archiving with pgBackRest (stanza {settings.stanza}, repository {settings.repo_path}); "
             f"create the stanza once: pgbackrest --stanza={settings.stanza} stanza-create")
    return True
