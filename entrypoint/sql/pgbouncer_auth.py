"""The SQL that lets PgBouncer authenticate every database user through one low-privilege role.

PgBouncer logs in as ``pgbouncer_auth`` (password from its auth file) and runs
``SELECT usename, passwd FROM pgbouncer.get_auth($1)`` to fetch the SCRAM secret of the user a client
claims to be. The function is ``SECURITY DEFINER`` (owned by the superuser that creates it) because
``pgbouncer_auth`` itself cannot read ``pg_authid``; its ``search_path`` is pinned to ``pg_catalog`` so
nobody can shadow the catalog with their own objects. Expired passwords (``VALID UNTIL`` in the past)
and roles without LOGIN return no row, so PgBouncer refuses them like PostgreSQL would (CVE-2025-2291).

Every statement is idempotent: the postgres entrypoint runs the list in ``POSTGRES_DB``, ``postgres``
and ``template1`` (so databases created later carry the function too, which PgBouncer < 1.19 needs),
and re-running it on an existing cluster repairs the objects.
"""

from __future__ import annotations

from psycopg import sql

ROLE = "pgbouncer_auth"
SCHEMA = "pgbouncer"
FUNCTION = "get_auth"


def statements(auth_password: str | None = None) -> list[sql.Composable]:
    """Statements creating/refreshing the role, schema and lookup function, in order.

    ``auth_password`` sets the role's password; ``None`` leaves it unchanged. It may be plain text or
    a SCRAM verifier computed client-side, so the clear text never reaches the server, e.g. with
    psycopg: ``conn.pgconn.encrypt_password(pw.encode(), b"pgbouncer_auth", b"scram-sha-256")``.
    """
    role = sql.Identifier(ROLE)
    schema = sql.Identifier(SCHEMA)
    func = sql.SQL("{}.{}").format(schema, sql.Identifier(FUNCTION))
    stmts: list[sql.Composable] = [
        # CREATE ROLE has no IF NOT EXISTS; roles are cluster-wide, so a second database finds it.
        sql.SQL(
            "DO $aza$BEGIN "
            "IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = {name}) THEN "
            "CREATE ROLE {role} LOGIN; "
            "END IF; END$aza$"
        ).format(name=sql.Literal(ROLE), role=role),
        sql.SQL(
            "ALTER ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS INHERIT"
        ).format(role),
    ]
    if auth_password is not None:
        stmts.append(sql.SQL("ALTER ROLE {} PASSWORD {}").format(role, sql.Literal(auth_password)))
    stmts += [
        sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(schema),
        sql.SQL("REVOKE ALL ON SCHEMA {} FROM PUBLIC").format(schema),
        sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(schema, role),
        sql.SQL(
            "CREATE OR REPLACE FUNCTION {func}(p_usename text) "
            "RETURNS TABLE(usename name, passwd text) "
            "LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog AS $aza$ "
            "SELECT a.rolname, a.rolpassword FROM pg_catalog.pg_authid AS a "
            "WHERE a.rolname = p_usename AND a.rolcanlogin "
            "AND (a.rolvaliduntil IS NULL OR a.rolvaliduntil > pg_catalog.now()) "
            "$aza$"
        ).format(func=func),
        sql.SQL("REVOKE ALL ON FUNCTION {}(text) FROM PUBLIC").format(func),
        sql.SQL("GRANT EXECUTE ON FUNCTION {}(text) TO {}").format(func, role),
    ]
    return stmts
