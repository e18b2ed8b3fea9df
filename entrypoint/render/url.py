"""postgresql:// URLs (libpq URIs): the one escaper for URL parts (pure).

User, password, host and database name are percent-encoded (RFC 3986) so that ``:``, ``@``, ``/``,
``%``, ``#``, ``?``, spaces and non-ASCII characters (as UTF-8) survive. IPv6 hosts are bracketed.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import quote as _pct


def part(value: str) -> str:
    """Percent-encode one URL component; only unreserved characters stay literal."""
    return _pct(value, safe="")


def _host(host: str) -> str:
    try:
        if isinstance(ipaddress.ip_address(host), ipaddress.IPv6Address):
            return f"[{host}]"
    except ValueError:
        pass
    return part(host)


def render(*, host: str, port: int, dbname: str, user: str | None = None, password: str | None = None) -> str:
    """``postgresql://user:password@host:port/dbname`` with every part encoded."""
    auth = ""
    if user is not None:
        auth = part(user)
        if password is not None:
            auth += ":" + part(password)
        auth += "@"
    return f"postgresql://{auth}{_host(host)}:{port}/{part(dbname)}"
