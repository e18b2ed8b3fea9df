"""What is already at the pgBackRest configuration path (read before anything is written)."""

from __future__ import annotations

from pathlib import Path

from entrypoint.errors import ConfigError


def existing_config(path: Path) -> str | None:
    """The text of the file at ``path``, or None when there is none."""
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        raise ConfigError(f"{path} is a directory; pgBackRest expects its configuration file there") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the pgBackRest config ({exc.strerror or exc})") from None
