"""The postgres entrypoint against real PostgreSQL binaries on 127.0.0.1: first boot, restarts, tuning
applied and overridden, init scripts, signals."""

from __future__ import annotations

import gzip
import json
import lzma
import os
import signal
import subprocess
from pathlib import Path

import pytest

from entrypoint import units
from tests.process.pgharness import BINDIR, PG_MAJOR, PYTHON, PYTHON_ENV, REPO, Instance, template_pgdata

pytestmark = pytest.mark.process

TUNED = (
    "shared_buffers",
    "effective_cache_size",
    "maintenance_work_mem",
    "work_mem",
    "max_connections",
    "max_wal_size",
    "wal_buffers",
    "max_parallel_workers",
)


def _tune_cli(memory: int, cpus: int) -> dict[str, str]:
    """What `aza-pg tune` prints for the same inputs (JSON)."""
    proc = subprocess.run(
        [
            *PYTHON,
            "-m",
            "entrypoint",
            "tune",
            "--memory",
            str(memory),
            "--cpus",
            str(cpus),
            "--pg-version",
            str(PG_MAJOR),
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        cwd=REPO,
        env={**os.environ, **PYTHON_ENV},
    )
    data = json.loads(proc.stdout)
    return {k: str(v) for k, v in data["settings"].items()}


def _in_kb_or_int(value: str, unit: str | None) -> int:
    if unit in (None, ""):
        return int(value)
    kb = units.parse_pg_size_kb(value, default_unit_kb=1)
    assert kb is not None
    return kb


def _effective(pg: Instance, name: str) -> tuple[int, str]:
    rows = pg.query("SELECT setting, unit, sourcefile FROM pg_settings WHERE name = %s", name)
    setting, unit, sourcefile = rows[0]
    factor = {"8kB": 8, "kB": 1, "MB": 1024}.get(unit or "", 1)
    return int(setting) * factor, sourcefile or ""


def test_fresh_start_applies_exactly_what_tune_computes() -> None:
    with Instance.create(memory_mb=2048, cpus=2) as pg:
        pg.start()
        out = pg.start_output()
        assert "initdb: initialising a new cluster" in out
        summary = [
            ln for ln in out.splitlines() if ln.startswith("[POSTGRES] [AUTO-CONFIG] RAM: 2048MB (manual)")
        ]
        assert len(summary) == 1, out
        expected = _tune_cli(2048, 2)
        generated = str(pg.pgdata / "aza-pg/conf.d/10-auto-config.conf")
        for name in TUNED:
            value, sourcefile = _effective(pg, name)
            unit = "kB" if not expected[name].isdigit() else None
            assert value == _in_kb_or_int(expected[name], unit), (name, value, expected[name])
            assert sourcefile == generated, (name, sourcefile)
            assert f"{name}={expected[name]}" in summary[0]
        assert pg.query("SHOW shared_buffers")[0][0] == expected["shared_buffers"]
        # checksums, UTF-8, scram
        assert pg.query("SHOW data_checksums")[0][0] == "on"
        assert (
            pg.query("SELECT pg_encoding_to_char(encoding) FROM pg_database WHERE datname='postgres'")[0][0]
            == "UTF8"
        )
        assert pg.query("SELECT rolpassword LIKE 'SCRAM-SHA-256$%%' FROM pg_authid WHERE rolname='postgres'")[
            0
        ][0]
        assert pg.query("SHOW shared_preload_libraries")[0][0] == "pg_stat_statements"
        assert "shared_preload_libraries=pg_stat_statements" in out


def _psql(host: str, port: int, user: str, password: str | None = None) -> subprocess.CompletedProcess[str]:
    """psql as root (like `docker exec ... psql`), without any password unless given."""
    env = {"PATH": os.environ["PATH"], "LANG": "C.UTF-8"}
    if password is not None:
        env["PGPASSWORD"] = password
    cmd = [str(BINDIR / "psql"), "-h", host, "-p", str(port), "-d", "postgres", "-U", user, "-XAtw"]
    return subprocess.run(
        [*cmd, "-c", "SELECT current_user"], capture_output=True, text=True, env=env, check=False, timeout=30
    )


def test_local_socket_superuser_without_password_but_not_other_roles() -> None:
    with Instance.create() as pg:
        pg.start()
        pg.query("CREATE ROLE app LOGIN PASSWORD 'app-secret'")
        sock = str(pg.socket_dir)
        ok = _psql(sock, pg.port, "postgres")
        assert ok.returncode == 0, ok.stderr
        assert ok.stdout.strip() == "postgres"
        denied = _psql(sock, pg.port, "app")
        assert denied.returncode != 0
        assert "password" in denied.stderr
        with_pw = _psql(sock, pg.port, "app", "app-secret")
        assert with_pw.returncode == 0
        assert with_pw.stdout.strip() == "app"
        # TCP never trusts: the superuser without a password is refused
        assert _psql("127.0.0.1", pg.port, "postgres").returncode != 0


def test_minus_c_argument_wins_and_is_logged() -> None:
    with Instance.create() as pg:
        pg.copy_pgdata_from(template_pgdata())
        pg.start(args=["-c", "shared_buffers=200MB", "-c", "work_mem=3MB"])
        assert pg.query("SHOW shared_buffers")[0][0] == "200MB"
        assert pg.query("SHOW work_mem")[0][0] == "3MB"
        out = pg.start_output()
        computed = _tune_cli(1024, 2)
        assert (
            f"shared_buffers=200MB set by -c argument overrides the computed {computed['shared_buffers']}"
            in out
        )
        assert f"work_mem=3MB set by -c argument overrides the computed {computed['work_mem']}" in out


def test_alter_system_wins_after_restart_and_mounted_file_beats_auto_config() -> None:
    computed = _tune_cli(1024, 2)
    with Instance.create() as pg:
        pg.copy_pgdata_from(template_pgdata())
        (pg.conf_d / "custom.conf").write_text("maintenance_work_mem = '77MB'\n")
        pg.start()
        assert pg.query("SHOW maintenance_work_mem")[0][0] == "77MB"
        assert (
            f"maintenance_work_mem=77MB set by {pg.conf_d / 'custom.conf'} overrides the computed "
            f"{computed['maintenance_work_mem']}" in pg.start_output()
        )
        pg.query("ALTER SYSTEM SET shared_buffers = '300MB'")
        pg.stop()
        pg.start()
        assert pg.query("SHOW shared_buffers")[0][0] == "300MB"
        _, sourcefile = _effective(pg, "shared_buffers")
        assert sourcefile.endswith("postgresql.auto.conf")
        assert (
            "shared_buffers=300MB set by ALTER SYSTEM (postgresql.auto.conf) overrides the computed "
            f"{computed['shared_buffers']}" in pg.start_output()
        )


def test_second_start_recomputes_without_initdb_and_reports_the_change() -> None:
    with Instance.create(memory_mb=1024) as pg:
        (pg.initdb_d / "10-once.sql").write_text("CREATE TABLE once(i int); INSERT INTO once VALUES (1);\n")
        pg.start()
        assert pg.query("SHOW shared_buffers")[0][0] == "256MB"
        pg.stop()
        pg.env["POSTGRES_MEMORY"] = "2048"
        pg.start()
        out = pg.start_output()
        assert "initdb" not in out
        assert "init script" not in out
        assert pg.query("SHOW shared_buffers")[0][0] == "512MB"
        assert "resources changed since the last start: memory 1024MB -> 2048MB" in out
        assert pg.query("SELECT count(*) FROM once")[0][0] == 1
        pg.stop()
        pg.start()
        assert "resources changed" not in pg.start_output()


def test_auto_config_off_writes_no_computed_values() -> None:
    with Instance.create({"POSTGRES_AUTO_CONFIG": "off"}) as pg:
        pg.start()
        assert pg.query("SHOW shared_buffers")[0][0] == "128MB"  # PostgreSQL's default
        assert "POSTGRES_AUTO_CONFIG=off: no computed values are written" in pg.start_output()
        text = (pg.pgdata / "aza-pg/conf.d/10-auto-config.conf").read_text()
        assert not [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]


def _zstd(data: bytes) -> bytes:
    return subprocess.run(
        ["zstd", "-q", "-c"], input=data, capture_output=True, check=True, timeout=30
    ).stdout


def test_init_scripts_of_every_type_run_once_in_order() -> None:
    with Instance.create() as pg:
        d = pg.initdb_d
        (d / "00-table.sql").write_text("CREATE TABLE steps(n serial, name text);\n")
        (d / "10-shell.sh").write_text(
            "psql -v ON_ERROR_STOP=1 -c \"INSERT INTO steps(name) VALUES ('sh:$POSTGRES_DB')\"\n"
        )
        (d / "20-plain.sql").write_text("INSERT INTO steps(name) VALUES ('sql');\n")
        (d / "30-gz.sql.gz").write_bytes(gzip.compress(b"INSERT INTO steps(name) VALUES ('gz');\n"))
        (d / "40-xz.sql.xz").write_bytes(lzma.compress(b"INSERT INTO steps(name) VALUES ('xz');\n"))
        (d / "50-zst.sql.zst").write_bytes(_zstd(b"INSERT INTO steps(name) VALUES ('zst');\n"))
        (d / "60-readme.txt").write_text("not run\n")
        pg.start()
        rows = [r[0] for r in pg.query("SELECT name FROM steps ORDER BY n")]
        assert rows == ["sh:postgres", "sql", "gz", "xz", "zst"]
        assert "60-readme.txt: ignored" in pg.start_output()
        pg.stop()
        pg.start()
        assert [r[0] for r in pg.query("SELECT name FROM steps ORDER BY n")] == rows
        assert "init script" not in pg.start_output()


def test_failing_init_script_aborts_and_next_start_is_not_initialised() -> None:
    with Instance.create() as pg:
        (pg.initdb_d / "10-ok.sql").write_text("CREATE TABLE marker(i int); INSERT INTO marker VALUES (1);\n")
        (pg.initdb_d / "20-bad.sql").write_text("SELECT * FROM no_such_table;\n")
        result = pg.run(timeout=120)
        assert result.returncode == 1
        fatal = [ln for ln in result.output.splitlines() if "[FATAL]" in ln]
        assert len(fatal) == 1, result.output
        assert "init script 20-bad.sql failed" in fatal[0]
        assert not (pg.pgdata / "PG_VERSION").exists()
        # a plain start must not come up with the half-made cluster: it initialises again and fails again
        again = pg.run(timeout=120)
        assert again.returncode == 1
        assert "initdb: initialising a new cluster" in again.output
        assert "incomplete cluster a failed first boot left behind" in again.output
        (pg.initdb_d / "20-bad.sql").write_text("SELECT 1;\n")
        pg.start()
        assert pg.query("SELECT count(*) FROM marker")[0][0] == 1


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_stops_cleanly_within_5s_and_next_start_has_no_recovery(sig: int) -> None:
    with Instance.create() as pg:
        pg.copy_pgdata_from(template_pgdata())
        pg.start()
        pg.query("CREATE TABLE t AS SELECT generate_series(1, 1000) AS i")
        took = pg.stop(sig, timeout=10)
        assert took < 5.0
        assert pg.proc is not None
        assert pg.proc.returncode == 0
        mark = pg.mark()
        pg.start()
        out = pg.output_since(mark)
        assert "database system was shut down at" in out
        for bad in ("not properly shut down", "automatic recovery", "was interrupted", "crash recovery"):
            assert bad not in out


def test_exec_runs_other_commands_as_is() -> None:
    with Instance.create() as pg:
        result = pg.run(["bash", "-c", "echo hello-from-bash; exit 7"])
        assert result.returncode == 7
        assert "hello-from-bash" in result.output
        assert not pg.pgdata.exists()


def test_postmaster_is_the_exec_d_process_with_oom_settings_and_not_root() -> None:
    with Instance.create() as pg:
        pg.copy_pgdata_from(template_pgdata())
        pg.start()
        pid = pg.pid
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        assert Path(cmdline[0].decode()).name == "postgres"
        status = Path(f"/proc/{pid}/status").read_text()
        uid_line = next(ln for ln in status.splitlines() if ln.startswith("Uid:"))
        assert uid_line.split()[1] != "0"
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        assert b"PG_OOM_ADJUST_FILE=/proc/self/oom_score_adj" in environ
        assert b"PG_OOM_ADJUST_VALUE=900" in environ
        backend = pg.query("SELECT pg_backend_pid()")  # a new backend: its score was raised after fork
        with pg.connect() as conn:
            bpid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
            assert Path(f"/proc/{bpid}/oom_score_adj").read_text().strip() == "900"
        assert Path(f"/proc/{pid}/oom_score_adj").read_text().strip() != "900"
        assert backend


def test_bad_value_in_a_mounted_file_fails_fast_with_one_line_naming_it() -> None:
    with Instance.create() as pg:
        pg.copy_pgdata_from(template_pgdata())
        (pg.conf_d / "broken.conf").write_text("work_mem = 'banana'\n")
        result = pg.run(timeout=60)
        assert result.returncode == 2, result.output
        fatal = [ln for ln in result.output.splitlines() if "[FATAL]" in ln]
        assert len(fatal) == 1
        assert "PostgreSQL rejects the configuration" in fatal[0]
        assert "work_mem" in fatal[0]
        (pg.conf_d / "broken.conf").unlink()
        pg.start()
        assert pg.query("SELECT 1") == [(1,)]


def test_failed_first_boot_with_a_wal_directory_can_be_retried() -> None:
    with Instance.create() as pg:
        waldir = pg.base / "wal"
        pg.env["POSTGRES_INITDB_WALDIR"] = str(waldir)
        (pg.initdb_d / "10-bad.sql").write_text("SELECT broken;\n")
        assert pg.run(timeout=120).returncode == 1
        assert not (pg.pgdata / "PG_VERSION").exists()
        (pg.initdb_d / "10-bad.sql").write_text("SELECT 1;\n")
        pg.start()
        assert (pg.pgdata / "pg_wal").is_symlink()
        assert Path(os.readlink(pg.pgdata / "pg_wal")) == waldir
        assert pg.query("SHOW data_checksums") == [("on",)]


def _extensions_json(path: Path) -> None:
    entry = {"enabled": True, "package": None, "requires": [], "output_plugin": False, "first_boot": True}
    path.write_text(
        json.dumps(
            {
                "default_shared_preload_libraries": ["pg_stat_statements", "auto_explain"],
                "first_boot_extensions": ["pg_stat_statements", "pg_trgm"],
                "output_plugins": ["test_decoding"],
                "catalog": [
                    {
                        **entry,
                        "name": "pg_stat_statements",
                        "sql_name": "pg_stat_statements",
                        "library": "pg_stat_statements",
                        "needs_preload": True,
                    },
                    {
                        **entry,
                        "name": "pg_trgm",
                        "sql_name": "pg_trgm",
                        "library": "pg_trgm",
                        "needs_preload": False,
                    },
                    {
                        **entry,
                        "name": "auto_explain",
                        "sql_name": None,
                        "library": "auto_explain",
                        "needs_preload": True,
                        "first_boot": False,
                    },
                ],
            }
        )
    )


@pytest.mark.parametrize("override", [None, "auto_explain"], ids=["image-default", "override"])
def test_image_extension_manifest_drives_preload_and_first_boot_extensions(override: str | None) -> None:
    with Instance.create({"POSTGRES_DB": "appdb"}) as pg:
        manifest = pg.base / "extensions.json"
        _extensions_json(manifest)
        pg.env["AZA_PG_EXTENSIONS_JSON"] = str(manifest)
        if override is not None:
            pg.env["POSTGRES_SHARED_PRELOAD_LIBRARIES"] = override
        pg.start()
        out = pg.start_output()
        created = {r[0] for r in pg.query("SELECT extname FROM pg_extension")}
        if override is None:
            assert pg.query("SHOW shared_preload_libraries") == [("pg_stat_statements,auto_explain",)]
            assert {"pg_stat_statements", "pg_trgm"} <= created
            assert "shared_preload_libraries=pg_stat_statements,auto_explain" in out
        else:
            assert pg.query("SHOW shared_preload_libraries") == [("auto_explain",)]
            assert "pg_trgm" in created
            assert "pg_stat_statements" not in created
            assert (
                "not creating extension pg_stat_statements: its library is not in shared_preload_libraries"
                in out
            )
        base = (pg.pgdata / "aza-pg/conf.d/00-aza-pg.conf").read_text()
        assert "cron.database_name = appdb" in base
        # PostgreSQL 15 has no output_plugin_libraries: writing it would stop the server
        has_setting = bool(
            pg.query("SELECT count(*) FROM pg_settings WHERE name = 'output_plugin_libraries'")[0][0]
        )
        assert ("output_plugin_libraries" in base) == has_setting


def test_root_start_leaves_an_owned_volume_alone() -> None:
    """No recursive chown on every start: a root-owned file inside a postgres-owned PGDATA stays root's."""
    with Instance.create() as pg:
        pg.copy_pgdata_from(template_pgdata())
        marker = pg.pgdata / "root-owned-marker"
        marker.write_text("x")
        os.chown(marker, 0, 0)
        pg.start()
        assert marker.stat().st_uid == 0
        assert pg.pgdata.stat().st_uid != 0


def test_trust_needs_no_password_and_warns_loudly() -> None:
    with Instance.create({"POSTGRES_PASSWORD": "", "POSTGRES_HOST_AUTH_METHOD": "trust"}) as pg:
        pg.start()
        assert "POSTGRES_HOST_AUTH_METHOD=trust" in pg.start_output()
        assert "WARNING" in pg.start_output()
        assert pg.query("SELECT current_user") == [("postgres",)]


def test_json_log_lines_work_after_the_privilege_drop() -> None:
    with Instance.create({"AZA_PG_LOG_FORMAT": "json"}) as pg:
        pg.copy_pgdata_from(template_pgdata())
        pg.start()
        ours = [json.loads(ln) for ln in pg.start_output().splitlines() if ln.startswith("{")]
        topics = {(r["component"], r["topic"]) for r in ours}
        assert ("postgres", "auto-config") in topics
        assert any(r["event"].startswith("RAM: 1024MB (manual)") for r in ours)
        assert any(r["event"].startswith("starting PostgreSQL") for r in ours)
