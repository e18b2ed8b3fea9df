#!/usr/bin/env python3
"""Generate the files derived from manifest.yaml, or check that they are up to date.

    scripts/gen_extensions.py                 write the generated files
    scripts/gen_extensions.py --check         exit 1 naming every out-of-date file, change nothing
    scripts/gen_extensions.py --manifest M --root DIR
                                              use manifest M and write/check the files under DIR
                                              (a copy of the repository, e.g. with one more entry
                                              disabled)

Generated (paths relative to the root):
    image/packages/extensions.txt   Debian packages the Dockerfile installs, one per line
    image/extensions.json           default preloads, first-boot extensions and the catalog, for the
                                    entrypoint inside the image
    docs/EXTENSIONS.md              only the regions between the generated-region markers; the prose
                                    around them is written by hand
    README.md, docs/*.md            the sentence "N total catalog entries (...)" wherever it appears

A malformed manifest prints one line per problem and exits 2.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from entrypoint.manifest import Manifest, ManifestError, from_data  # noqa: E402

PACKAGES = Path("image/packages/extensions.txt")
RUNTIME = Path("image/extensions.json")
DOC = Path("docs/EXTENSIONS.md")

COUNTS_RE = re.compile(
    r"\d+ total catalog entries \(\d+ enabled extensions, \d+ disabled(?:: [^)]*)?\)"
)
REGIONS = ("counts", "catalog")


def load(path: Path) -> Manifest:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ManifestError([f"not valid YAML: {exc}".replace("\n", " ")]) from exc
    return from_data(data)


def counts_sentence(m: Manifest) -> str:
    disabled = [e.name for e in m.disabled]
    tail = f": {', '.join(disabled)}" if disabled else ""
    return (
        f"{len(m.entries)} total catalog entries ({len(m.enabled)} enabled extensions, "
        f"{len(disabled)} disabled{tail})"
    )


def _cell(text: str | None) -> str:
    return "" if text is None else text.replace("|", "\\|")


def _code(text: str | None) -> str:
    return f"`{text}`" if text else ""


def _yes(flag: bool) -> str:
    return "yes" if flag else ""


def catalog_table(m: Manifest) -> str:
    lines = [
        "| Name | Kind | CREATE EXTENSION | Library | Preloaded | First boot | Debian package | Requires | "
        "Description |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for e in m.enabled:
        lines.append(
            f"| {e.name} | {e.kind} | {_code(e.sql_name)} | {_code(e.library)} | {_yes(e.preload)} | "
            f"{_yes(e.first_boot)} | {_code(e.package(m.pg_major)) or 'server (contrib)'} | "
            f"{', '.join(e.requires)} | {_cell(e.description)} |"
        )
    lines.append("")
    if m.disabled:
        lines += ["Disabled (not installed, not preloaded, not created):", "",
                  "| Name | Kind | Debian package | Why disabled |", "| --- | --- | --- | --- |"]
        lines += [
            f"| {e.name} | {e.kind} | {_code(e.package(m.pg_major)) or 'server (contrib)'} | "
            f"{_cell(e.reason)} |"
            for e in m.disabled
        ]
    else:
        lines.append("No entry is disabled.")
    return "\n".join(lines)


def counts_block(m: Manifest) -> str:
    preload = ", ".join(m.default_preload()) or "(none)"
    first = ", ".join(m.first_boot_extensions()) or "(none)"
    need = [e for e in m.enabled if e.needs_preload and not e.preload]
    example = [e.library for e in need[:1] if e.library]
    return "\n".join([
        f"The catalog has {counts_sentence(m)}, for PostgreSQL {m.pg_major}.",
        "",
        f"- Default `shared_preload_libraries`: `{preload}`",
        f"- Created with CREATE EXTENSION in `POSTGRES_DB` at first boot: `{first}`",
        "- Installed but only useful once added to `POSTGRES_SHARED_PRELOAD_LIBRARIES`: "
        + (", ".join(f"`{e.library}`" for e in need) or "(none)"),
        "- Logical decoding output plugins added to `output_plugin_libraries`: "
        + (", ".join(f"`{p}`" for p in m.output_plugins()) or "(none)"),
        f"- Debian packages installed for the catalog: {len(m.packages())}",
        "",
        "To preload one more library, repeat the default list and add it, e.g.",
        "",
        "```bash",
        "POSTGRES_SHARED_PRELOAD_LIBRARIES=" + ",".join([*m.default_preload(), *example]),
        "```",
    ])


def _replace_region(text: str, region: str, body: str, where: str) -> str:
    begin, end = f"<!-- generated:{region}:begin -->", f"<!-- generated:{region}:end -->"
    start, stop = text.find(begin), text.find(end)
    if start < 0 or stop < start:
        raise SystemExit(f"{where}: missing the markers {begin} ... {end}")
    return text[: start + len(begin)] + "\n" + body + "\n" + text[stop:]


def expected(m: Manifest, root: Path) -> dict[Path, str]:
    """Every generated file under ``root`` with the content it should have."""
    runtime = {"generated_by": "scripts/gen_extensions.py from manifest.yaml; do not edit", **m.runtime()}
    out: dict[Path, str] = {
        PACKAGES: "".join(f"{p}\n" for p in m.packages()),
        RUNTIME: json.dumps(runtime, indent=2) + "\n",
    }
    doc_path = root / DOC
    template = doc_path if doc_path.exists() else REPO / DOC
    doc = template.read_text(encoding="utf-8")
    doc = _replace_region(doc, "counts", counts_block(m), str(DOC))
    doc = _replace_region(doc, "catalog", catalog_table(m), str(DOC))
    out[DOC] = doc
    sentence = counts_sentence(m)
    for path in [root / "README.md", *sorted((root / "docs").glob("*.md"))]:
        rel = path.relative_to(root)
        if rel == DOC or not path.is_file():
            continue
        text = path.read_text(encoding="utf-8")
        if COUNTS_RE.search(text):
            out[rel] = COUNTS_RE.sub(sentence, text)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--manifest", type=Path, help="manifest to read (default: <root>/manifest.yaml)")
    parser.add_argument("--root", type=Path, default=REPO, help="tree whose generated files are written")
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a file is stale")
    args = parser.parse_args(argv)
    root: Path = args.root.resolve()
    manifest_path: Path = args.manifest or root / "manifest.yaml"
    try:
        m = load(manifest_path)
    except ManifestError as exc:
        for problem in exc.problems:
            print(f"{manifest_path}: {problem}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"{manifest_path}: cannot read: {exc.strerror}", file=sys.stderr)
        return 2

    stale: list[Path] = []
    for rel, content in expected(m, root).items():
        path = root / rel
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == content:
            continue
        stale.append(rel)
        if not args.check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content, encoding="utf-8")
    if args.check:
        for rel in stale:
            print(f"out of date: {rel} (run scripts/gen_extensions.py)", file=sys.stderr)
        return 1 if stale else 0
    for rel in stale:
        print(f"wrote {rel}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
