"""The extension catalog (manifest.yaml): schema check and the views derived from it.

Pure: every function takes already-parsed data (the YAML document as dicts and lists, or the text of
image/extensions.json) and returns values; nothing here reads files or the environment. The generator
(scripts/gen_extensions.py) parses manifest.yaml and writes the generated files; the entrypoint reads
the generated image/extensions.json (JSON, so the image needs no YAML parser) through
``parse_runtime`` and checks a POSTGRES_SHARED_PRELOAD_LIBRARIES override with ``check_preload``.

A malformed manifest raises ``ManifestError`` (a ``ConfigError``) whose message has one line per
problem, each naming the entry and the field.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from entrypoint.errors import ConfigError

KINDS = ("extension", "module", "tool")
CONTRIB = "contrib"
BUILTIN_SOURCES = ("contrib", "builtin")
# PostgreSQL's own default of output_plugin_libraries, kept when the catalog's plugins are added.
OUTPUT_PLUGIN_DEFAULTS = ("pgoutput", "test_decoding")

TOP_KEYS = frozenset({"pg_major", "entries"})
REQUIRED_KEYS = (
    "name",
    "kind",
    "enabled",
    "source",
    "sql_name",
    "library",
    "preload",
    "needs_preload",
    "output_plugin",
    "first_boot",
    "requires",
    "description",
)
ENTRY_KEYS = frozenset((*REQUIRED_KEYS, "reason"))

_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")
# A library file name in $libdir (postgis-3, libpgrouting-3.7); no path separators, no ".so".
_LIBRARY_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+-]*$")
# A Debian package name, optionally with the {pg_major} placeholder.
_PACKAGE_RE = re.compile(r"^[a-z0-9][a-z0-9.+-]*$")
_PLACEHOLDER_RE = re.compile(r"\{([^{}]*)\}")


class ManifestError(ConfigError):
    """The manifest is malformed. ``problems`` holds one line per problem."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


@dataclass(frozen=True)
class Entry:
    name: str
    kind: str
    enabled: bool
    source: str
    sql_name: str | None
    library: str | None
    preload: bool
    needs_preload: bool
    output_plugin: bool
    first_boot: bool
    requires: tuple[str, ...]
    description: str
    reason: str | None

    def package(self, pg_major: int) -> str | None:
        """The Debian package to install, or None when the server package already ships it."""
        if self.source in BUILTIN_SOURCES:
            return None
        return self.source.replace("{pg_major}", str(pg_major))


@dataclass(frozen=True)
class Manifest:
    pg_major: int
    entries: tuple[Entry, ...]

    def by_name(self) -> dict[str, Entry]:
        return {e.name: e for e in self.entries}

    @property
    def enabled(self) -> tuple[Entry, ...]:
        return tuple(e for e in self.entries if e.enabled)

    @property
    def disabled(self) -> tuple[Entry, ...]:
        return tuple(e for e in self.entries if not e.enabled)

    def packages(self, pg_major: int | None = None) -> list[str]:
        """Debian packages of the enabled entries for a PostgreSQL major, sorted, without duplicates."""
        major = self.pg_major if pg_major is None else pg_major
        names = {p for e in self.enabled if (p := e.package(major)) is not None}
        return sorted(names)

    def ordered(self, entries: Iterable[Entry]) -> list[Entry]:
        """``entries`` with every dependency before its dependents; manifest order otherwise."""
        wanted = {e.name for e in entries}
        index = self.by_name()
        out: list[Entry] = []
        seen: set[str] = set()

        def visit(entry: Entry) -> None:
            if entry.name in seen:
                return
            seen.add(entry.name)
            for dep in entry.requires:
                if dep in wanted:
                    visit(index[dep])
            out.append(entry)

        for entry in self.entries:
            if entry.name in wanted:
                visit(entry)
        return out

    def default_preload(self) -> list[str]:
        """The default shared_preload_libraries, dependencies first."""
        return [e.library for e in self.ordered(e for e in self.enabled if e.preload) if e.library]

    def first_boot_extensions(self) -> list[str]:
        """The CREATE EXTENSION names run in POSTGRES_DB at first boot, dependencies first."""
        return [e.sql_name for e in self.ordered(e for e in self.enabled if e.first_boot) if e.sql_name]

    def output_plugins(self) -> list[str]:
        """Libraries of enabled entries that are logical decoding output plugins. PostgreSQL only lets
        them be named in a replication slot when they are listed in output_plugin_libraries."""
        return [e.library for e in self.enabled if e.output_plugin and e.library]

    def runtime(self) -> dict[str, Any]:
        """The document written to image/extensions.json (what the running entrypoint reads)."""
        return {
            "pg_major": self.pg_major,
            "default_shared_preload_libraries": self.default_preload(),
            "first_boot_extensions": self.first_boot_extensions(),
            "output_plugins": self.output_plugins(),
            "catalog": [
                {
                    "name": e.name,
                    "kind": e.kind,
                    "enabled": e.enabled,
                    "package": e.package(self.pg_major),
                    "sql_name": e.sql_name,
                    "library": e.library,
                    "preload": e.preload,
                    "needs_preload": e.needs_preload,
                    "output_plugin": e.output_plugin,
                    "first_boot": e.first_boot,
                    "requires": list(e.requires),
                    "description": e.description,
                    "reason": e.reason,
                }
                for e in self.entries
            ],
        }


