"""Facts about the installed PgBouncer: where the binary is and which version it is."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from entrypoint.errors import RuntimeFailure

_EXTRA_DIRS = ("/usr/sbin", "/usr/local/sbin", "/usr/bin", "/usr/local/bin")
_VERSION = re.compile(r"PgBouncer\s+(\d+)\.(\d+)(?:\.(\d+))?")


@dataclass(frozen=True)
class PgBouncerBinary:
    path: str
    version: tuple[int, int, int]

    @property
    def version_text(self) -> str:
        return ".".join(str(part) for part in self.version)


def parse_version(output: str) -> tuple[int, int, int]:
    match = _VERSION.search(output)
    if not match:
        raise RuntimeFailure(f"cannot read the PgBouncer version from {output.strip()[:80]!r}")
    return int(match[1]), int(match[2]), int(match[3] or 0)


def find_binary(path_env: str | None) -> str:
    found = shutil.which("pgbouncer", path=os.pathsep.join(filter(None, [path_env, *_EXTRA_DIRS])))
    if not found:
        raise RuntimeFailure("pgbouncer is not installed (not on PATH nor in /usr/sbin)")
    return found


def detect(path_env: str | None) -> PgBouncerBinary:
    binary = find_binary(path_env)
    try:
        proc = subprocess.run(
            [binary, "--version"], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RuntimeFailure(f"{binary} --version failed: {exc}") from None
    return PgBouncerBinary(path=str(Path(binary)), version=parse_version(proc.stdout + proc.stderr))
