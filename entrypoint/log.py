"""Log lines of the entrypoint.

Every line goes to stdout (the container log) and starts with a component tag, e.g.
``[POSTGRES] [AUTO-CONFIG] RAM: 2048MB (cgroup-v1), ...``. Plain text is the default because it is what
users grep for; ``AZA_PG_LOG_FORMAT=json`` switches to one JSON object per line through structlog.
The format is decided once by the CLI (the only reader of the environment) via ``configure``.
Nothing passed to these functions may contain a secret.
"""

from __future__ import annotations

import sys
from typing import Any

_json = False


def configure(*, json: bool) -> None:
    global _json  # noqa: PLW0603 - logging is configured exactly once, from the CLI
    _json = json
    if json:
        import structlog

        structlog.configure(
            processors=[
                structlog.processors.add_log_level,
                structlog.processors.TimeStamper(fmt="iso"),
                structlog.processors.JSONRenderer(),
            ],
            logger_factory=structlog.PrintLoggerFactory(sys.stdout),
        )


def _emit(level: str, component: str, topic: str, message: str, **fields: Any) -> None:
    if _json:
        import structlog

        logger = structlog.get_logger()
        getattr(logger, level)(message, component=component.lower(), topic=topic.lower(), **fields)
        return
    tag = f"[{component}] [{topic}]" if topic else f"[{component}]"
    stream = sys.stderr if level in ("error", "critical") else sys.stdout
    print(f"{tag} {message}", file=stream, flush=True)


def info(component: str, topic: str, message: str, **fields: Any) -> None:
    _emit("info", component, topic, message, **fields)


def warn(component: str, topic: str, message: str, **fields: Any) -> None:
    _emit("warning", component, topic, f"WARNING: {message}" if not _json else message, **fields)


def fatal(component: str, message: str) -> None:
    """The one line a failed run ends with (stderr in text mode)."""
    _emit("critical", component, "FATAL", message)
