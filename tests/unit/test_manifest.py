"""Schema check and derived views of the extension manifest (entrypoint/manifest.py)."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from entrypoint import manifest
from entrypoint.errors import ConfigError

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]


def entry(name: str, **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": name,
        "kind": "extension",
        "enabled": True,
        "source": "postgresql-{pg_major}-" + name.replace("_", "-"),
        "sql_name": name,
        "library": name,
        "preload": False,
        "needs_preload": False,
        "output_plugin": False,
        "first_boot": False,
        "requires": [],
        "description": f"The {name} extension.",
    }
    base.update(fields)
    return base


def small() -> dict[str, Any]:
    """A valid manifest with each kind, a dependency, a preload and a disabled entry."""
    return {
        "pg_major": 17,
        "entries": [
            entry("pg_stat_statements", source="contrib", preload=True, needs_preload=True, first_boot=True),
            entry("auto_explain", kind="module", source="contrib", sql_name=None, preload=True),
            entry("pg_stat_kcache", needs_preload=True, requires=["pg_stat_statements"]),
            entry("postgis", source="postgresql-{pg_major}-postgis-3", library="postgis-3"),
            entry("pgrouting", library=None, requires=["postgis"]),
            entry("pg_cron", source="postgresql-{pg_major}-cron", preload=True, needs_preload=True,
                  first_boot=True),
            entry("pgq", source="postgresql-{pg_major}-pgq3", library="pgq_lowlevel", enabled=False,
                  reason="needs the pgqd daemon"),
            entry("wal2json", kind="module", sql_name=None, output_plugin=True),
            entry("pgbackrest", kind="tool", source="pgbackrest", sql_name=None, library=None),
        ],
    }


def find(doc: dict[str, Any], name: str) -> dict[str, Any]:
    return next(e for e in doc["entries"] if e["name"] == name)


def test_small_manifest_is_valid() -> None:
    assert manifest.validate(small()) == []


Mutation = Callable[[dict[str, Any]], None]


def _set(name: str, key: str, value: Any) -> Mutation:
    return lambda doc: find(doc, name).__setitem__(key, value)


def _drop(name: str, key: str) -> Mutation:
    return lambda doc: find(doc, name).pop(key)


def _append(e: dict[str, Any]) -> Mutation:
    return lambda doc: doc["entries"].append(e)


def _both(first: Mutation, second: Mutation) -> Mutation:
    def run(doc: dict[str, Any]) -> None:
        first(doc)
        second(doc)
    return run


CASES: list[tuple[str, Mutation, str]] = [
    ("unknown entry key", _set("postgis", "preloaded", True),
     "entry 'postgis': unknown key 'preloaded'"),
    ("unknown top key", lambda d: d.__setitem__("extensions", []), "unknown top-level key 'extensions'"),
    ("missing field", _drop("postgis", "description"), "entry 'postgis': missing key 'description'"),
    ("missing package (absent)", _drop("postgis", "source"), "entry 'postgis': missing key 'source'"),
    ("missing package (empty)", _set("postgis", "source", ""), "entry 'postgis': missing package"),
    ("missing package (null)", _set("postgis", "source", None), "entry 'postgis': missing package"),
    ("bad package name", _set("postgis", "source", "PostGIS 3"),
     "entry 'postgis': source 'PostGIS 3' is not a valid Debian package name"),
    ("unknown placeholder", _set("postgis", "source", "postgresql-{major}-postgis-3"),
     "unknown placeholder {major}"),
    ("disabled but preloaded", _set("pg_cron", "enabled", False),
     "entry 'pg_cron': preload: true but the entry is disabled"),
    ("disabled but first boot", _set("pg_cron", "enabled", False),
     "entry 'pg_cron': first_boot: true but the entry is disabled"),
    ("disabled without reason", _drop("pgq", "reason"), "entry 'pgq': disabled entry needs a reason"),
    ("reason on enabled entry", _set("postgis", "reason", "x"),
     "entry 'postgis': reason is only for disabled entries"),
    ("dependency on disabled entry", _set("postgis", "enabled", False),
     "entry 'pgrouting': requires 'postgis', which is disabled"),
    ("unknown dependency", _set("pgrouting", "requires", ["postgis", "geos"]),
     "entry 'pgrouting': requires unknown entry 'geos'"),
    ("self dependency", _set("pgrouting", "requires", ["pgrouting"]), "entry 'pgrouting': requires itself"),
    ("dependency cycle", _set("postgis", "requires", ["pgrouting"]), "dependency cycle"),
    ("duplicate name", _append(entry("postgis", library="postgis-x", sql_name="postgis_x")),
     "entry 'postgis': duplicate name"),
    ("duplicate sql_name", _append(entry("vector2", sql_name="postgis")),
     "entry 'vector2': sql_name 'postgis' is also used by 'postgis'"),
    ("wrong kind", _set("postgis", "kind", "plugin"),
     "entry 'postgis': kind must be one of extension, module, tool, got 'plugin'"),
    ("extension without sql_name", _set("postgis", "sql_name", None),
     "entry 'postgis': kind extension needs sql_name"),
    ("module with sql_name", _set("auto_explain", "sql_name", "auto_explain"),
     "entry 'auto_explain': kind module has no SQL extension"),
    ("module without library", _set("auto_explain", "library", None),
     "entry 'auto_explain': kind module needs library"),
    ("tool preloaded", _set("pgbackrest", "preload", True),
     "entry 'pgbackrest': kind tool cannot have preload"),
    ("output plugin without library", _set("pgrouting", "output_plugin", True),
     "entry 'pgrouting': output_plugin: true needs a library"),
    ("tool as output plugin", _set("pgbackrest", "output_plugin", True),
     "entry 'pgbackrest': kind tool cannot have output_plugin: true"),
    ("tool from contrib", _set("pgbackrest", "source", "contrib"),
     "entry 'pgbackrest': kind tool needs a Debian package"),
    ("preload without library", _set("pgrouting", "preload", True),
     "entry 'pgrouting': preload: true needs a library"),
    ("flag not a bool", _set("postgis", "preload", "yes"), "entry 'postgis': preload must be true or false"),
    ("requires not a list", _set("pgrouting", "requires", "postgis"),
     "entry 'pgrouting': requires must be a list"),
    ("bad name", _set("postgis", "name", "Post GIS"), "name must match"),
    ("library with path", _set("postgis", "library", "../postgis"),
     "entry 'postgis': library must be null or a library file name"),
    ("multi-line description", _set("postgis", "description", "one\ntwo"),
     "entry 'postgis': description must be one non-empty line"),
    ("first boot needs dependency first boot", _set("pgrouting", "first_boot", True),
     "entry 'pgrouting': first_boot needs 'postgis' to have first_boot: true too"),
    ("needs_preload first boot but not preloaded", _set("pg_cron", "preload", False),
     "entry 'pg_cron': first_boot: true with needs_preload: true needs preload: true"),
    ("preload needs dependency preloaded", _both(_set("pg_stat_kcache", "preload", True),
                                                 _set("pg_stat_statements", "preload", False)),
     "entry 'pg_stat_kcache': preload needs 'pg_stat_statements' to have preload: true"),
    ("bad pg_major", lambda d: d.__setitem__("pg_major", "17"), "pg_major must be a PostgreSQL major"),
    ("entry not a mapping", _append("hstore"), "entry #10: must be a mapping"),  # type: ignore[arg-type]
]


@pytest.mark.parametrize(("mutate", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_schema_error(mutate: Mutation, expected: str) -> None:
    doc = copy.deepcopy(small())
    mutate(doc)
    problems = manifest.validate(doc)
    assert any(expected in p for p in problems), problems
    with pytest.raises(ConfigError) as info:
        manifest.from_data(doc)
    # One line per problem, each naming what is wrong.
    assert info.value.args[0].splitlines() == problems


def test_every_problem_is_reported_once_per_line() -> None:
    doc = small()
    find(doc, "postgis")["kind"] = "plugin"
    find(doc, "pgq")["preload"] = True
    doc["entries"].append(entry("postgis", library="p2", sql_name="p2"))
    problems = manifest.validate(doc)
    assert len(problems) == 3, problems
    assert all("\n" not in p for p in problems)


def test_not_a_mapping() -> None:
    assert manifest.validate(["a"]) == ["manifest must be a mapping with keys entries, pg_major"]


def test_derived_views_of_small_manifest() -> None:
    m = manifest.from_data(small())
    assert m.packages() == [
        "pgbackrest",
        "postgresql-17-cron",
        "postgresql-17-pg-stat-kcache",
        "postgresql-17-pgrouting",
        "postgresql-17-postgis-3",
        "postgresql-17-wal2json",
    ]
    assert m.packages(18)[1] == "postgresql-18-cron"
    assert m.default_preload() == ["pg_stat_statements", "auto_explain", "pg_cron"]
    assert m.first_boot_extensions() == ["pg_stat_statements", "pg_cron"]
    assert m.output_plugins() == ["wal2json"]


def test_dependencies_come_first_whatever_the_manifest_order() -> None:
    doc = small()
    doc["entries"].reverse()  # pg_stat_kcache now precedes pg_stat_statements, pgrouting precedes postgis
    for name in ("pg_stat_statements", "pg_stat_kcache"):
        find(doc, name).update(preload=True, first_boot=True)
    find(doc, "pg_stat_kcache")["first_boot"] = True
    m = manifest.from_data(doc)
    preload = m.default_preload()
    assert preload.index("pg_stat_statements") < preload.index("pg_stat_kcache")
    first = m.first_boot_extensions()
    assert first.index("pg_stat_statements") < first.index("pg_stat_kcache")
    order = [e.name for e in m.ordered(m.enabled)]
    assert order.index("postgis") < order.index("pgrouting")


# --- the real manifest -----------------------------------------------------------------------------

def real() -> manifest.Manifest:
    return manifest.from_data(yaml.safe_load((REPO / "manifest.yaml").read_text()))


def test_real_manifest_counts_and_defaults() -> None:
    m = real()
    assert len(m.entries) == 38
    assert len(m.enabled) == 37
    assert [e.name for e in m.disabled] == ["pgq"]
    assert set(m.default_preload()) == {
        "pg_stat_statements", "auto_explain", "pg_cron", "pgaudit", "timescaledb"}
    assert m.first_boot_extensions() == ["pg_stat_statements", "pg_cron", "pgaudit"]
    assert m.output_plugins() == ["wal2json", "pg_squeeze"]
    packages = m.packages()
    assert "postgresql-17-pgq3" not in packages
    assert "postgresql-17-pgvector" in packages
    assert not any("{" in p for p in packages)


def test_real_manifest_names_the_sql_and_library_names_that_differ() -> None:
    by = real().by_name()
    assert (by["pgvector"].sql_name, by["pgvector"].library) == ("vector", "vector")
    assert by["postgis"].library == "postgis-3"
    assert by["timescaledb"].preload
    assert by["timescaledb"].library == "timescaledb"
    assert by["pg_cron"].library == "pg_cron"
    assert by["pgaudit"].library == "pgaudit"


# --- the runtime document and the override check -------------------------------------------------

def test_runtime_round_trip_and_first_boot_plan() -> None:
    m = manifest.from_data(small())
    rt = manifest.parse_runtime(json.dumps(m.runtime()))
    assert rt.default_preload == ("pg_stat_statements", "auto_explain", "pg_cron")
    assert rt.first_boot_extensions == ("pg_stat_statements", "pg_cron")
    assert "pgq_lowlevel" not in rt.libraries  # disabled
    assert "postgis-3" in rt.libraries
    assert rt.first_boot_plan(["pg_stat_statements", "pg_cron"]) == (["pg_stat_statements", "pg_cron"], [])
    assert rt.first_boot_plan(["pg_stat_statements"]) == (["pg_stat_statements"], ["pg_cron"])
    assert rt.output_plugins == ("wal2json",)
    assert rt.output_plugin_libraries() == ["pgoutput", "test_decoding", "wal2json"]


@pytest.mark.parametrize(
    "text",
    ["[]", '{"default_shared_preload_libraries": "a", "first_boot_extensions": [], "catalog": []}',
     '{"default_shared_preload_libraries": [], "first_boot_extensions": [1], "catalog": []}',
     '{"default_shared_preload_libraries": [], "first_boot_extensions": []}'],
)
def test_runtime_rejects_broken_documents(text: str) -> None:
    with pytest.raises(ValueError, match=r"extensions\.json"):
        manifest.parse_runtime(text)


INSTALLED = {"pg_stat_statements", "auto_explain", "pg_cron", "vector", "postgis-3"}


def test_override_accepted_in_given_order() -> None:
    assert manifest.check_preload(" pg_cron ,pg_stat_statements,, postgis-3", INSTALLED) == [
        "pg_cron", "pg_stat_statements", "postgis-3"]
    assert manifest.check_preload("", INSTALLED) == []


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("pg_cron,nosuchlib", "POSTGRES_SHARED_PRELOAD_LIBRARIES: library 'nosuchlib' is not installed"),
        ("pg_cron,pgq_lowlevel", "library 'pgq_lowlevel' is not installed"),
        ("$libdir/pg_cron", "'$libdir/pg_cron' is not a library name"),
        ("pg_cron.so x", "'pg_cron.so x' is not a library name"),
        ("pg_cron,pg_cron", "library 'pg_cron' is listed twice"),
    ],
)
def test_override_errors_name_the_library(value: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        manifest.check_preload(value, INSTALLED)
    assert message in str(info.value)
    assert "\n" not in str(info.value)
