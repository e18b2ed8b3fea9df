"""Every malformed input stops the entrypoint with exit status 2 and one line naming the problem, before
anything on disk changes: the data directory is byte-for-byte the same, empty or initialised."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.process.pgharness import Instance, template_pgdata, tree_hash

pytestmark = pytest.mark.process

SECRETS = Path("/tmp") / f"aza-pg-bad-input-{os.getpid()}"

# (id, environment changes, extra args, expected words in the one line, applies to: "both" | "empty")
CASES: list[tuple[str, dict[str, str], list[str], str, str]] = [
    ("role-unknown", {"POSTGRES_ROLE": "master"}, [], "POSTGRES_ROLE", "both"),
    ("password-both-forms", {"POSTGRES_PASSWORD_FILE": "{secrets}/pw"}, [], "POSTGRES_PASSWORD_FILE", "both"),
    (
        "password-file-missing",
        {"POSTGRES_PASSWORD": "", "POSTGRES_PASSWORD_FILE": "/nonexistent/pw"},
        [],
        "POSTGRES_PASSWORD_FILE",
        "both",
    ),
    (
        "password-file-empty",
        {"POSTGRES_PASSWORD": "", "POSTGRES_PASSWORD_FILE": "{secrets}/empty"},
        [],
        "empty",
        "both",
    ),
    (
        "password-file-is-dir",
        {"POSTGRES_PASSWORD": "", "POSTGRES_PASSWORD_FILE": "{secrets}"},
        [],
        "POSTGRES_PASSWORD_FILE",
        "both",
    ),
    ("password-missing", {"POSTGRES_PASSWORD": ""}, [], "POSTGRES_PASSWORD", "empty"),
    ("password-newline", {"POSTGRES_PASSWORD": "a\nb"}, [], "POSTGRES_PASSWORD", "both"),
    ("user-bad-chars", {"POSTGRES_USER": "bad name!"}, [], "POSTGRES_USER", "both"),
    ("user-reserved", {"POSTGRES_USER": "pg_admin"}, [], "POSTGRES_USER", "both"),
    ("db-bad-chars", {"POSTGRES_DB": "a b;"}, [], "POSTGRES_DB", "both"),
    (
        "auth-method-unknown",
        {"POSTGRES_HOST_AUTH_METHOD": "password123"},
        [],
        "POSTGRES_HOST_AUTH_METHOD",
        "both",
    ),
    ("port-out-of-range", {"PGPORT": "70000"}, [], "PGPORT", "both"),
    ("port-not-number", {"PGPORT": "fivefour"}, [], "PGPORT", "both"),
    ("memory-garbage", {"POSTGRES_MEMORY": "lots"}, [], "POSTGRES_MEMORY", "both"),
    ("memory-zero", {"POSTGRES_MEMORY": "0"}, [], "POSTGRES_MEMORY", "both"),
    ("memory-below-512", {"POSTGRES_MEMORY": "256"}, [], "512", "both"),
    ("cpus-negative", {"POSTGRES_CPUS": "-1"}, [], "POSTGRES_CPUS", "both"),
    ("workload-unknown", {"POSTGRES_WORKLOAD_TYPE": "gaming"}, [], "POSTGRES_WORKLOAD_TYPE", "both"),
    ("storage-unknown", {"POSTGRES_STORAGE_TYPE": "floppy"}, [], "POSTGRES_STORAGE_TYPE", "both"),
    ("max-connections-zero", {"POSTGRES_MAX_CONNECTIONS": "0"}, [], "POSTGRES_MAX_CONNECTIONS", "both"),
    ("shared-buffers-garbage", {"POSTGRES_SHARED_BUFFERS": "huge"}, [], "POSTGRES_SHARED_BUFFERS", "both"),
    ("auto-config-maybe", {"POSTGRES_AUTO_CONFIG": "maybe"}, [], "POSTGRES_AUTO_CONFIG", "both"),
    (
        "primary-without-replication-password",
        {"POSTGRES_ROLE": "primary"},
        [],
        "PG_REPLICATION_PASSWORD",
        "both",
    ),
    ("replica-without-primary", {"POSTGRES_ROLE": "replica"}, [], "replica", "both"),
    ("slot-name-bad", {"REPLICATION_SLOT_NAME": "Bad-Slot"}, [], "REPLICATION_SLOT_NAME", "both"),
    ("replication-user-is-superuser", {"PG_REPLICATION_USER": "postgres"}, [], "PG_REPLICATION_USER", "both"),
    (
        "replication-password-file-unreadable",
        {"PG_REPLICATION_PASSWORD_FILE": "/nonexistent/repl"},
        [],
        "PG_REPLICATION_PASSWORD_FILE",
        "both",
    ),
    (
        "bouncer-pass-both-forms",
        {"PGBOUNCER_AUTH_PASS": "x", "PGBOUNCER_AUTH_PASS_FILE": "{secrets}/pw"},
        [],
        "PGBOUNCER_AUTH_PASS",
        "both",
    ),
    (
        "exporter-password-file-missing",
        {"POSTGRES_EXPORTER_PASSWORD_FILE": "/nonexistent/exp"},
        [],
        "POSTGRES_EXPORTER_PASSWORD_FILE",
        "both",
    ),
    ("hba-cidr-bad", {"POSTGRES_HBA_CIDRS": "10.0.0.0/33"}, [], "POSTGRES_HBA_CIDRS", "both"),
    ("initdb-args-reserved", {"POSTGRES_INITDB_ARGS": "--pwfile=/x"}, [], "POSTGRES_INITDB_ARGS", "both"),
    ("initdb-args-unbalanced", {"POSTGRES_INITDB_ARGS": "--locale='C"}, [], "POSTGRES_INITDB_ARGS", "both"),
    ("waldir-relative", {"POSTGRES_INITDB_WALDIR": "wal"}, [], "POSTGRES_INITDB_WALDIR", "both"),
    ("pgdata-relative", {"PGDATA": "data"}, [], "PGDATA", "both"),
    ("preload-unknown-library", {"POSTGRES_SHARED_PRELOAD_LIBRARIES": "nosuchlib"}, [], "nosuchlib", "both"),
    ("arg-data-dir", {}, ["-D", "/elsewhere"], "-D", "both"),
    ("arg-c-without-value", {}, ["-c"], "-c", "both"),
    ("ssl-switch-bad", {"POSTGRES_SSL": "maybe"}, [], "POSTGRES_SSL", "both"),
]


@pytest.fixture(scope="module")
def instances() -> Iterator[dict[str, Instance]]:
    SECRETS.mkdir(mode=0o700, exist_ok=True)
    (SECRETS / "pw").write_text("file-secret\n")
    (SECRETS / "empty").write_text("")
    empty = Instance.create()
    empty.pgdata.mkdir(mode=0o755)  # a fresh, root-owned volume: must not even be chowned
    initialised = Instance.create()
    initialised.copy_pgdata_from(template_pgdata())
    try:
        yield {"empty": empty, "initialised": initialised}
    finally:
        empty.cleanup()
        initialised.cleanup()
        import shutil

        shutil.rmtree(SECRETS, ignore_errors=True)


def test_at_least_25_cases() -> None:
    assert len(CASES) >= 25


@pytest.mark.parametrize(
    ("changes", "args", "words", "applies"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_bad_input_exits_2_with_one_line_and_changes_nothing(
    instances: dict[str, Instance],
    changes: dict[str, str],
    args: list[str],
    words: str,
    applies: str,
) -> None:
    kinds = ["empty", "initialised"] if applies == "both" else ["empty"]
    for kind in kinds:
        pg = instances[kind]
        env = {**pg.env, **{k: v.replace("{secrets}", str(SECRETS)) for k, v in changes.items()}}
        before = tree_hash(pg.pgdata)
        original = dict(pg.env)
        pg.env.clear()
        pg.env.update(env)
        try:
            result = pg.run(args, timeout=60)
        finally:
            pg.env.clear()
            pg.env.update(original)
        lines = [ln for ln in result.output.splitlines() if ln.strip()]
        assert result.returncode == 2, (kind, result.output)
        assert len(lines) == 1, (kind, result.output)
        assert lines[0].startswith("[POSTGRES] [FATAL] "), lines[0]
        assert words in lines[0], (kind, lines[0])
        assert "Traceback" not in result.output
        assert tree_hash(pg.pgdata) == before, kind
