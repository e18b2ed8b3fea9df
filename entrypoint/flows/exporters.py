"""``aza-pg postgres-exporter`` and ``aza-pg pgbouncer-exporter``: start a Prometheus exporter.

settings (env) -> plan (connection string without the password, .pgpass text; ``entrypoint.exporters``)
-> apply (0600 password file in a private directory) -> exec the exporter with PGPASSFILE.
postgres_exporter logs in as the ``postgres_exporter`` role (pg_monitor) and runs the aza-pg custom queries;
pgbouncer_exporter logs in to PgBouncer's ``pgbouncer`` console as ``pgbouncer_stats``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

from entrypoint import exporters, log
from entrypoint.apply import exporters as apply

Kind = Literal["postgres", "pgbouncer"]
_PLANS = {"postgres": exporters.postgres_exporter, "pgbouncer": exporters.pgbouncer_exporter}


def run(kind: Kind, env: Mapping[str, str], args: Sequence[str]) -> int:
    launch = _PLANS[kind](env, args)
    apply.write_passfile(launch)
    log.info(f"{kind.upper()}-EXPORTER", "ENTRYPOINT", launch.summary)
    apply.execute(launch)
