"""Root start: prepare the directories PostgreSQL needs, then become the postgres user for good.

A volume that already belongs to postgres is left alone (no recursive chown on every start of a large
data directory); only a directory with the wrong owner at its top (a fresh volume, a bind mount
created by root) is chowned recursively, once.
"""

from __future__ import annotations

import contextlib
import os
import pwd
from dataclasses import dataclass
from pathlib import Path

from entrypoint import log
from entrypoint.errors import RuntimeFailure


@dataclass(frozen=True)
class Account:
    name: str
    uid: int
    gid: int
    home: str


def lookup(name: str = "postgres") -> Account:
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise RuntimeFailure(f"there is no {name!r} user to run PostgreSQL as") from None
    return Account(entry.pw_name, entry.pw_uid, entry.pw_gid, entry.pw_dir)


def current() -> Account:
    uid = os.geteuid()
    try:
        entry = pwd.getpwuid(uid)
        return Account(entry.pw_name, uid, os.getegid(), entry.pw_dir)
    except KeyError:
        return Account(str(uid), uid, os.getegid(), "/")


def _chown_tree(top: Path, uid: int, gid: int) -> None:
    for dirpath, dirnames, filenames in os.walk(top):
        for name in (*dirnames, *filenames):
            with contextlib.suppress(FileNotFoundError):
                os.lchown(os.path.join(dirpath, name), uid, gid)
    os.lchown(top, uid, gid)


def ensure_dir(path: Path, account: Account, mode: int, allowed: tuple[int, ...] = ()) -> None:
    """``path`` exists and belongs to ``account`` (recursively chowned only when its top is wrong); its mode
    is set to ``mode`` unless it already is one of ``allowed``."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.mkdir(mode=mode)
    st = path.stat()
    if st.st_uid != account.uid:
        log.info("POSTGRES", "ENTRYPOINT", f"{path}: owner uid {st.st_uid} -> {account.name}")
        _chown_tree(path, account.uid, account.gid)
    if (st.st_mode & 0o7777) not in (mode, *allowed):
        os.chmod(path, mode)


def drop(account: Account) -> None:
    """Become ``account`` irrevocably (groups, gid, uid)."""
    os.initgroups(account.name, account.gid)
    os.setgid(account.gid)
    os.setuid(account.uid)
    if os.geteuid() == 0 or os.getuid() == 0:
        raise RuntimeFailure("could not drop root privileges")
