"""Install the server's own copies of the TLS files in ``$PGDATA/aza-pg/tls/`` (see ``entrypoint.tls``).

PostgreSQL insists that the key belongs to the server user with mode 0600 (or to root with 0640); a
read-only, root-owned mount can satisfy neither, so the entrypoint (root at this point) writes copies
owned by the server user: the key 0600 from its creation on, the certificates 0644. When TLS is off,
copies left from an earlier start are removed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

from entrypoint import log, tls
from entrypoint.apply.fs import SECRET_MODE, write_atomic
from entrypoint.detect.tls import TlsMaterial


def _ensure_dir(path: Path, uid: int | None, gid: int | None) -> None:
    path.mkdir(mode=0o700, exist_ok=True)
    os.chmod(path, 0o700)
    if uid is not None or gid is not None:
        os.chown(path, -1 if uid is None else uid, -1 if gid is None else gid)


def install(
    material: TlsMaterial | None, pgdata: Path, uid: int | None = None, gid: int | None = None
) -> None:
    """Write (TLS on) or remove (TLS off) the server's copies; run before any server start."""
    paths = tls.installed_paths(str(pgdata))
    directory = Path(paths.directory)
    if material is None:
        if directory.is_dir():
            shutil.rmtree(directory)
            log.info("POSTGRES", "ENTRYPOINT", f"TLS is off: removed the server's TLS copies in {directory}")
        return
    _ensure_dir(directory.parent, uid, gid)
    _ensure_dir(directory, uid, gid)
    write_atomic(Path(paths.cert), material.cert, mode=0o644, uid=uid, gid=gid)
    write_atomic(Path(paths.key), material.key, mode=SECRET_MODE, uid=uid, gid=gid)
    if material.ca is not None:
        write_atomic(Path(paths.ca), material.ca, mode=0o644, uid=uid, gid=gid)
    else:
        with contextlib.suppress(FileNotFoundError):
            Path(paths.ca).unlink()
    if material.key_source_mode & 0o077:
        log.warn("POSTGRES", "ENTRYPOINT",
                 f"the mounted TLS key is readable by group/others (mode {material.key_source_mode:04o}); "
                 "chmod 0600 it on the host")
    log.info("POSTGRES", "ENTRYPOINT", f"TLS on: certificate and key installed in {directory} (key 0600)")