def _where(i: int, raw: Mapping[str, Any]) -> str:
    name = raw.get("name")
    return f"entry {name!r}" if isinstance(name, str) and name else f"entry #{i + 1}"


def _check_entry(i: int, raw: object, problems: list[str]) -> None:
    if not isinstance(raw, Mapping):
        problems.append(f"entry #{i + 1}: must be a mapping of fields, got {type(raw).__name__}")
        return
    where = _where(i, raw)
    for key in raw:
        if key not in ENTRY_KEYS:
            problems.append(f"{where}: unknown key {key!r} (allowed: {', '.join(sorted(ENTRY_KEYS))})")
    for key in REQUIRED_KEYS:
        if key not in raw:
            problems.append(f"{where}: missing key {key!r}")

    name = raw.get("name")
    if "name" in raw and (not isinstance(name, str) or not _NAME_RE.match(name)):
        problems.append(f"{where}: name must match [a-z][a-z0-9_]*, got {name!r}")

    kind = raw.get("kind")
    if "kind" in raw and kind not in KINDS:
        problems.append(f"{where}: kind must be one of {', '.join(KINDS)}, got {kind!r}")

    for key in ("enabled", "preload", "needs_preload", "output_plugin", "first_boot"):
        if key in raw and not isinstance(raw[key], bool):
            problems.append(f"{where}: {key} must be true or false, got {raw[key]!r}")

    if "source" in raw:
        source = raw["source"]
        if not isinstance(source, str) or not source.strip():
            problems.append(
                f"{where}: missing package: source must be 'contrib' or a Debian package name, got {source!r}"
            )
        elif source not in BUILTIN_SOURCES:
            bad = [p for p in _PLACEHOLDER_RE.findall(source) if p != "pg_major"]
            if bad:
                problems.append(f"{where}: source {source!r} has unknown placeholder {{{bad[0]}}}"
                                " (only {pg_major} is allowed)")
            elif not _PACKAGE_RE.match(source.replace("{pg_major}", "17")):
                problems.append(f"{where}: source {source!r} is not a valid Debian package name")

    for key, pattern, what in (("sql_name", _NAME_RE, "an extension name"),
                               ("library", _LIBRARY_RE, "a library file name without .so")):
        value = raw.get(key)
        if value is not None and (not isinstance(value, str) or not pattern.match(value)):
            problems.append(f"{where}: {key} must be null or {what}, got {value!r}")

    requires = raw.get("requires")
    if "requires" in raw and (
        not isinstance(requires, list) or not all(isinstance(r, str) for r in requires)
    ):
        problems.append(f"{where}: requires must be a list of entry names, got {requires!r}")

    description = raw.get("description")
    if "description" in raw and (
        not isinstance(description, str) or not description.strip() or "\n" in description.strip()
    ):
        problems.append(f"{where}: description must be one non-empty line")

    # Rules between fields of one entry.
    if kind == "extension" and "sql_name" in raw and raw.get("sql_name") is None:
        problems.append(f"{where}: kind extension needs sql_name (the CREATE EXTENSION name)")
    if kind in ("module", "tool") and raw.get("sql_name") is not None:
        problems.append(f"{where}: kind {kind} has no SQL extension, sql_name must be null")
    if kind == "module" and "library" in raw and raw.get("library") is None:
        problems.append(f"{where}: kind module needs library")
    if kind == "tool":
        if raw.get("library") is not None:
            problems.append(f"{where}: kind tool has no library, library must be null")
        for key in ("preload", "needs_preload", "output_plugin", "first_boot"):
            if raw.get(key) is True:
                problems.append(f"{where}: kind tool cannot have {key}: true")
        if raw.get("source") in BUILTIN_SOURCES:
            problems.append(f"{where}: kind tool needs a Debian package as source")
    for key in ("preload", "needs_preload", "output_plugin"):
        if raw.get(key) is True and "library" in raw and raw.get("library") is None:
            problems.append(f"{where}: {key}: true needs a library")
    if raw.get("first_boot") is True and kind != "extension" and kind in KINDS:
        problems.append(f"{where}: first_boot: true needs kind extension")
    if raw.get("first_boot") is True and raw.get("needs_preload") is True and raw.get("preload") is False:
        problems.append(f"{where}: first_boot: true with needs_preload: true needs preload: true")

    enabled = raw.get("enabled")
    reason = raw.get("reason")
    if enabled is False:
        if not isinstance(reason, str) or not reason.strip():
            problems.append(f"{where}: disabled entry needs a reason")
        for key in ("preload", "first_boot"):
            if raw.get(key) is True:
                problems.append(f"{where}: {key}: true but the entry is disabled")
    elif enabled is True and "reason" in raw:
        problems.append(f"{where}: reason is only for disabled entries")


