"""libpq connection strings (``key='value' ...``): the one escaper for conninfo values (pure).

Grammar (libpq, "Keyword/Value Connection Strings"): pairs separated by spaces; a value is written in
single quotes, inside which ``\\`` and ``'`` are escaped with a backslash. Every value is quoted, so
empty values and values with spaces, ``=`` or non-ASCII characters need no special case. Keywords are
libpq's fixed lower-case names.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

_KEY = re.compile(r"[a-z_]+")


def quote(value: str) -> str:
    """``value`` as a single-quoted conninfo value."""
    if "\0" in value:
        raise ValueError("a conninfo value cannot contain a NUL character")
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def render(params: Mapping[str, str]) -> str:
    """``key='value'`` pairs in the given order; keys must be libpq keyword names."""
    parts = []
    for key, value in params.items():
        if not _KEY.fullmatch(key):
            raise ValueError(f"not a libpq connection keyword: {key!r}")
        parts.append(f"{key}={quote(value)}")
    return " ".join(parts)
