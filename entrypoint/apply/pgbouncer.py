"""Side effects of the PgBouncer start: directories, files, limits, privileges and the final exec."""

from __future__ import annotations

import os
import pwd
import re
import resource
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from entrypoint.apply.fs import write_atomic, write_secret
from entrypoint.errors import RuntimeFailure

DAEMON_USER = "postgres"
# Variables that must not reach the daemon: secrets and the files that hold them.
_SECRET_NAME = re.compile(r"PASS|SECRET|TOKEN|PRIVATE_KEY", re.IGNORECASE)


@dataclass(frozen=True)
class Identity:
    """Who PgBouncer runs as: the current user, or DAEMON_USER when started as root."""

    uid: int
    gid: int
    name: str
    home: str
    switch: bool  # True: we are root and must drop to this identity before exec


def identity(euid: int) -> Identity:
    if euid == 0:
        try:
            entry = pwd.getpwnam(DAEMON_USER)
        except KeyError:
            raise RuntimeFailure(
                f"running as root but there is no {DAEMON_USER!r} user to run PgBouncer as "
                "(PgBouncer refuses to run as root)"
            ) from None
        return Identity(entry.pw_uid, entry.pw_gid, entry.pw_name, entry.pw_dir, switch=True)
    try:
        entry = pwd.getpwuid(euid)
    except KeyError:  # e.g. `docker run --user 12345`: a uid without a passwd entry is fine
        return Identity(euid, os.getegid(), str(euid), "/", switch=False)
    return Identity(euid, os.getegid(), entry.pw_name, entry.pw_dir, switch=False)


def prepare_dir(path: Path, who: Identity) -> None:
    """Our private run directory: created 0700, owned by the daemon user; a symlink is refused."""
    try:
        path.mkdir(mode=0o700, parents=True)
    except FileExistsError:
        pass
    except OSError as exc:
        raise RuntimeFailure(f"cannot create {path}: {exc.strerror or exc}") from None
    info = path.lstat()
    if not stat.S_ISDIR(info.st_mode):
        raise RuntimeFailure(f"{path} exists and is not a directory")
    if who.switch:
        os.chown(path, who.uid, who.gid)
    elif info.st_uid != who.uid:
        raise RuntimeFailure(f"{path} belongs to uid {info.st_uid}, not to {who.name}; cannot use it")
    os.chmod(path, 0o700)


def write_files(
    *, ini: tuple[Path, str] | None, auth_file: tuple[Path, str], pgpass: tuple[Path, str], who: Identity
) -> None:
    owner = {"uid": who.uid, "gid": who.gid} if who.switch else {}
    try:
        if ini is not None:
            write_atomic(ini[0], ini[1], mode=0o600, **owner)
        write_secret(auth_file[0], auth_file[1], **owner)
        write_secret(pgpass[0], pgpass[1], **owner)
    except OSError as exc:
        raise RuntimeFailure(f"cannot write {exc.filename}: {exc.strerror or exc}") from None


def raise_fd_limit(wanted: int) -> tuple[int, int]:
    """Raise the soft open-files limit towards ``wanted`` (never above the hard limit); returns it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft, hard


def scrub(env: Mapping[str, str]) -> dict[str, str]:
    """The daemon's environment: everything except secrets and secret-file pointers."""
    return {key: value for key, value in env.items() if not _SECRET_NAME.search(key)}


def exec_pgbouncer(binary: str, argv: Sequence[str], env: Mapping[str, str], who: Identity) -> NoReturn:
    """Replace this process with PgBouncer (after dropping root), so signals reach it directly."""
    daemon_env = dict(env)
    if who.switch:
        daemon_env.update(HOME=who.home, USER=who.name, LOGNAME=who.name)
        os.initgroups(who.name, who.gid)
        os.setgid(who.gid)
        os.setuid(who.uid)
    os.execve(binary, [binary, *argv], daemon_env)  # noqa: S606 - argv list, no shell
