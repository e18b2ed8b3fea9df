"""Build-time helper (run by the Dockerfile): record the entrypoint package's metadata.

The package is copied to /usr/lib/aza-pg without pip. A minimal ``.dist-info`` next to it lets
``importlib.metadata`` (``aza-pg --version``) find the name and version from pyproject.toml.
"""

import sys
import tomllib
from pathlib import Path


def main(pyproject: str, target: str) -> None:
    project = tomllib.loads(Path(pyproject).read_text(encoding="utf-8"))["project"]
    name, version = project["name"], project["version"]
    dist = Path(target) / f"{name.replace('-', '_')}-{version}.dist-info"
    dist.mkdir(parents=True, exist_ok=True)
    (dist / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n", encoding="utf-8"
    )
    (dist / "INSTALLER").write_text("aza-pg Dockerfile\n", encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
