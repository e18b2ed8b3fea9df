"""Continuous WAL archiving with pgBackRest (pure): POSTGRES_ARCHIVE and the pgBackRest configuration.

With ``POSTGRES_ARCHIVE=pgbackrest`` the server archives every WAL segment with
``pgbackrest --stanza=<stanza> archive-push %p`` and the entrypoint writes
``/etc/pgbackrest/pgbackrest.conf`` (``entrypoint.apply.archive``), so that ``docker exec <container>
pgbackrest --stanza=main backup`` works without further options. The stanza must be created once
(``pgbackrest --stanza=main stanza-create``); until then archive-push fails and WAL waits in pg_wal.

pgBackRest also reads ``PGBACKREST_<OPTION>`` variables itself (e.g. ``PGBACKREST_REPO1_RETENTION_FULL=4``),
and they override the generated file, so every pgBackRest option can be tuned from the environment.

| variable | allowed | default |
| --- | --- | --- |
| POSTGRES_ARCHIVE | off, pgbackrest | off |
| PGBACKREST_STANZA | letters, digits, ``_ -`` (1-63) | main |
| PGBACKREST_REPO1_PATH | absolute path | /var/lib/pgbackrest |
| POSTGRES_ARCHIVE_TIMEOUT | seconds, 0 (never force a WAL switch) .. 86400 | 60 |
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from entrypoint import envparse
from entrypoint.errors import ConfigError
from entrypoint.render import pgbackrest_conf

MODES = ("off", "pgbackrest")
CONFIG_PATH = "/etc/pgbackrest/pgbackrest.conf"
DEFAULT_REPO_PATH = "/var/lib/pgbackrest"
_STANZA = re.compile(r"[A-Za-z0-9][A-Za-z0-9_\-]{0,62}")


@dataclass(frozen=True)
class ArchiveSettings:
    mode: str = "off"
    stanza: str = "main"
    repo_path: str = DEFAULT_REPO_PATH
    archive_timeout: int = 60

    @property
    def enabled(self) -> bool:
        return self.mode == "pgbackrest"


def parse(env: Mapping[str, str]) -> ArchiveSettings:
    mode = envparse.choice(env, "POSTGRES_ARCHIVE", MODES, "off")
    stanza = env.get("PGBACKREST_STANZA", "").strip() or "main"
    if not _STANZA.fullmatch(stanza):
        raise ConfigError(
            f"PGBACKREST_STANZA={stanza!r} is not valid; use 1-63 letters, digits, '_' or '-' (default main)"
        )
    repo = env.get("PGBACKREST_REPO1_PATH", "").strip() or DEFAULT_REPO_PATH
    if not repo.startswith("/") or any(ch in repo for ch in ("\0", "\n", "\r")):
        raise ConfigError(f"PGBACKREST_REPO1_PATH={repo!r} must be an absolute path without line breaks")
    timeout = envparse.integer(env, "POSTGRES_ARCHIVE_TIMEOUT", default=60, low=0, high=86400)
    assert timeout is not None  # noqa: S101 - there is a default
    return ArchiveSettings(mode=mode, stanza=stanza, repo_path=repo, archive_timeout=timeout)


def archive_command(settings: ArchiveSettings) -> str:
    # The stanza is restricted to [A-Za-z0-9_-], so it needs no shell quoting.
    return f"pgbackrest --stanza={settings.stanza} archive-push %p"


def conf(settings: ArchiveSettings) -> dict[str, str]:
    """postgresql.conf settings (raw values, to render with ``render.conf``); empty when off."""
    if not settings.enabled:
        return {}
    return {
        "archive_mode": "on",
        "archive_command": archive_command(settings),
        "archive_timeout": str(settings.archive_timeout),
    }


def pgbackrest_config(
    settings: ArchiveSettings, *, pgdata: str, socket_dir: str, port: int, superuser: str
) -> str:
    """The generated pgbackrest.conf (text)."""
    return pgbackrest_conf.render(
        [
            ("global", [
                ("repo1-path", settings.repo_path),
                ("repo1-retention-full", "2"),
                ("repo1-retention-diff", "6"),
                ("start-fast", "y"),
                ("log-level-console", "info"),
                ("log-level-file", "detail"),
                ("log-path", "/var/log/pgbackrest"),
                ("spool-path", "/var/spool/pgbackrest"),
            ]),
            (settings.stanza, [
                ("pg1-path", pgdata),
                ("pg1-socket-path", socket_dir),
                ("pg1-port", str(port)),
                ("pg1-user", superuser),
            ]),
        ],
        header=[
            pgbackrest_conf.MARKER,
            "Rewritten at every start while POSTGRES_ARCHIVE=pgbackrest. To use your own file, mount it",
            "here: a file without the line above is never touched. PGBACKREST_* variables override it.",
        ],
    )
