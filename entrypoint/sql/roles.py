"""Roles the entrypoint manages, as psycopg ``sql`` statements (passwords only as SCRAM verifiers,
see ``entrypoint.scram``): the replication role and its slot, the monitoring role, password changes."""

from __future__ import annotations

from psycopg import sql

from entrypoint.scram import scram_verifier, secret_fingerprint

__all__ = [
    "MONITOR_ROLE",
    "create_extension",
    "monitoring",
    "replication_slot",
    "replicator",
    "scram_verifier",
    "secret_fingerprint",
    "set_password",
]

MONITOR_ROLE = "postgres_exporter"


def _ensure_role(name: str, attributes: str) -> list[sql.Composable]:
    return [
        sql.SQL(
            "DO $aza$BEGIN IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = {name}) THEN "
            "CREATE ROLE {role}; END IF; END$aza$"
        ).format(name=sql.Literal(name), role=sql.Identifier(name)),
        sql.SQL("ALTER ROLE {} " + attributes).format(sql.Identifier(name)),
    ]


def set_password(role: str, verifier: str) -> sql.Composable:
    """``ALTER ROLE role PASSWORD '<SCRAM verifier>'``."""
    return sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(role), sql.Literal(verifier))


def replicator(role: str, verifier: str | None) -> list[sql.Composable]:
    """The replication role: LOGIN REPLICATION and nothing else."""
    stmts = _ensure_role(role, "LOGIN REPLICATION NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS")
    if verifier is not None:
        stmts.append(set_password(role, verifier))
    return stmts


def replication_slot(slot: str) -> sql.Composable:
    """Create the physical slot unless it exists (the replica reuses it)."""
    return sql.SQL(
        "SELECT pg_catalog.pg_create_physical_replication_slot({slot}) "
        "WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_replication_slots WHERE slot_name = {slot})"
    ).format(slot=sql.Literal(slot))


def monitoring(verifier: str | None) -> list[sql.Composable]:
    """postgres_exporter: LOGIN, member of pg_monitor, nothing else."""
    stmts = _ensure_role(
        MONITOR_ROLE, "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS INHERIT"
    )
    stmts.append(sql.SQL("GRANT pg_monitor TO {}").format(sql.Identifier(MONITOR_ROLE)))
    if verifier is not None:
        stmts.append(set_password(MONITOR_ROLE, verifier))
    return stmts


def create_extension(name: str) -> sql.Composable:
    return sql.SQL("CREATE EXTENSION IF NOT EXISTS {}").format(sql.Identifier(name))
