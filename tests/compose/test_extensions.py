"""The extension catalog in the built postgres image (issue 7).

Two containers serve the whole module: one started with the defaults (preloads, first-boot extensions,
what is and is not installed) and one with POSTGRES_SHARED_PRELOAD_LIBRARIES extended by every library
that only works preloaded, where every enabled entry is created and exercised by one smoke query.
SQL runs through `docker exec psql` on the container's own socket, so nothing listens on the host.

The rebuild test (disable one more entry in a copy of the repository, build, look) costs a full
package layer on two shared cores; it runs only with AZA_PG_EXT_REBUILD=1 (opt_in). CI covers the same
path without the build in tests/unit/test_manifest_generated.py plus the package-set check here.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from entrypoint import manifest

pytestmark = pytest.mark.compose

REPO = Path(__file__).resolve().parents[2]
IMAGE = os.environ.get("AZA_PG_POSTGRES_IMAGE", "aza-pg/postgres:17")
DB = "ext_app"
PASSWORD = "ext-test-" + uuid.uuid4().hex[:12]
RUNTIME_PATH = "/usr/share/aza-pg/extensions.json"
LIBDIR = "/usr/lib/postgresql/17/lib"
START_TIMEOUT = 180.0


def _manifest() -> manifest.Manifest:
    return manifest.from_data(yaml.safe_load((REPO / "manifest.yaml").read_text()))


M = _manifest()


def docker(*args: str, timeout: float = 120, check: bool = True, stdin: str | None = None
           ) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, input=stdin,
                            check=False)
    if check and result.returncode != 0:
        raise AssertionError(
            f"docker {' '.join(args[:3])} ... exited {result.returncode}: {result.stderr[-2000:]}")
    return result


@dataclass
class Pg:
    name: str
    first_boot: list[str]
    env_file: Path
    cleanup: list[str] = field(default_factory=list)

    def sh(self, script: str, *, user: str = "postgres", check: bool = True, timeout: float = 60
           ) -> subprocess.CompletedProcess[str]:
        return docker("exec", "-u", user, self.name, "sh", "-c", script, timeout=timeout, check=check)

    def psql(self, sql: str, *, db: str = DB, check: bool = True, timeout: float = 120,
             variables: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """Run SQL through psql on the socket. Values reach the SQL only as psql variables
        (:'name' quotes a literal, :"name" an identifier), never pasted into the text."""
        # The password never goes through argv: it is in the container's environment already.
        cmd = ("PGPASSWORD=\"$POSTGRES_PASSWORD\" exec psql -X -q -A -t -v ON_ERROR_STOP=1 "
               f"-h /var/run/postgresql -U postgres -d {shlex.quote(db)}")
        for key, value in (variables or {}).items():
            cmd += f" -v {shlex.quote(f'{key}={value}')}"
        return docker("exec", "-i", "-u", "postgres", self.name, "sh", "-c", cmd, stdin=sql, timeout=timeout,
                      check=check)

    def value(self, sql: str, db: str = DB, **variables: str) -> str:
        return self.psql(sql, db=db, variables=variables).stdout.strip()

    def logs(self) -> str:
        result = docker("logs", self.name, check=False)
        return result.stdout + result.stderr

    def wait_ready(self) -> None:
        """Ready = the final server answers, the first-boot extensions exist, and its start time is
        the same on two polls a second apart (an init-time temporary server would change it)."""
        probe = ("SELECT pg_postmaster_start_time(), (SELECT count(*) FROM pg_extension "
                 "WHERE extname = ANY (string_to_array(:'names', ',')))")
        names = {"names": ",".join(self.first_boot)}
        deadline = time.monotonic() + START_TIMEOUT
        last = ""
        while time.monotonic() < deadline:
            state = docker("inspect", "-f", "{{.State.Running}}", self.name, check=False).stdout.strip()
            if state != "true":
                raise AssertionError(f"container {self.name} stopped during start:\n{self.logs()[-4000:]}")
            result = self.psql(probe, check=False, timeout=30, variables=names)
            out = result.stdout.strip()
            if result.returncode == 0 and out.endswith(f"|{len(self.first_boot)}"):
                if out == last:
                    return
                last = out
            time.sleep(1)
        raise AssertionError(f"{self.name} not ready within {START_TIMEOUT:.0f}s:\n{self.logs()[-4000:]}")


def _require_image() -> None:
    if docker("image", "inspect", IMAGE, check=False).returncode != 0:
        pytest.fail(f"image {IMAGE} is missing: build it first (scripts/docker/build-images.sh) "
                    "or point AZA_PG_POSTGRES_IMAGE at it")


def _env_file(tmp: Path, env: dict[str, str]) -> Path:
    path = tmp / "env"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.writelines(f"{k}={v}\n" for k, v in env.items())
    return path


@contextlib.contextmanager
def running(tmp: Path, env: dict[str, str], first_boot: list[str], *, image: str = IMAGE,
            conf: str | None = None) -> Iterator[Pg]:
    _require_image()
    tmp.mkdir(parents=True, exist_ok=True)
    name = f"aza-ext-{uuid.uuid4().hex[:10]}"
    base = {"POSTGRES_PASSWORD": PASSWORD, "POSTGRES_DB": DB, "POSTGRES_MEMORY": "1024"}
    args = ["run", "-d", "--name", name, "--memory", "1g", "--shm-size", "256m",
            "--env-file", str(_env_file(tmp, {**base, **env}))]
    if conf is not None:
        confdir = tmp / "conf.d"
        confdir.mkdir(mode=0o755)
        (confdir / "90-ext-test.conf").write_text(conf)
        os.chmod(tmp, 0o755)  # noqa: S103 - the postgres user in the container reads the mounted file
        os.chmod(confdir / "90-ext-test.conf", 0o644)
        args += ["-v", f"{confdir}:/etc/postgresql/conf.d:ro"]
    pg = Pg(name=name, first_boot=first_boot, env_file=tmp / "env")
    try:
        docker(*args, image)
        pg.wait_ready()
        yield pg
    finally:
        docker("rm", "-f", "-v", name, check=False)


@pytest.fixture(scope="module")
def default_pg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pg]:
    with running(tmp_path_factory.mktemp("ext-default"), {}, M.first_boot_extensions()) as pg:
        yield pg


def smoke_preload() -> list[str]:
    """The default list plus every library that only works preloaded, dependencies first."""
    wanted = [e for e in M.enabled if e.library and (e.preload or e.needs_preload)]
    return [e.library for e in M.ordered(wanted) if e.library]


@pytest.fixture(scope="module")
def smoke_pg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pg]:
    env = {"POSTGRES_SHARED_PRELOAD_LIBRARIES": ",".join(smoke_preload())}
    # wal2json and pg_squeeze decode WAL; user conf.d is read after the generated config.
    conf = "wal_level = logical\nmax_replication_slots = 10\nmax_wal_senders = 10\n"
    with running(tmp_path_factory.mktemp("ext-smoke"), env, M.first_boot_extensions(), conf=conf) as pg:
        yield pg


# --- defaults ---------------------------------------------------------------------------------------

def test_image_carries_the_generated_catalog(default_pg: Pg) -> None:
    in_image = json.loads(default_pg.sh(f"cat {RUNTIME_PATH}").stdout)
    assert in_image == json.loads((REPO / "image/extensions.json").read_text())


def test_default_preloads_and_first_boot_extensions(default_pg: Pg) -> None:
    shown = default_pg.value("SHOW shared_preload_libraries")
    assert manifest.split_preload(shown) == M.default_preload()
    created = default_pg.value("SELECT string_agg(extname, ',' ORDER BY oid) FROM pg_extension "
                               "WHERE extname <> 'plpgsql'")
    assert sorted(created.split(",")) == sorted(M.first_boot_extensions())
    assert default_pg.value("SHOW cron.database_name") == DB
    plugins = [p.strip() for p in default_pg.value("SHOW output_plugin_libraries").split(",")]
    assert plugins == ["pgoutput", "test_decoding", *M.output_plugins()]
    # First boot creates them in POSTGRES_DB only.
    in_postgres = default_pg.value("SELECT count(*) FROM pg_extension WHERE extname = 'pg_cron'",
                                   db="postgres")
    assert in_postgres == "0"
    # The troubleshooting guide greps the container log for the setting.
    assert "shared_preload_libraries" in default_pg.logs()


def test_disabled_entry_is_not_installed(default_pg: Pg) -> None:
    for entry in M.disabled:
        assert default_pg.value("SELECT count(*) FROM pg_available_extensions WHERE name = :'ext'",
                                ext=str(entry.sql_name)) == "0"
        assert default_pg.sh(f"test -e {LIBDIR}/{entry.library}.so", check=False).returncode == 1
        package = entry.package(M.pg_major)
        assert package is not None
        status = default_pg.sh(f"dpkg-query -W -f '${{Status}}' {package}", check=False)
        assert "install ok installed" not in status.stdout


def test_installed_extension_packages_are_exactly_the_list(default_pg: Pg) -> None:
    """Every postgresql-17-* package in the image is on extensions.txt or pulled in by one that is, so
    removing a line from the list removes the package (what the rebuild test proves the long way)."""
    listed = set((REPO / "image/packages/extensions.txt").read_text().split())
    rows = default_pg.sh("dpkg-query -W -f '${Package}\\t${Status}\\t${Depends}\\n'").stdout.splitlines()
    installed: dict[str, set[str]] = {}
    for row in rows:
        pkg, status, depends = [*row.split("\t"), "", ""][:3]
        if status.endswith(" installed"):
            installed[pkg] = {d.strip().split(" ")[0] for alt in depends.split(",") for d in alt.split("|")
                              if d.strip()}
    assert listed <= set(installed), sorted(listed - set(installed))
    wanted = {f"postgresql-{M.pg_major}", *listed}
    closure: set[str] = set()
    todo = list(wanted)
    while todo:
        pkg = todo.pop()
        if pkg in closure or pkg not in installed:
            continue
        closure.add(pkg)
        todo.extend(installed[pkg])
    prefix = f"postgresql-{M.pg_major}-"
    extra = sorted(p for p in installed if p.startswith(prefix) and p not in closure)
    assert extra == []


# --- the override -----------------------------------------------------------------------------------

def test_override_replaces_the_default(smoke_pg: Pg) -> None:
    assert manifest.split_preload(smoke_pg.value("SHOW shared_preload_libraries")) == smoke_preload()
    assert smoke_preload() != M.default_preload()


def test_unknown_library_in_override_fails_fast_naming_it(tmp_path: Path) -> None:
    _require_image()
    env = _env_file(tmp_path, {"POSTGRES_PASSWORD": PASSWORD,
                               "POSTGRES_SHARED_PRELOAD_LIBRARIES": "pg_stat_statements,aza_no_such_lib"})
    name = f"aza-ext-{uuid.uuid4().hex[:10]}"
    started = time.monotonic()
    try:
        result = docker("run", "--name", name, "--env-file", str(env), IMAGE, timeout=90, check=False)
        elapsed = time.monotonic() - started
        output = result.stdout + result.stderr
        assert result.returncode == 2, output
        assert "aza_no_such_lib" in output
        assert "POSTGRES_SHARED_PRELOAD_LIBRARIES" in output
        assert "Traceback" not in output
        assert elapsed < 30, elapsed
        # It stopped before PostgreSQL ever ran: no server log line.
        assert "database system is ready" not in output
    finally:
        docker("rm", "-f", "-v", name, check=False)


# --- one smoke query per enabled entry ----------------------------------------------------------------

# name -> (SQL run after CREATE EXTENSION ... CASCADE, regular expression the output must match).
SMOKE: dict[str, tuple[str, str]] = {
    "pg_stat_statements": (
        # Constants are normalised away in pg_stat_statements, so the marker is a column alias.
        "SELECT 1 AS pgss_marker_column;\n"
        "SELECT count(*) FROM pg_stat_statements WHERE query LIKE '%pgss_marker_column%';",
        r"^1\n[1-9]\d*$"),
    "auto_explain": (
        "LOAD 'auto_explain'; SET auto_explain.log_min_duration = 0;\n"
        "SELECT 'auto-explain-marker' AS m;\nSELECT 'done';",
        r"^auto-explain-marker\ndone$"),  # the plan itself is checked in the log, see test_smoke
    "pg_trgm": ("SELECT round(similarity('abc', 'abd')::numeric, 3);", r"^0\.333$"),
    "btree_gin": (
        "CREATE TABLE smoke_gin (a int, tags text[]);\n"
        "CREATE INDEX smoke_gin_idx ON smoke_gin USING gin (a, tags);\n"
        "SELECT amname FROM pg_class c JOIN pg_am a ON a.oid = c.relam WHERE relname = 'smoke_gin_idx';",
        r"^gin$"),
    "btree_gist": (
        "CREATE TABLE smoke_room (room int, during int4range,\n"
        "  EXCLUDE USING gist (room WITH =, during WITH &&));\n"
        "INSERT INTO smoke_room VALUES (1, '[1,5)'), (2, '[1,5)');\n"
        "DO $$ BEGIN INSERT INTO smoke_room VALUES (1, '[3,8)'); RAISE EXCEPTION 'overlap accepted';\n"
        "EXCEPTION WHEN exclusion_violation THEN NULL; END $$;\n"
        "SELECT count(*) FROM smoke_room;",
        r"^2$"),
    "pgcrypto": (
        "SELECT encode(digest('abc', 'sha256'), 'hex');\n"
        "SELECT crypt('secret', s) = s FROM (SELECT crypt('secret', gen_salt('bf', 4)) AS s) x;",
        r"^ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\nt$"),
    "pg_prewarm": (
        "CREATE TABLE smoke_prewarm AS SELECT g FROM generate_series(1, 10000) g;\n"
        "SELECT pg_prewarm('smoke_prewarm')\n"
        "  = pg_relation_size('smoke_prewarm') / current_setting('block_size')::int;",
        r"^t$"),
    "pg_buffercache": (
        "CREATE TABLE smoke_bc AS SELECT g FROM generate_series(1, 10000) g;\n"
        "SELECT count(*) FROM smoke_bc;\n"
        "SELECT count(*) > 0 FROM pg_buffercache WHERE relfilenode = pg_relation_filenode('smoke_bc');",
        r"^10000\nt$"),
    "citext": ("SELECT 'Alice@Example.org'::citext = 'alice@example.ORG'::citext;", r"^t$"),
    "hstore": ("SELECT ('a=>1, b=>2'::hstore) -> 'b', akeys('a=>1, b=>2'::hstore);", r"^2\|\{a,b\}$"),
    "pgvector": (
        "CREATE TABLE smoke_items (id int, embedding vector(3));\n"
        "INSERT INTO smoke_items VALUES (1, '[1,2,3]'), (2, '[4,6,3]'), (3, '[10,10,10]');\n"
        "CREATE INDEX ON smoke_items USING hnsw (embedding vector_l2_ops);\n"
        "SELECT '[1,2,3]'::vector <-> '[4,6,3]'::vector;\n"
        "SET enable_seqscan = off;\n"
        "SELECT id FROM smoke_items ORDER BY embedding <-> '[4,5,3]' LIMIT 1;",
        r"^5\n2$"),
    "timescaledb": (
        "CREATE TABLE smoke_metrics (time timestamptz NOT NULL, v double precision);\n"
        "SELECT create_hypertable('smoke_metrics', by_range('time')) IS NOT NULL;\n"
        "INSERT INTO smoke_metrics VALUES (now(), 1), (now() - interval '30 days', 2);\n"
        "SELECT count(*) FROM timescaledb_information.chunks WHERE hypertable_name = 'smoke_metrics';\n"
        "SELECT sum(v) FROM smoke_metrics;",
        r"^t\n2\n3$"),
    "pg_cron": (
        "SELECT cron.schedule('smoke-job', '1 seconds',\n"
        "  $$INSERT INTO smoke_cron_runs VALUES (now())$$) > 0;\n"
        "SELECT database FROM cron.job WHERE jobname = 'smoke-job';",
        rf"^t\n{DB}$"),  # the run itself is checked in test_smoke
    "pgaudit": (
        "SET pgaudit.log = 'ddl';\nCREATE TABLE smoke_audit_marker (i int);\nSELECT 'ok';",
        r"^ok$"),  # the audit line is checked in the log, see test_smoke
    "pg_partman": (
        "CREATE TABLE smoke_part (id int, ts timestamptz NOT NULL) PARTITION BY RANGE (ts);\n"
        "SELECT partman.create_parent('public.smoke_part', 'ts', '1 day');\n"
        "SELECT count(*) > 1 FROM pg_inherits WHERE inhparent = 'smoke_part'::regclass;",
        r"^t\nt$"),
    "pg_repack": (
        "CREATE TABLE smoke_repack (id int PRIMARY KEY, pad text);\n"
        "INSERT INTO smoke_repack SELECT g, repeat('x', 100) FROM generate_series(1, 2000) g;\n"
        "SELECT repack.version() LIKE 'pg_repack %';",
        r"^t$"),  # the client program runs in test_smoke
    "hypopg": (
        "CREATE TABLE smoke_hypo AS SELECT g AS id FROM generate_series(1, 100000) g; ANALYZE smoke_hypo;\n"
        "SELECT indexname LIKE '%smoke_hypo%' FROM hypopg_create_index('CREATE INDEX ON smoke_hypo (id)');\n"
        "EXPLAIN (COSTS OFF) SELECT * FROM smoke_hypo WHERE id = 5;",
        r'^t\nIndex Only Scan using "?<\d+>btree_smoke_hypo_id"? on smoke_hypo\n.*Index Cond: \(id = 5\)$'),
    "hll": (
        "SELECT round(hll_cardinality(hll_add_agg(hll_hash_integer(g))))::int "
        "FROM generate_series(1, 10000) g;",
        r"^(9[6-9]\d\d|10[0-3]\d\d)$"),
    "http": (
        "SELECT urlencode('a b&c');\n"
        # A real request through libcurl, to a closed port inside the container: it must fail to connect.
        "DO $$ BEGIN PERFORM http_get('http://127.0.0.1:9/');\n"
        "  RAISE EXCEPTION 'request to a closed port worked';\n"
        "EXCEPTION WHEN OTHERS THEN IF SQLERRM NOT ILIKE '%connect%' THEN RAISE; END IF; END $$;\n"
        "SELECT 'ok';",
        r"^a\+b%26c\nok$"),
    "rum": (
        "CREATE TABLE smoke_rum (t text, v tsvector);\n"
        "INSERT INTO smoke_rum SELECT x, to_tsvector('simple', x) FROM (VALUES ('the quick brown fox'),\n"
        " ('a lazy dog'), ('fox and fox again')) s(x);\n"
        "CREATE INDEX ON smoke_rum USING rum (v rum_tsvector_ops);\nSET enable_seqscan = off;\n"
        "SELECT t FROM smoke_rum WHERE v @@ to_tsquery('simple', 'fox') "
        "ORDER BY v <=> to_tsquery('simple', 'fox') LIMIT 1;",
        r"^fox and fox again$"),
    "set_user": (
        "CREATE ROLE smoke_admin LOGIN; CREATE ROLE smoke_target;\n"
        "GRANT EXECUTE ON FUNCTION set_user(text) TO smoke_admin;\n"
        "SET ROLE smoke_admin;\nSELECT set_user('smoke_target');\nSELECT current_user;\n"
        "SELECT reset_user();\nSELECT current_user;",
        r"^OK\nsmoke_target\nOK\nsmoke_admin$"),
    "pg_hint_plan": (
        "LOAD 'pg_hint_plan';\n"
        "CREATE TABLE smoke_hint (id int PRIMARY KEY, v int);\n"
        "INSERT INTO smoke_hint SELECT g, g FROM generate_series(1, 10000) g; ANALYZE smoke_hint;\n"
        "/*+ SeqScan(smoke_hint) */ EXPLAIN (COSTS OFF) SELECT * FROM smoke_hint WHERE id = 1;",
        r"^Seq Scan on smoke_hint\n.*Filter: \(id = 1\)$"),
    "pg_qualstats": (
        "CREATE TABLE smoke_qs AS SELECT g AS id FROM generate_series(1, 1000) g;\n"
        "SET pg_qualstats.sample_rate = 1;\nSELECT count(*) FROM smoke_qs WHERE id = 42;\n"
        "SELECT count(*) > 0 FROM pg_qualstats_all WHERE relid = 'smoke_qs'::regclass;",
        r"^1\nt$"),
    "pg_stat_kcache": (
        "SELECT count(*) FROM generate_series(1, 100000);\n"
        "SELECT count(*) > 0 AND sum(exec_user_time) >= 0 FROM pg_stat_kcache_detail;",
        r"^100000\nt$"),
    "pg_wait_sampling": (
        "SELECT pg_sleep(0.5);\nSELECT count(*) > 0 FROM pg_wait_sampling_profile;",
        r"^\nt$"),
    "plpgsql_check": (
        "CREATE FUNCTION smoke_bad() RETURNS int LANGUAGE plpgsql AS $$\n"
        "BEGIN RETURN (SELECT nosuchcol FROM pg_class LIMIT 1); END $$;\n"
        "SELECT message FROM plpgsql_check_function_tb('smoke_bad()');",
        r'^column "nosuchcol" does not exist$'),
    "postgis": (
        "SELECT ST_Distance(ST_MakePoint(0, 0), ST_MakePoint(3, 4));\n"
        "SELECT round(ST_Distance('SRID=4326;POINT(0 0)'::geography,\n"
        "  'SRID=4326;POINT(0 1)'::geography))::int;\n"
        "SELECT ST_AsText(ST_Transform(ST_SetSRID(ST_MakePoint(0, 0), 4326), 3857));",
        r"^5\n1105\d\d\nPOINT\(0 0\)$"),
    "pgrouting": (
        "CREATE TABLE smoke_edges (id int, source int, target int, cost float8);\n"
        "INSERT INTO smoke_edges VALUES (1, 1, 2, 1), (2, 2, 3, 2), (3, 1, 3, 5);\n"
        "SELECT max(agg_cost) FROM pgr_dijkstra('SELECT id, source, target, cost FROM smoke_edges', 1, 3);",
        r"^3$"),
    "wal2json": (
        "CREATE TABLE smoke_w2j (id int PRIMARY KEY);\n"
        "SELECT 'slot' FROM pg_create_logical_replication_slot('smoke_w2j', 'wal2json');\n"
        "INSERT INTO smoke_w2j VALUES (7);\n"
        "SELECT data FROM pg_logical_slot_get_changes('smoke_w2j', NULL, NULL)\n"
        "  WHERE data LIKE '%smoke_w2j%';\n"
        "SELECT pg_drop_replication_slot('smoke_w2j');",
        r'^slot\n\{.*"table":"smoke_w2j".*"columnvalues":\[7\].*\}$'),
    "credcheck": (
        "SET credcheck.password_min_length = 12;\n"
        "DO $$ BEGIN CREATE ROLE smoke_cc PASSWORD 'short';\n"
        "  RAISE EXCEPTION 'short password accepted';\n"
        "EXCEPTION WHEN OTHERS THEN IF SQLERRM NOT LIKE '%password_min_length%' THEN RAISE; END IF; END $$;\n"
        "CREATE ROLE smoke_cc2 PASSWORD 'long-enough-password-1';\n"
        "SELECT count(*) FROM pg_roles WHERE rolname IN ('smoke_cc', 'smoke_cc2');",
        r"^1$"),
    "roaringbitmap": ("SELECT rb_cardinality(rb_or(rb_build('{1,2,3,5}'), rb_build('{3,4}')));", r"^5$"),
    "pg_squeeze": (
        "CREATE TABLE smoke_sq (id int PRIMARY KEY, pad text);\n"
        "INSERT INTO smoke_sq SELECT g, repeat('x', 200) FROM generate_series(1, 20000) g;\n"
        "DELETE FROM smoke_sq WHERE id % 2 = 0;\n"
        "CREATE TEMP TABLE smoke_sq_before AS SELECT relfilenode FROM pg_class WHERE relname = 'smoke_sq';\n"
        "SELECT squeeze.squeeze_table('public', 'smoke_sq');\n"
        "SELECT relfilenode <> (SELECT relfilenode FROM smoke_sq_before)\n"
        "  FROM pg_class WHERE relname = 'smoke_sq';\n"
        "SELECT count(*) FROM smoke_sq;",
        r"^\nt\n10000$"),
    "ip4r": ("SELECT '10.0.0.0/8'::ip4r >>= '10.1.2.3'::ip4, '2001:db8::/32'::ip6r >>= '2001:db8::1'::ip6;",
             r"^t\|t$"),
    "semver": ("SELECT max(v)::text\n"
               "FROM (VALUES ('1.10.0'::semver), ('1.9.0'::semver), ('1.10.0-rc1'::semver)) s(v);",
               r"^1\.10\.0$"),
    "tdigest": (
        "SELECT round(tdigest_percentile(g, 100, 0.5)) FROM generate_series(1, 10001) g;",
        r"^(49\d\d|50\d\d)$"),
}

TOOLS: dict[str, tuple[str, str]] = {
    "pgbackrest": ("pgbackrest version", r"^pgBackRest 2\.\d+"),
    "pgbadger": ("pgbadger --version", r"pgBadger version \d+"),
}


def test_every_enabled_entry_has_a_smoke_check() -> None:
    assert set(SMOKE) == {e.name for e in M.enabled if e.kind != "tool"}
    assert set(TOOLS) == {e.name for e in M.enabled if e.kind == "tool"}


def _wait_for(pg: Pg, sql: str, expected: str, seconds: float) -> str:
    deadline = time.monotonic() + seconds
    out = ""
    while time.monotonic() < deadline:
        out = pg.value(sql)
        if out == expected:
            return out
        time.sleep(0.5)
    return out


def _log_has(pg: Pg, pattern: str, seconds: float = 10) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if re.search(pattern, pg.logs()):
            return True
        time.sleep(0.5)
    return False


@pytest.mark.parametrize("name", list(SMOKE))
def test_smoke(smoke_pg: Pg, name: str) -> None:
    entry = M.by_name()[name]
    if name == "pg_cron":
        smoke_pg.psql("CREATE TABLE IF NOT EXISTS smoke_cron_runs (at timestamptz);")
    sql, pattern = SMOKE[name]
    create = 'CREATE EXTENSION IF NOT EXISTS :"ext" CASCADE;\n' if entry.sql_name else ""
    if name == "pg_partman":
        create = ("CREATE SCHEMA IF NOT EXISTS partman;\n"
                  "CREATE EXTENSION IF NOT EXISTS pg_partman SCHEMA partman;\n")
    result = smoke_pg.psql(create + sql, check=False, variables={"ext": str(entry.sql_name)})
    assert result.returncode == 0, f"{name}: {result.stderr.strip()}"
    out = result.stdout.rstrip("\n")
    assert re.fullmatch(pattern, out, re.DOTALL), f"{name}: output {out!r} does not match {pattern!r}"
    if entry.sql_name:
        assert smoke_pg.value("SELECT count(*) FROM pg_extension WHERE extname = :'ext'",
                              ext=entry.sql_name) == "1"
    if name == "pg_cron":
        runs = _wait_for(smoke_pg, "SELECT count(*) > 0 FROM smoke_cron_runs", "t", 20)
        assert runs == "t", smoke_pg.value(
            "SELECT string_agg(status || ': ' || coalesce(return_message, ''), '; ')"
            " FROM cron.job_run_details")
        smoke_pg.psql("SELECT cron.unschedule('smoke-job');")
    if name == "pgaudit":
        assert _log_has(smoke_pg, r"AUDIT: SESSION,\d+,\d+,DDL,CREATE TABLE,TABLE,public\.smoke_audit_marker")
    if name == "auto_explain":
        assert _log_has(smoke_pg, r"Query Text: SELECT 'auto-explain-marker' AS m")
    if name == "pg_repack":
        before = smoke_pg.value("SELECT relfilenode FROM pg_class WHERE relname = 'smoke_repack'")
        client = smoke_pg.sh("PGPASSWORD=\"$POSTGRES_PASSWORD\" pg_repack -h /var/run/postgresql -U postgres "
                             f"-d {DB} --table=smoke_repack", check=False, timeout=120)
        assert client.returncode == 0, client.stderr
        assert smoke_pg.value("SELECT relfilenode FROM pg_class WHERE relname = 'smoke_repack'") != before


@pytest.mark.parametrize("name", list(TOOLS))
def test_tool_runs(default_pg: Pg, name: str) -> None:
    command, pattern = TOOLS[name]
    result = default_pg.sh(command, check=False)
    assert result.returncode == 0, result.stderr
    assert re.search(pattern, result.stdout + result.stderr, re.MULTILINE)


# --- rebuild from a copy with one more entry disabled (expensive; opt-in) ---------------------------

DISABLE_FOR_REBUILD = "pg_cron"


def copy_repository(dest: Path) -> None:
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO,
                           capture_output=True, check=True, timeout=60).stdout.decode().split("\0")
    for rel in filter(None, files):
        src = REPO / rel
        if src.is_file() and not rel.startswith((".venv/", "tests/")):
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)


def disable_entry(root: Path, name: str, reason: str) -> None:
    path = root / "manifest.yaml"
    data = yaml.safe_load(path.read_text())
    for raw in data["entries"]:
        if raw["name"] == name:
            raw.update(enabled=False, preload=False, first_boot=False, reason=reason)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


@pytest.mark.opt_in
@pytest.mark.skipif(os.environ.get("AZA_PG_EXT_REBUILD") != "1",
                    reason="rebuilds the postgres image (minutes on 2 cores); set AZA_PG_EXT_REBUILD=1")
def test_rebuild_with_one_more_entry_disabled(tmp_path: Path) -> None:
    _require_image()
    tree = tmp_path / "repo"
    copy_repository(tree)
    disable_entry(tree, DISABLE_FOR_REBUILD, "not wanted in this deployment")
    gen = subprocess.run([sys.executable, str(tree / "scripts/gen_extensions.py"), "--root", str(tree)],
                         capture_output=True, text=True, timeout=60, check=False)
    assert gen.returncode == 0, gen.stderr
    copy = manifest.from_data(yaml.safe_load((tree / "manifest.yaml").read_text()))
    disabled_table = (tree / "docs/EXTENSIONS.md").read_text().split("Disabled (not installed")[1]
    assert f"| {DISABLE_FOR_REBUILD} |" in disabled_table
    tag = "aza-pg/postgres:ext-rebuild-test"
    build = docker("build", "--target", "postgres", "-t", tag, str(tree), timeout=1800, check=False)
    assert build.returncode == 0, build.stderr[-3000:]
    try:
        with running(tmp_path / "run", {}, copy.first_boot_extensions(), image=tag) as pg:
            preload = manifest.split_preload(pg.value("SHOW shared_preload_libraries"))
            assert preload == copy.default_preload()
            assert "pg_cron" not in preload
            assert pg.value("SELECT count(*) FROM pg_available_extensions WHERE name = 'pg_cron'") == "0"
            assert pg.sh(f"test -e {LIBDIR}/pg_cron.so", check=False).returncode == 1
            runtime = json.loads(pg.sh(f"cat {RUNTIME_PATH}").stdout)
            assert runtime["default_shared_preload_libraries"] == copy.default_preload()
            # Everything else is still there.
            assert pg.value("SELECT count(*) FROM pg_available_extensions WHERE name = 'vector'") == "1"
    finally:
        docker("rmi", tag, check=False)
