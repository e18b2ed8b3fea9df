"""Start an exporter: write its password file, then exec it (the only side effects of the exporter flow)."""

from __future__ import annotations

import os
import pwd
from typing import NoReturn

from entrypoint.apply import fs
from entrypoint.apply.pgbouncer import Identity, prepare_dir
from entrypoint.errors import RuntimeFailure
from entrypoint.exporters import Launch


def _me() -> Identity:
    """The exporters run as whoever starts them (the image's non-root user): no privilege switch."""
    euid = os.geteuid()
    try:
        entry = pwd.getpwuid(euid)
        name, home = entry.pw_name, entry.pw_dir
    except KeyError:  # an arbitrary --user without a passwd entry
        name, home = f"uid {euid}", "/"
    return Identity(euid, os.getegid(), name, home, switch=False)


def write_passfile(launch: Launch) -> None:
    """The password file, 0600 from creation, in a 0700 directory of ours (a symlink or a directory
    someone else made first under a shared /tmp is refused)."""
    prepare_dir(launch.passfile.parent, _me())
    fs.write_secret(launch.passfile, launch.passfile_text)


def execute(launch: Launch) -> NoReturn:
    """Replace this process with the exporter (found on the PATH of its environment)."""
    try:
        os.execvpe(launch.binary, [launch.binary, *launch.argv], dict(launch.environ))  # noqa: S606
    except OSError as exc:
        raise RuntimeFailure(f"cannot run {launch.binary}: {exc.strerror or exc}") from None
