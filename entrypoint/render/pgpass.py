"""The password file libpq reads (``~/.pgpass``, ``PGPASSFILE``).

Grammar (libpq): one entry per line, ``host:port:database:user:password``. Inside a field a backslash
escapes the next character, so only ``\\`` and ``:`` need escaping; every other character, including
spaces, quotes and ``#``, is literal. A field may be ``*`` (matches anything); a literal ``*`` cannot be
written, which is why ``field`` refuses it for host, port, database and user. There is no way to write a
newline, so values containing a line break (or NUL) are refused. The file is ignored by libpq unless
its mode is 0600 or stricter: write it with ``apply.fs.write_secret``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

WILDCARD = "*"
_UNWRITABLE = ("\n", "\r", "\0")


def escape(value: str) -> str:
    """Escape one field: ``\\`` -> ``\\\\`` and ``:`` -> ``\\:``; nothing else changes."""
    for bad in _UNWRITABLE:
        if bad in value:
            raise ValueError(".pgpass fields cannot contain line breaks or NUL characters")
    return value.replace("\\", "\\\\").replace(":", "\\:")


@dataclass(frozen=True)
class Entry:
    """One line. ``None`` for host, port, database or user means the ``*`` wildcard."""

    password: str
    host: str | None = None
    port: int | None = None
    database: str | None = None
    user: str | None = None


def _match_field(value: str | int | None) -> str:
    if value is None:
        return WILDCARD
    text = str(value)
    if text == WILDCARD:
        raise ValueError("a literal '*' cannot be matched in .pgpass; use None for the wildcard")
    return escape(text)


def line(entry: Entry) -> str:
    """One .pgpass line (without the newline)."""
    fields = [entry.host, entry.port, entry.database, entry.user]
    return ":".join([*(_match_field(value) for value in fields), escape(entry.password)])


def render(entries: Iterable[Entry]) -> str:
    """The whole file; libpq uses the first line that matches, so order is significant."""
    return "".join(f"{line(entry)}\n" for entry in entries)
