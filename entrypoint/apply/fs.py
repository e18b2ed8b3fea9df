"""Atomic file writes: the only way the entrypoint puts a file on disk.

``write_atomic`` creates a temporary file next to the target with its final mode already set (0600 for
secrets) *before* any byte is written, writes, fsyncs, renames over the target and fsyncs the directory.
A reader therefore sees either the old file or the complete new one, and a secret is never readable by
anyone else, not even for an instant.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

SECRET_MODE = 0o600


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(
    path: Path, content: str | bytes, *, mode: int = 0o644, uid: int | None = None, gid: int | None = None
) -> None:
    """Replace ``path`` with ``content`` atomically; mode (and owner, when given) are set before writing."""
    data = content.encode() if isinstance(content, str) else content
    directory = path.parent
    tmp = directory / f".{path.name}.tmp-{os.getpid()}"
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    try:
        os.fchmod(fd, mode)  # the umask must not widen or narrow what we asked for
        if uid is not None or gid is not None:
            os.fchown(fd, -1 if uid is None else uid, -1 if gid is None else gid)
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    os.close(fd)
    os.replace(tmp, path)
    fsync_dir(directory)


def write_secret(path: Path, content: str, *, uid: int | None = None, gid: int | None = None) -> None:
    """A file holding a password: 0600 from creation on."""
    write_atomic(path, content, mode=SECRET_MODE, uid=uid, gid=gid)
