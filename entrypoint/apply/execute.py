"""The end of every start: replace this process with the daemon (or the user's command)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NoReturn

from entrypoint.errors import ConfigError

# Every backend raises its own OOM score right after fork (a privilege-free direction), so under memory
# pressure the kernel kills a backend (PostgreSQL then crash-restarts) instead of the postmaster.
OOM_ADJUST_FILE = "/proc/self/oom_score_adj"
OOM_ADJUST_VALUE = "900"


def daemon_env(env: Mapping[str, str]) -> dict[str, str]:
    out = dict(env)
    out["PG_OOM_ADJUST_FILE"] = OOM_ADJUST_FILE
    out["PG_OOM_ADJUST_VALUE"] = OOM_ADJUST_VALUE
    return out


def exec_postgres(bindir: Path, pgdata: Path, args: Sequence[str], env: Mapping[str, str]) -> NoReturn:
    binary = str(bindir / "postgres")
    os.execve(binary, [binary, "-D", str(pgdata), *args], daemon_env(env))  # noqa: S606 - argv list, no shell


def exec_command(args: Sequence[str], env: Mapping[str, str]) -> NoReturn:
    """``docker run image bash``: run the user's command as is."""
    path = shutil.which(args[0], path=env.get("PATH")) if "/" not in args[0] else args[0]
    if path is None:
        raise ConfigError(f"command not found: {args[0]}")
    os.execve(path, list(args), dict(env))  # noqa: S606 - the user's command, exactly as given
