"""Small, pure helpers that turn environment values into typed settings or a ConfigError.

They take the environment as a plain mapping (the CLI is the only reader of ``os.environ``). Reading a
``<NAME>_FILE`` secret is the one exception to "pure": it reads the file the user pointed at, which is
part of parsing the user's input, and every failure becomes a ConfigError naming the variable.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from entrypoint.errors import ConfigError


def secret(env: Mapping[str, str], name: str) -> str | None:
    """``NAME`` or the content of the file named by ``NAME_FILE`` (one trailing newline stripped).

    Both set is an error; an empty value counts as unset.
    """
    direct = env.get(name)
    file_var = f"{name}_FILE"
    path = env.get(file_var)
    if direct and path:
        raise ConfigError(f"{name} and {file_var} are both set; set only one of them")
    if path:
        try:
            raw = Path(path).read_bytes()
        except OSError as exc:
            raise ConfigError(f"{file_var}={path}: cannot read the file ({exc.strerror or exc})") from None
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ConfigError(f"{file_var}={path}: the file is not valid UTF-8") from None
        if text.endswith("\r\n"):
            text = text[:-2]
        elif text.endswith("\n"):
            text = text[:-1]
        if not text:
            raise ConfigError(f"{file_var}={path}: the file is empty")
        return text
    return direct or None


def choice(env: Mapping[str, str], name: str, allowed: Sequence[str], default: str) -> str:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    value = raw.lower()
    if value not in allowed:
        raise ConfigError(f"{name}={raw!r} is not valid; use one of: {', '.join(allowed)}")
    return value


def boolean(env: Mapping[str, str], name: str, *, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "on", "true", "yes"):
        return True
    if raw in ("0", "off", "false", "no"):
        return False
    raise ConfigError(f"{name}={env[name]!r} is not valid; use on or off")


def integer(env: Mapping[str, str], name: str, *, default: int | None, low: int, high: int) -> int | None:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit():
        raise ConfigError(f"{name}={raw!r} is not a whole number; use {low}..{high}")
    value = int(raw)
    if not low <= value <= high:
        raise ConfigError(f"{name}={raw} is out of range; use {low}..{high}")
    return value
