"""Fixtures for the compose tests: images built once, test-owned networks, stacks torn down always.

Locally, a machine without Docker or the Compose v2 plugin skips these tests with the reason; under
CI=true the root conftest turns that skip into a failure.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.compose import dockerlib


@pytest.fixture(scope="session")
def docker_ready() -> None:
    reason = dockerlib.docker_available()
    if reason is not None:
        pytest.skip(reason)


@pytest.fixture(scope="session")
def images(docker_ready: None) -> Callable[..., None]:
    """Call with the targets a test needs; each is built (or found up to date) once per session."""
    return dockerlib.ensure_images


@pytest.fixture
def monitoring_network(docker_ready: None) -> Iterator[str]:
    """A test-owned stand-in for the external `monitoring` network (the user's is never touched)."""
    name = dockerlib.unique("azatest-monitoring-")
    dockerlib.docker("network", "create", name, timeout=60)
    try:
        yield name
    finally:
        dockerlib.docker("network", "rm", name, timeout=60, check=False)


@pytest.fixture
def stacks(tmp_path: Path, monitoring_network: str) -> Iterator[Callable[..., dockerlib.Stack]]:
    """Factory: stacks("primary") -> a Stack in tmp_path; every stack made is `down -v`'d at the end
    (in reverse order, so a replica goes before the primary network it joined)."""
    made: list[dockerlib.Stack] = []

    def make(kind: str, *, prefix: str | None = None) -> dockerlib.Stack:
        stack = dockerlib.Stack.create(kind, tmp_path, monitoring_network, prefix=prefix)
        made.append(stack)
        return stack

    try:
        yield make
    finally:
        for stack in reversed(made):
            stack.down()
