"""``aza-pg promote`` before it touches a server: finding it, and what it tells about the old primary."""

from __future__ import annotations

from pathlib import Path

import pytest

from entrypoint.errors import RuntimeFailure
from entrypoint.flows import promote

pytestmark = pytest.mark.unit


def test_no_running_server_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(RuntimeFailure, match=r"no running server: .*postmaster\.pid is missing"):
        promote.run({"PGDATA": str(tmp_path)})


def test_split_brain_warning_names_the_old_primary_and_the_next_steps() -> None:
    text = promote.split_brain_warning("db1:5432")
    assert "db1:5432" in text
    assert "split brain" in text
    assert "POSTGRES_ROLE=primary" in text
    assert "POSTGRES_ROLE=replica" in text
