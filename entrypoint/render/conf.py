"""postgresql.conf text: the one escaper for its values (pure).

Grammar (PostgreSQL's guc-file lexer): ``name = value``; a value is either a bare token (numbers,
identifiers, ``512MB``, ``0.9``) or a single-quoted string in which ``'`` is written ``''`` and a
backslash starts an escape (``\\n``, ``\\t``, ``\\\\`` ...). A raw newline cannot appear inside a value.
Bare tokens are written bare for readability; everything else is quoted with ``'`` doubled, ``\\``
doubled and newline/CR/tab written as escapes. NUL cannot be represented and is refused.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)?")
_BARE = re.compile(r"-?[0-9]+(\.[0-9]+)?[A-Za-z]*|[A-Za-z_][A-Za-z0-9_]*")


def quote(value: str) -> str:
    """``value`` as a single-quoted postgresql.conf string."""
    if "\0" in value:
        raise ValueError("a postgresql.conf value cannot contain a NUL character")
    escaped = (
        value.replace("\\", "\\\\")
        .replace("'", "''")
        .replace("\n", "\\n")
        .replace("\r", "\\r")
        .replace("\t", "\\t")
    )
    return f"'{escaped}'"


def value(text: str) -> str:
    """``text`` bare when it is a plain number/unit or identifier, else quoted."""
    return text if _BARE.fullmatch(text) else quote(text)


def line(name: str, text: str) -> str:
    if not _NAME.fullmatch(name):
        raise ValueError(f"not a PostgreSQL setting name: {name!r}")
    return f"{name} = {value(text)}"


def render(settings: Mapping[str, str], *, header: Iterable[str] = ()) -> str:
    """A conf fragment: ``# header`` lines, then one ``name = value`` line per setting, newline-terminated."""
    lines = [f"# {h}".rstrip() if h else "#" for h in header]
    for h in lines:
        if "\n" in h or "\r" in h:
            raise ValueError("a header line cannot contain a line break")
    lines.extend(line(name, text) for name, text in settings.items())
    return "\n".join(lines) + "\n"
