"""The command line: the only place that reads the process environment and argv.

Each command is a thin wrapper: it hands ``os.environ`` (as a plain dict) and its arguments to a flow in
``entrypoint.flows``, which orchestrates settings -> detect -> tune -> plan -> apply -> exec. Flows are
imported lazily so that a container start only pays for the code it runs.

Errors: a ConfigError becomes one ``FATAL`` line and exit status 2, a RuntimeFailure one line and
status 1; anything else is a bug (traceback, status 70).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import NoReturn

import click

from entrypoint import errors, log

_PASSTHROUGH = {"ignore_unknown_options": True, "allow_interspersed_args": False, "help_option_names": []}


def _run(component: str, flow: Callable[[], int | None]) -> NoReturn:
    try:
        code = flow()
    except errors.AzaError as exc:
        log.fatal(component, str(exc))
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    sys.exit(code or 0)


def _env() -> dict[str, str]:
    return dict(os.environ)


@click.group()
@click.version_option(package_name="aza-pg")
def main() -> None:
    """aza-pg: PostgreSQL tuned to its container."""
    log.configure(json=os.environ.get("AZA_PG_LOG_FORMAT", "text").lower() == "json")


@main.command()
@click.option("--memory", help="Memory in MB (or with a unit: 512M, 2G, 2GiB). Default: detect.")
@click.option("--cpus", help="CPU count. Default: detect.")
@click.option("--workload", help="mixed | web | oltp | dw (default: POSTGRES_WORKLOAD_TYPE or mixed).")
@click.option("--storage", help="ssd | hdd | san (default: POSTGRES_STORAGE_TYPE or ssd).")
@click.option("--pg-version", help="PostgreSQL major version (default: the installed one, else 17).")
@click.option(
    "--format", "fmt", type=click.Choice(["line", "table", "json", "conf"]),
    default="table", show_default=True,
)
def tune(
    memory: str | None, cpus: str | None, workload: str | None, storage: str | None, pg_version: str | None,
    fmt: str,
) -> None:
    """Print what auto-config computes, with the inputs and rule behind every value."""
    from entrypoint.flows import tune as flow

    _run("POSTGRES", lambda: flow.run(_env(), memory=memory, cpus=cpus, workload=workload, storage=storage,
                                      pg_version=pg_version, fmt=fmt))


@main.command(context_settings=_PASSTHROUGH)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def postgres(args: tuple[str, ...]) -> None:
    """Prepare, tune and exec PostgreSQL (the image's ENTRYPOINT). Extra arguments go to postgres."""
    from entrypoint.flows import postgres as flow

    _run("POSTGRES", lambda: flow.run(_env(), list(args)))


@main.command(context_settings=_PASSTHROUGH)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def pgbouncer(args: tuple[str, ...]) -> None:
    """Render PgBouncer's configuration and secret files, then exec pgbouncer."""
    from entrypoint.flows import pgbouncer as flow

    _run("PGBOUNCER", lambda: flow.run(_env(), list(args)))


@main.command()
def healthcheck() -> None:
    """Exit 0 only when the server accepts queries in the expected role."""
    from entrypoint.flows import healthcheck as flow

    _run("POSTGRES", lambda: flow.run(_env()))


@main.command()
def promote() -> None:
    """Promote this replica to a primary and wait until it accepts writes."""
    from entrypoint.flows import promote as flow

    _run("POSTGRES", lambda: flow.run(_env()))


@main.command("postgres-exporter", context_settings=_PASSTHROUGH)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def postgres_exporter(args: tuple[str, ...]) -> None:
    """Start postgres_exporter as the postgres_exporter role (password via a 0600 .pgpass)."""
    from entrypoint.flows import exporters as flow

    _run("POSTGRES-EXPORTER", lambda: flow.run("postgres", _env(), list(args)))


@main.command("pgbouncer-exporter", context_settings=_PASSTHROUGH)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def pgbouncer_exporter(args: tuple[str, ...]) -> None:
    """Start pgbouncer_exporter on PgBouncer's console as pgbouncer_stats (password via a 0600 .pgpass)."""
    from entrypoint.flows import exporters as flow

    _run("PGBOUNCER-EXPORTER", lambda: flow.run("pgbouncer", _env(), list(args)))