def _check_relations(entries: list[Mapping[str, Any]], problems: list[str]) -> None:
    by_name: dict[str, Mapping[str, Any]] = {}
    for raw in entries:
        name = raw.get("name")
        if isinstance(name, str):
            if name in by_name:
                problems.append(f"entry {name!r}: duplicate name")
            else:
                by_name[name] = raw
    for kind_key in ("sql_name", "library"):
        owners: dict[str, str] = {}
        for raw in entries:
            value, name = raw.get(kind_key), raw.get("name")
            if isinstance(value, str) and isinstance(name, str):
                if value in owners and owners[value] != name:
                    problems.append(f"entry {name!r}: {kind_key} {value!r} is also used by {owners[value]!r}")
                owners.setdefault(value, name)

    for raw in entries:
        name = raw.get("name")
        requires = raw.get("requires")
        if not isinstance(name, str) or not isinstance(requires, list):
            continue
        for dep in requires:
            if not isinstance(dep, str):
                continue
            target = by_name.get(dep)
            if dep == name:
                problems.append(f"entry {name!r}: requires itself")
            elif target is None:
                problems.append(f"entry {name!r}: requires unknown entry {dep!r}")
            elif raw.get("enabled") is True and target.get("enabled") is False:
                problems.append(f"entry {name!r}: requires {dep!r}, which is disabled")
            elif target.get("kind") == "tool":
                problems.append(f"entry {name!r}: requires {dep!r}, which is a tool")
            else:
                if raw.get("first_boot") is True and target.get("first_boot") is not True and \
                        target.get("kind") == "extension":
                    problems.append(f"entry {name!r}: first_boot needs {dep!r} to have first_boot: true too")
                if raw.get("preload") is True and target.get("needs_preload") is True and \
                        target.get("preload") is not True:
                    problems.append(f"entry {name!r}: preload needs {dep!r} to have preload: true too")

    # Cycles (only through known names).
    state: dict[str, int] = {}

    def visit(name: str, path: list[str]) -> None:
        state[name] = 1
        deps = by_name[name].get("requires")
        for dep in deps if isinstance(deps, list) else []:
            if not isinstance(dep, str) or dep not in by_name or dep == name:
                continue
            if state.get(dep) == 1:
                cycle = [*path[path.index(dep):], dep] if dep in path else [name, dep]
                problems.append(f"entry {dep!r}: dependency cycle {' -> '.join(cycle)}")
            elif dep not in state:
                visit(dep, [*path, dep])
        state[name] = 2

    for name in by_name:
        if name not in state:
            visit(name, [name])


def validate(data: object) -> list[str]:
    """Every problem of a parsed manifest document, one line each; empty when it is valid."""
    problems: list[str] = []
    if not isinstance(data, Mapping):
        return [f"manifest must be a mapping with keys {', '.join(sorted(TOP_KEYS))}"]
    for key in data:
        if key not in TOP_KEYS:
            problems.append(f"unknown top-level key {key!r} (allowed: {', '.join(sorted(TOP_KEYS))})")
    major = data.get("pg_major")
    if not isinstance(major, int) or isinstance(major, bool) or not 10 <= major <= 99:
        problems.append(f"pg_major must be a PostgreSQL major version such as 17, got {major!r}")
    entries = data.get("entries")
    if not isinstance(entries, list) or not entries:
        problems.append("entries must be a non-empty list")
        return problems
    for i, raw in enumerate(entries):
        _check_entry(i, raw, problems)
    _check_relations([e for e in entries if isinstance(e, Mapping)], problems)
    return problems


def from_data(data: object) -> Manifest:
    """A checked Manifest from a parsed manifest document; ManifestError lists every problem."""
    problems = validate(data)
    if problems:
        raise ManifestError(problems)
    if not isinstance(data, Mapping):  # validate() already said so; this narrows the type
        raise ManifestError(["manifest must be a mapping"])
    entries = tuple(
        Entry(
            name=raw["name"],
            kind=raw["kind"],
            enabled=raw["enabled"],
            source=raw["source"],
            sql_name=raw["sql_name"],
            library=raw["library"],
            preload=raw["preload"],
            needs_preload=raw["needs_preload"],
            output_plugin=raw["output_plugin"],
            first_boot=raw["first_boot"],
            requires=tuple(raw["requires"]),
            description=raw["description"].strip(),
            reason=raw.get("reason"),
        )
        for raw in data["entries"]
    )
    return Manifest(pg_major=data["pg_major"], entries=entries)


