"""Promote a running standby and wait until it takes writes (the SQL half of ``aza-pg promote``)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from entrypoint.errors import RuntimeFailure

if TYPE_CHECKING:
    import psycopg


@dataclass(frozen=True)
class LocalServer:
    host: str  # socket directory (or 127.0.0.1 when the server has no socket)
    port: int
    user: str
    dbname: str
    password: str | None

    def __repr__(self) -> str:
        return (f"LocalServer(host={self.host!r}, port={self.port}, user={self.user!r}, "
                f"dbname={self.dbname!r})")


def _connect(server: LocalServer) -> psycopg.Connection[tuple[Any, ...]]:
    import psycopg

    try:
        return psycopg.connect(
            host=server.host, port=server.port, user=server.user, dbname=server.dbname,
            password=server.password or None, connect_timeout=5, application_name="aza-pg-promote",
            autocommit=True,
        )
    except psycopg.Error as exc:
        raise RuntimeFailure(f"cannot connect to the local server ({server.host}, port {server.port}) as "
                             f"{server.user}: {str(exc).strip().splitlines()[-1]}") from None


def in_recovery(server: LocalServer) -> bool:
    with _connect(server) as conn:
        row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
    return bool(row and row[0])


def promote(server: LocalServer, timeout: int) -> None:
    """``pg_promote(wait => true)``: returns when the server has left recovery (or raises)."""
    import psycopg

    with _connect(server) as conn:
        try:
            row = conn.execute("SELECT pg_promote(true, %s)", (timeout,)).fetchone()
        except psycopg.Error as exc:
            raise RuntimeFailure(f"pg_promote failed: {str(exc).strip().splitlines()[-1]}") from None
    if not (row and row[0]):
        raise RuntimeFailure(f"the server did not finish promotion within {timeout}s")


def wait_writable(
    server: LocalServer, timeout: int, *,
    clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Poll (bounded) until a transaction can get a transaction id, i.e. the server takes writes.
    Returns the number of attempts."""
    import psycopg

    deadline = clock() + timeout
    attempt = 0
    last = ""
    while True:
        attempt += 1
        try:
            with _connect(server) as conn, conn.transaction(force_rollback=True):
                conn.execute("SELECT pg_current_xact_id()")
            return attempt
        except (psycopg.Error, RuntimeFailure) as exc:
            last = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        if clock() >= deadline:
            raise RuntimeFailure(f"promoted, but writes still fail after {timeout}s: {last}")
        sleep(0.2)