# --- what the running entrypoint uses --------------------------------------------------------------


@dataclass(frozen=True)
class Runtime:
    """The parts of image/extensions.json the postgres entrypoint acts on."""

    default_preload: tuple[str, ...]
    first_boot_extensions: tuple[str, ...]
    libraries: frozenset[str]  # every library of an enabled catalog entry
    output_plugins: tuple[str, ...] = ()  # to add to output_plugin_libraries
    # CREATE EXTENSION name -> library, for enabled extensions that work only when preloaded
    preload_required: Mapping[str, str] = field(default_factory=dict)

    def output_plugin_libraries(self) -> list[str]:
        """The value for output_plugin_libraries: PostgreSQL's default allow-list plus the catalog's
        output plugins (only for servers that have that setting)."""
        return [*OUTPUT_PLUGIN_DEFAULTS, *(p for p in self.output_plugins if p not in OUTPUT_PLUGIN_DEFAULTS)]

    def first_boot_plan(self, effective_preload: Sequence[str]) -> tuple[list[str], list[str]]:
        """(extensions to create at first boot, extensions skipped because their library is not in
        the effective shared_preload_libraries), both in first-boot order."""
        loaded = set(effective_preload)
        create: list[str] = []
        skipped: list[str] = []
        for name in self.first_boot_extensions:
            lib = self.preload_required.get(name)
            (skipped if lib is not None and lib not in loaded else create).append(name)
        return create, skipped


def parse_runtime(text: str) -> Runtime:
    """Parse image/extensions.json. A broken file is an image defect: RuntimeFailure-worthy, but
    reported as ValueError so the caller decides."""
    doc = json.loads(text)
    if not isinstance(doc, dict):
        raise ValueError("extensions.json: top level must be an object")
    preload = doc.get("default_shared_preload_libraries")
    first = doc.get("first_boot_extensions")
    catalog = doc.get("catalog")
    plugins = doc.get("output_plugins", [])
    if not (isinstance(plugins, list) and all(isinstance(x, str) for x in plugins)):
        raise ValueError("extensions.json: output_plugins must be a list of strings")
    if not (isinstance(preload, list) and all(isinstance(x, str) for x in preload)):
        raise ValueError("extensions.json: default_shared_preload_libraries must be a list of strings")
    if not (isinstance(first, list) and all(isinstance(x, str) for x in first)):
        raise ValueError("extensions.json: first_boot_extensions must be a list of strings")
    if not isinstance(catalog, list):
        raise ValueError("extensions.json: catalog must be a list")
    libraries = frozenset(
        e["library"] for e in catalog
        if isinstance(e, dict) and e.get("enabled") is True and isinstance(e.get("library"), str)
    )
    preload_required = {
        e["sql_name"]: e["library"] for e in catalog
        if isinstance(e, dict) and e.get("enabled") is True and e.get("needs_preload") is True
        and isinstance(e.get("sql_name"), str) and isinstance(e.get("library"), str)
    }
    return Runtime(tuple(preload), tuple(first), libraries, tuple(plugins), preload_required)


def split_preload(value: str) -> list[str]:
    """Split a shared_preload_libraries value ("a, b,c") into names; empty items are dropped."""
    return [item.strip() for item in value.split(",") if item.strip()]


def check_preload(
    value: str, installed: Iterable[str], variable: str = "POSTGRES_SHARED_PRELOAD_LIBRARIES"
) -> list[str]:
    """Validate an override of shared_preload_libraries against the libraries found in $libdir.

    ``installed`` is the set of library names (file names without .so) that exist in
    ``pg_config --pkglibdir``; the caller (detect/) lists them. Returns the names in order, or raises
    ConfigError naming the first unknown one, before PostgreSQL would crash-loop on it."""
    names = split_preload(value)
    present = set(installed)
    seen: set[str] = set()
    for name in names:
        if not _LIBRARY_RE.match(name):
            raise ConfigError(
                f"{variable}: {name!r} is not a library name (comma-separated names from $libdir, "
                "without path or .so)"
            )
        if name not in present:
            raise ConfigError(
                f"{variable}: library {name!r} is not installed in this image ($libdir/{name}.so missing); "
                "see docs/EXTENSIONS.md for the catalog"
            )
        if name in seen:
            raise ConfigError(f"{variable}: library {name!r} is listed twice")
        seen.add(name)
    return names
